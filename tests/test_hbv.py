"""Tests of the reference PyTorch HBV (dplpaper.models.hbv): physics, hand-computed steps, gradients."""
import numpy as np
import pytest
import torch

from dplpaper.models.hbv import HBV, gamma_unit_hydrograph, hbv_parameter_table, route

F64 = torch.float64


def make_forcing(T, B, seed=0, snow=True, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    P = torch.rand(T, B, generator=g, dtype=dtype) * 20 * (torch.rand(T, B, generator=g, dtype=dtype) < 0.4)
    day = torch.arange(T, dtype=dtype)[:, None]
    base = 8 * torch.sin(2 * np.pi * day / 365.0) + (0.0 if snow else 12.0)
    Tm = base + 3 * torch.randn(T, B, generator=g, dtype=dtype)
    E = torch.clamp(2 + 2 * torch.sin(2 * np.pi * day / 365.0) + 0.3 * torch.randn(T, B, generator=g, dtype=dtype), min=0)
    return torch.stack([P, Tm, E], -1)


def unit_params(model, B, seed=0, lo=0.0, hi=1.0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(B, model.n_params, model.nmul, generator=g, dtype=dtype)


def physical_to_unit(model, values: dict, B=1):
    """Unit-cube params [B, n, 1] for given physical values (by name)."""
    tab = model.parameter_table
    phys = torch.tensor([[values[n] for n in tab.names]], dtype=F64).reshape(1, -1, 1).repeat(B, 1, 1)
    return tab.to_unit(phys, dim=-2)


def test_parameter_table():
    t = hbv_parameter_table()
    assert t.names == ["BETA", "FC", "K0", "K1", "K2", "LP", "PERC", "UZL", "TT", "CFMAX", "CFR", "CWH", "ROUTA", "ROUTB"]
    assert (t["FC"].low, t["FC"].high) == (50.0, 1000.0)
    assert (t["K2"].low, t["K2"].high) == (0.001, 0.2)
    assert (t["ROUTB"].low, t["ROUTB"].high) == (0.0, 6.5)
    assert len(hbv_parameter_table(routing=False)) == 12
    tb = hbv_parameter_table(routing=True, use_betaet=True)
    assert tb.names[12:] == ["BETAET", "ROUTA", "ROUTB"]
    assert (tb["BETAET"].low, tb["BETAET"].high) == (0.3, 5.0)
    assert HBV(nmul=3).n_params == 14


@pytest.mark.parametrize("use_betaet", [False, True])
def test_water_balance_closes(use_betaet):
    T, B = 3 * 365, 4
    m = HBV(nmul=3, routing=False, use_betaet=use_betaet, backend="torch")
    f = make_forcing(T, B, seed=1)
    s0 = torch.rand(B, 5, 3, dtype=F64, generator=torch.Generator().manual_seed(2)) * torch.tensor(
        [20.0, 1.0, 40.0, 10.0, 30.0], dtype=F64)[None, :, None]
    out = m(f, unit_params(m, B), return_fluxes=True, initial_states=s0, return_states=True)
    storage_end = out["snow"] + out["soil_storage"] + out["upper_storage"] + out["lower_storage"]
    storage0 = s0.sum(1).mean(-1)
    dS = storage_end[-1] - storage0
    P = f[..., 0].sum(0)
    Q = out["streamflow"].sum(0)
    ET = out["et"].sum(0)
    assert torch.allclose(out["streamflow"], out["q0"] + out["q1"] + out["q2"], rtol=0, atol=1e-12)
    resid = P - Q - ET - dS
    assert float(resid.abs().max()) < 1e-9 * float(P.max()), resid
    # daily balance too
    S = torch.cat([storage0[None], storage_end])
    daily = f[..., 0] - out["streamflow"] - out["et"] - (S[1:] - S[:-1])
    assert float(daily.abs().max()) < 1e-10
    # snow was present (the test exercises the snow routine) and storages never go negative
    assert float(out["swe"].max()) > 10
    for k in ("snow", "soil_storage", "upper_storage", "lower_storage", "et", "q0", "q1", "q2", "melt"):
        assert float(out[k].min()) >= 0, k
    assert torch.allclose(out["final_states"].sum(1).mean(-1), storage_end[-1], atol=1e-12)


def test_routing_conserves_mass_and_matches_definition():
    g = torch.Generator().manual_seed(3)
    q = torch.rand(40, 3, dtype=F64, generator=g)
    q = torch.cat([q, torch.zeros(20, 3, dtype=F64)])  # a tail longer than the UH
    a = torch.tensor([0.0, 1.3, 2.9], dtype=F64)
    b = torch.tensor([0.0, 2.0, 6.5], dtype=F64)
    uh = gamma_unit_hydrograph(a + 0.1, b + 0.5)
    assert torch.allclose(uh.sum(1), torch.ones(3, dtype=F64))
    out = route(q, uh)
    assert torch.allclose(out.sum(0), q.sum(0), rtol=1e-13)
    # independent check of one ordinate: gamma pdf at t = j + 0.5, normalised
    t = np.arange(15) + 0.5
    w = t ** (1.3 + 0.1 - 1) * np.exp(-t / 2.5)
    w /= w.sum()
    assert np.allclose(uh[1].numpy(), w, rtol=1e-12)
    expect = sum(w[j] * q[10 - j, 1].item() for j in range(11))
    assert abs(out[10, 1].item() - expect) < 1e-13


def test_routed_streamflow_is_convolution_of_unrouted():
    T, B = 100, 2
    m = HBV(nmul=2, routing=True, backend="torch")
    p = unit_params(m, B, seed=4)
    out = m(forcing := make_forcing(T, B, seed=4), p, return_fluxes=True)
    ra = m.parameter_table.to_physical(p, dim=-2)[:, -2:, :].mean(-1)
    uh = gamma_unit_hydrograph(ra[:, 0] + 0.1, ra[:, 1] + 0.5)
    assert torch.allclose(out["streamflow"], route(out["streamflow_unrouted"], uh), atol=1e-14)
    assert forcing.shape[0] == out["streamflow"].shape[0]


def test_three_days_by_hand():
    m = HBV(nmul=1, routing=False, backend="torch")
    pv = dict(BETA=2.0, FC=100.0, K0=0.5, K1=0.1, K2=0.05, LP=0.5, PERC=2.0, UZL=20.0, TT=0.0, CFMAX=3.0,
              CFR=0.05, CWH=0.1)
    p = physical_to_unit(m, pv)
    f = torch.tensor([[[10.0, -5.0, 1.0]], [[0.0, 5.0, 2.0]], [[80.0, 2.0, 0.5]]], dtype=F64)
    s0 = torch.tensor([[[0.0], [0.0], [50.0], [10.0], [20.0]]], dtype=F64)
    out = m(f, p, return_fluxes=True, initial_states=s0)
    # day 1: all precip falls as snow (T=-5 < TT=0); no melt; no liquid water to refreeze
    #   soil: x = 50/100, w = 0.25, no input; ET factor min(50/(0.5*100), 1) = 1 -> ET = 1
    #   response: SUZ 10 -> perc 2 -> 8; q0 = 0 (8 < UZL); q1 = 0.8; SUZ 7.2; SLZ 22 -> q2 1.1 -> 20.9
    sp1, sm1, suz1, slz1 = 10.0, 49.0, 7.2, 20.9
    q_1 = 0.0 + 0.8 + 1.1
    # day 2: T=5: potential melt 15 > snowpack 10 -> melt 10, all water leaves the (empty) pack
    #   soil: x = 0.49, w = 0.2401, input 10 -> recharge 2.401, SM = 49 + 10 - 2.401 = 56.599
    #   ET factor = min(56.599/50, 1) = 1 -> ET = 2 -> SM = 54.599
    #   response: SUZ = 7.2 + 2.401 = 9.601 -> perc 2 -> 7.601 -> q1 = 0.7601 -> 6.8409
    #             SLZ = 20.9 + 2 = 22.9 -> q2 = 1.145 -> 21.755
    sm2 = 49.0 + 10.0 - 10.0 * 0.49 ** 2 - 2.0
    suz2 = (7.2 + 10.0 * 0.49 ** 2 - 2.0) * 0.9
    slz2 = (20.9 + 2.0) * 0.95
    q_2 = 0.1 * (7.2 + 10.0 * 0.49 ** 2 - 2.0) + 0.05 * 22.9
    # day 3: rain 80 on a wet soil: soil overflows FC; ET = PET = 0.5
    w3 = (sm2 / 100.0) ** 2
    rech0 = 80.0 * w3
    sm_tmp = sm2 + 80.0 - rech0
    excess = sm_tmp - 100.0
    assert excess > 0
    sm3 = 100.0 - 0.5
    suz_a = suz2 + rech0 + excess - 2.0
    q0_3 = 0.5 * (suz_a - 20.0)
    suz_b = suz_a - q0_3
    q1_3 = 0.1 * suz_b
    suz3 = suz_b - q1_3
    slz_a = slz2 + 2.0
    q2_3 = 0.05 * slz_a
    slz3 = slz_a - q2_3
    q_3 = q0_3 + q1_3 + q2_3
    expect = {
        "streamflow": [q_1, q_2, q_3],
        "swe": [sp1, 0.0, 0.0],
        "soil_storage": [sm1, sm2, sm3],
        "upper_storage": [suz1, suz2, suz3],
        "lower_storage": [slz1, slz2, slz3],
        "et": [1.0, 2.0, 0.5],
        "melt": [0.0, 10.0, 0.0],
        "excess": [0.0, 0.0, excess],
        "q0": [0.0, 0.0, q0_3],
    }
    for k, v in expect.items():
        got = out[k][:, 0].numpy()
        assert np.allclose(got, v, rtol=1e-10, atol=1e-10), (k, got, v)


def test_zero_precipitation_drains_monotonically():
    T, B = 400, 3
    m = HBV(nmul=2, routing=False, backend="torch")
    f = make_forcing(T, B, seed=5, snow=False)
    f[..., 0] = 0.0
    f[..., 1] = 10.0
    s0 = torch.tensor([0.0, 0.0, 300.0, 80.0, 60.0], dtype=F64)[None, :, None].repeat(B, 1, 2)
    out = m(f, unit_params(m, B, seed=5), return_fluxes=True, initial_states=s0)
    total = out["snow"] + out["soil_storage"] + out["upper_storage"] + out["lower_storage"]
    assert bool((total[1:] <= total[:-1] + 1e-12).all())
    assert bool((out["soil_storage"][1:] <= out["soil_storage"][:-1] + 1e-12).all())
    assert bool((out["upper_storage"][1:] <= out["upper_storage"][:-1] + 1e-12).all())
    for k in ("soil_storage", "upper_storage", "lower_storage", "streamflow", "et"):
        assert float(out[k].min()) >= 0, k
    assert float(out["streamflow"][-1].max()) < float(out["streamflow"][0].min())


def test_frozen_conditions_accumulate_snow():
    T, B = 60, 2
    m = HBV(nmul=3, routing=False, backend="torch")
    f = make_forcing(T, B, seed=6)
    f[..., 1] = -30.0  # far below any TT (>= -2.5)
    out = m(f, unit_params(m, B, seed=6), return_fluxes=True)
    assert float(out["melt"].abs().max()) == 0.0
    assert float(out["tosoil"].abs().max()) == 0.0
    assert float(out["rain"].abs().max()) == 0.0
    # initial 0.001 mm snowpack + 0.001 mm liquid water (which refreezes) + all precipitation
    assert torch.allclose(out["snow"], 0.002 + torch.cumsum(f[..., 0], 0), rtol=0, atol=1e-12)
    assert float(out["snow_liquid"].abs().max()) == 0.0


def test_nmul_components_are_averaged():
    T, B, M = 200, 2, 3
    f = make_forcing(T, B, seed=7)
    big = HBV(nmul=M, routing=True, backend="torch")
    p = unit_params(big, B, seed=7)
    p[:, -2:, :] = p[:, -2:, :1]  # same routing parameters in every component
    q_big = big(f, p)["streamflow"]
    one = HBV(nmul=1, routing=True, backend="torch")
    q_each = torch.stack([one(f, p[:, :, k:k + 1])["streamflow"] for k in range(M)])
    assert torch.allclose(q_big, q_each.mean(0), rtol=1e-12, atol=1e-14)
    assert float((q_each[0] - q_each[1]).abs().max()) > 1e-3  # the components really differ


def test_time_varying_equal_to_static():
    T, B = 150, 3
    m = HBV(nmul=2, backend="torch")
    f = make_forcing(T, B, seed=8)
    p = unit_params(m, B, seed=8)
    a = m(f, p, warmup=20)["streamflow"]
    b = m(f, p.unsqueeze(0).expand(T, -1, -1, -1), warmup=20)["streamflow"]
    assert torch.equal(a, b)


def test_warmup_seeds_states():
    T, B, W = 120, 2, 30
    m = HBV(nmul=2, backend="torch")
    f = make_forcing(T, B, seed=9)
    p = unit_params(m, B, seed=9).requires_grad_()
    full = m(f, p)["streamflow"]
    part = m(f, p, warmup=W)["streamflow"]
    assert part.shape == (T - W, B)
    assert torch.allclose(part, full[W:], rtol=0, atol=1e-13)
    # warm-up runs without gradient: states at the end of warm-up are constants
    g_part, = torch.autograd.grad(part[0].sum(), p)
    g_full, = torch.autograd.grad(full[W].sum(), p)
    assert not torch.allclose(g_part, g_full)


def test_gradcheck_reference():
    T, B = 12, 1
    m = HBV(nmul=2, routing=True, use_betaet=True, backend="torch")
    f = make_forcing(T, B, seed=10)
    f[:6, :, 1] = -6.0  # snow first, then melt
    f[6:, :, 1] = 8.0
    p = unit_params(m, B, seed=10, lo=0.1, hi=0.9).requires_grad_()
    s0 = torch.tensor([5.0, 0.3, 60.0, 8.0, 15.0], dtype=F64)[None, :, None].repeat(B, 1, 2)
    assert torch.autograd.gradcheck(lambda x: m(f, x, initial_states=s0)["streamflow"], (p,), eps=1e-6, atol=1e-7)


def test_bad_inputs_raise():
    m = HBV(nmul=1, backend="torch")
    f = make_forcing(10, 3)
    p = unit_params(m, 3)
    bad = f.clone()
    bad[4, 2, 0] = float("nan")
    with pytest.raises(ValueError, match="precip.*site index 2"):
        m(bad, p)
    bad = f.clone()
    bad[1, 0, 2] = -1.0
    with pytest.raises(ValueError, match="pet"):
        m(bad, p)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        m(f, p + 1.5)
    with pytest.raises(ValueError, match="expected shape"):
        m(f, p[:, :12])
    with pytest.raises(ValueError, match="warmup"):
        m(f, p, warmup=10)
