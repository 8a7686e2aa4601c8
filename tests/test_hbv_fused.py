"""Tests of the fused C HBV backend against the reference PyTorch loop (the specification)."""
import numpy as np
import pytest
import torch

from dplpaper.models import hbv_fused
from dplpaper.models.hbv import HBV, hbv_loop

F64 = torch.float64

pytestmark = pytest.mark.skipif(not hbv_fused.available(), reason=f"no C backend: {hbv_fused.unavailable_reason()}")


def make_forcing(T, B, seed=0, snow=True, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    P = torch.rand(T, B, generator=g, dtype=dtype) * 20 * (torch.rand(T, B, generator=g, dtype=dtype) < 0.4)
    day = torch.arange(T, dtype=dtype)[:, None]
    Tm = 8 * torch.sin(2 * np.pi * day / 365.0) + (0.0 if snow else 15.0) + 3 * torch.randn(T, B, generator=g, dtype=dtype)
    E = torch.clamp(2 + 2 * torch.sin(2 * np.pi * day / 365.0) + 0.5 * torch.randn(T, B, generator=g, dtype=dtype), min=0)
    return torch.stack([P, Tm, E], -1)


def rand_params(model, B, T=None, seed=0, lo=0.0, hi=1.0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    shape = (B, model.n_params, model.nmul) if T is None else (T, B, model.n_params, model.nmul)
    return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=dtype)


def pair(nmul, **kw):
    return HBV(nmul=nmul, backend="torch", **kw), HBV(nmul=nmul, backend="fused", **kw)


@pytest.mark.parametrize("nmul", [1, 4])
@pytest.mark.parametrize("snow", [True, False])
@pytest.mark.parametrize("dynamic", [False, True])
@pytest.mark.parametrize("use_betaet", [False, True])
def test_fused_equals_reference_outputs_and_gradients(nmul, snow, dynamic, use_betaet):
    T, B, W = 500, 3, 100
    ref, fus = pair(nmul, use_betaet=use_betaet)
    f = make_forcing(T, B, seed=nmul + 2 * snow, snow=snow)
    p = rand_params(ref, B, T if dynamic else None, seed=11).requires_grad_()
    s0 = torch.rand(B, 5, nmul, dtype=F64, generator=torch.Generator().manual_seed(3)).mul(20).requires_grad_()
    o_ref = ref(f, p, warmup=W, initial_states=s0, return_states=True)
    o_fus = fus(f, p, warmup=W, initial_states=s0, return_states=True)
    assert torch.allclose(o_fus["streamflow"], o_ref["streamflow"], rtol=1e-12, atol=1e-13)
    assert torch.allclose(o_fus["final_states"], o_ref["final_states"], rtol=1e-12, atol=1e-12)
    wts = torch.rand(T - W, B, dtype=F64, generator=torch.Generator().manual_seed(4))
    loss_r = (o_ref["streamflow"] * wts).sum() + o_ref["final_states"].sum()
    loss_f = (o_fus["streamflow"] * wts).sum() + o_fus["final_states"].sum()
    g_ref = torch.autograd.grad(loss_r, p)[0]
    g_fus = torch.autograd.grad(loss_f, p)[0]
    assert float(g_ref.abs().max()) > 0
    assert torch.allclose(g_fus, g_ref, rtol=1e-9, atol=1e-9 * float(g_ref.abs().max()))
    if snow:
        assert float(f[..., 1].min()) < -5


def test_fused_gradient_wrt_initial_states():
    T, B, M = 60, 2, 3
    f = make_forcing(T, B, seed=5)
    ref, _ = pair(M, routing=False)
    par = ref.parameter_table.to_physical(rand_params(ref, B, seed=5), dim=-2).requires_grad_()
    s0 = torch.rand(B, 5, M, dtype=F64, generator=torch.Generator().manual_seed(6)).mul(30).requires_grad_()
    q_r, _, st_r = hbv_loop(f, par, s0)
    q_f, st_f = hbv_fused.hbv_fused_run(f, par, s0)
    gr = torch.autograd.grad(q_r.sum() + st_r.sum(), (par, s0))
    gf = torch.autograd.grad(q_f.sum() + st_f.sum(), (par, s0))
    for a, b in zip(gf, gr):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dynamic", [False, True])
def test_gradcheck_fused_function(dynamic):
    T, B, M = 10, 1, 2
    f = make_forcing(T, B, seed=7)
    f[:5, :, 1] = -6.0
    f[5:, :, 1] = 7.0
    m = HBV(nmul=M, routing=False, use_betaet=True)
    u = rand_params(m, B, T if dynamic else None, seed=7, lo=0.1, hi=0.9)
    par = m.parameter_table.to_physical(u, dim=-2).requires_grad_()
    s0 = torch.tensor([5.0, 0.3, 60.0, 8.0, 15.0], dtype=F64)[None, :, None].repeat(B, 1, M).requires_grad_()
    fn = lambda a, b: hbv_fused.HBVFusedFunction.apply(f, a, b)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (par, s0), eps=1e-6, atol=1e-7)


def test_float32_close_to_reference():
    T, B, M = 365, 4, 4
    ref, fus = pair(M)
    f = make_forcing(T, B, seed=8, dtype=torch.float32)
    p = rand_params(ref, B, seed=8, dtype=torch.float32).requires_grad_()
    a = ref(f, p)["streamflow"]
    b = fus(f, p)["streamflow"]
    assert b.dtype == torch.float32
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-4)
    ga = torch.autograd.grad(a.sum(), p)[0]
    gb = torch.autograd.grad(b.sum(), p)[0]
    assert torch.allclose(ga, gb, rtol=1e-3, atol=1e-3 * float(ga.abs().max()))


def test_deterministic_and_thread_independent():
    T, B, M = 200, 7, 4
    _, fus = pair(M)
    f = make_forcing(T, B, seed=9, dtype=torch.float32)
    p = rand_params(fus, B, seed=9, dtype=torch.float32).requires_grad_()
    n0 = torch.get_num_threads()
    res = []
    try:
        for n in (1, 2, 2):
            torch.set_num_threads(n)
            q = fus(f, p)["streamflow"]
            res.append((q.detach(), torch.autograd.grad(q.sum(), p)[0]))
    finally:
        torch.set_num_threads(n0)
    for q, g in res[1:]:
        assert torch.equal(q, res[0][0]) and torch.equal(g, res[0][1])


def test_forward_numpy_matches_model():
    T, B, M, W = 300, 3, 4, 50
    for routing, betaet in ((True, False), (False, True), (True, True)):
        m = HBV(nmul=M, routing=routing, use_betaet=betaet, backend="torch")
        f = make_forcing(T, B, seed=10)
        u = rand_params(m, B, seed=10)
        q_model = m(f, u, warmup=W)["streamflow"].numpy()
        phys = m.parameter_table.to_physical(u.numpy(), dim=-2)
        q_np = hbv_fused.hbv_forward_numpy(f.numpy(), phys, warmup=W)
        assert q_np.shape == (T - W, B)
        assert np.allclose(q_np, q_model, rtol=1e-11, atol=1e-12)
    q32 = hbv_fused.hbv_forward_numpy(f.numpy().astype(np.float32), phys.astype(np.float32), warmup=W)
    assert q32.dtype == np.float32 and np.allclose(q32, q_model, rtol=1e-3, atol=1e-3)


def test_fallback_when_c_disabled(monkeypatch):
    monkeypatch.setenv("DPLPAPER_NO_C", "1")
    monkeypatch.setattr(hbv_fused, "_tried", False)
    monkeypatch.setattr(hbv_fused, "_lib", None)
    monkeypatch.setattr(hbv_fused, "_reason", None)
    assert not hbv_fused.available()
    assert "DPLPAPER_NO_C" in hbv_fused.unavailable_reason()
    T, B = 30, 2
    f = make_forcing(T, B, seed=12)
    ref = HBV(nmul=2, backend="torch")
    p = rand_params(ref, B, seed=12)
    expect = ref(f, p)["streamflow"]
    with pytest.warns(RuntimeWarning, match="unavailable"):
        got = HBV(nmul=2, backend="fused")(f, p)["streamflow"]
    assert torch.equal(got, expect)
    assert torch.equal(HBV(nmul=2, backend="auto")(f, p)["streamflow"], expect)
    with pytest.raises(RuntimeError, match="unavailable"):
        hbv_fused.hbv_forward_numpy(f.numpy(), p.numpy())


def test_auto_backend_uses_fused(monkeypatch):
    calls = []
    orig = hbv_fused.hbv_fused_run
    monkeypatch.setattr(hbv_fused, "hbv_fused_run", lambda *a: calls.append(1) or orig(*a))
    m = HBV(nmul=2)
    f = make_forcing(20, 2)
    m(f, rand_params(m, 2))
    assert calls
    calls.clear()
    m(f, rand_params(m, 2), return_fluxes=True)  # fluxes: reference loop
    assert not calls


# ---------------------------------------------------------------- lane blocking, routing, forcing check
@pytest.mark.parametrize("B,M", [(70, 1), (37, 3), (5, 16), (2, 40)])
def test_lane_blocks_match_reference_and_threads(B, M):
    """Many sites per lane block (nmul=1, 3), partial blocks, and M above the block width."""
    T = 70
    ref, fus = pair(M)
    f = make_forcing(T, B, seed=B + M)
    p = rand_params(ref, B, seed=B).requires_grad_()
    a = ref(f, p, warmup=10)["streamflow"]
    ga = torch.autograd.grad(a.sum(), p)[0]
    n0 = torch.get_num_threads()
    outs = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            b = fus(f, p, warmup=10)["streamflow"]
            outs.append((b.detach(), torch.autograd.grad(b.sum(), p)[0]))
    finally:
        torch.set_num_threads(n0)
    assert torch.allclose(outs[0][0], a, rtol=1e-12, atol=1e-13)
    assert torch.allclose(outs[0][1], ga, rtol=1e-9, atol=1e-9 * float(ga.abs().max()))
    for b, g in outs[1:]:
        assert torch.equal(b, outs[0][0]) and torch.equal(g, outs[0][1])


@pytest.mark.parametrize("H", [0, 3, 14])
@pytest.mark.parametrize("B", [3, 21])
def test_route_fused_matches_route(H, B):
    from dplpaper.models.hbv import gamma_unit_hydrograph, route

    T = 40
    g = torch.Generator().manual_seed(H + B)
    q = torch.rand(T, B, generator=g, dtype=F64).requires_grad_()
    hist = torch.rand(H, B, generator=g, dtype=F64)
    a = (torch.rand(B, generator=g, dtype=F64) * 2.9 + 0.1).requires_grad_()
    th = (torch.rand(B, generator=g, dtype=F64) * 6.5 + 0.5).requires_grad_()
    uh = gamma_unit_hydrograph(a, th)
    ref = route(torch.cat([hist, q]), uh)[H:]
    got = hbv_fused.route_fused(q, uh, hist if H else None)
    assert torch.allclose(got, ref, rtol=1e-13, atol=1e-14)
    w = torch.rand(T, B, generator=g, dtype=F64)
    gr = torch.autograd.grad((ref * w).sum(), (q, a, th), retain_graph=True)
    gf = torch.autograd.grad((got * w).sum(), (q, a, th))
    for x, y in zip(gf, gr):
        assert torch.allclose(x, y, rtol=1e-11, atol=1e-13)
    uh2 = uh.detach().clone().requires_grad_()
    q2 = q.detach()[:12].clone().requires_grad_()
    fn = lambda qq, u: hbv_fused.HBVRouteFunction.apply(qq, u, hist[:, :] if H else None)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (q2, uh2), eps=1e-6, atol=1e-8)


def test_forcing_ok_and_check_forcing_errors():
    from dplpaper.models.hbv import check_forcing

    f = make_forcing(30, 4, seed=13)
    assert hbv_fused.available()
    assert hbv_fused.forcing_ok(f) and hbv_fused.forcing_ok(f.float()) and hbv_fused.forcing_ok(f.numpy())
    for c, v in ((0, -1.0), (1, float("nan")), (2, float("inf")), (0, float("nan")), (1, float("-inf"))):
        g = f.clone()
        g[17, 2, c] = v
        assert not hbv_fused.forcing_ok(g)
        with pytest.raises(ValueError, match="site index 2, day index 17"):
            check_forcing(g)
    g = f.clone()
    g[5, 1, 1] = -40.0  # cold is fine
    assert hbv_fused.forcing_ok(g)
    assert not hbv_fused.forcing_ok(f[:, :, :2])  # not [..., 3]: caller's own check decides


def test_forward_numpy_routing_float32_and_many_sites():
    T, B, W = 200, 45, 30
    m = HBV(nmul=1, backend="torch")
    f = make_forcing(T, B, seed=14)
    u = rand_params(m, B, seed=14)
    q_model = m(f, u, warmup=W)["streamflow"].numpy()
    phys = m.parameter_table.to_physical(u.numpy(), dim=-2)
    q64 = hbv_fused.hbv_forward_numpy(f.numpy(), phys, warmup=W)
    assert np.allclose(q64, q_model, rtol=1e-11, atol=1e-12)
    q32 = hbv_fused.hbv_forward_numpy(f.numpy().astype(np.float32), phys.astype(np.float32), warmup=W, nthreads=2)
    assert np.allclose(q32, q_model, rtol=1e-3, atol=1e-3)
    q32b = hbv_fused.hbv_forward_numpy(f.numpy().astype(np.float32), phys.astype(np.float32), warmup=W, nthreads=1)
    assert np.array_equal(q32, q32b)


def test_forward_numpy_forcing_index_equals_tiled():
    T, S, K = 120, 3, 5
    m = HBV(nmul=1, backend="torch")
    f = make_forcing(T, S, seed=15).numpy()
    u = rand_params(m, S * K, seed=15).numpy()
    phys = m.parameter_table.to_physical(u, dim=-2)
    idx = np.repeat(np.arange(S), K)  # row s*K + k runs on basin s
    tiled = np.ascontiguousarray(f[:, idx])
    a = hbv_fused.hbv_forward_numpy(tiled, phys, warmup=20)
    b = hbv_fused.hbv_forward_numpy(f, phys, warmup=20, forcing_index=idx)
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="forcing_index"):
        hbv_fused.hbv_forward_numpy(f, phys, forcing_index=idx + 1)


# ----------------------------------------------------------------------------- mixed mode (DynamicParams)
@pytest.mark.parametrize("use_betaet,rows", [(True, (0, 12)), (False, (0, 5)), (True, (3,))])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_mixed_dynamic_params_equal_full_tensor(use_betaet, rows, dtype):
    """A few time-varying rows passed compactly (DynamicParams) give the outputs of the expanded
    [T, B, n, nmul] tensor bit for bit, the same gradient of the dynamic rows, and the static rows'
    gradient summed over time (to rounding); the reference loop agrees too."""
    from dplpaper.models.base import DynamicParams
    T, B, M = 90, 5, 3
    ref, fused = pair(M, use_betaet=use_betaet)
    f = make_forcing(T, B, seed=4, dtype=dtype)
    st = rand_params(fused, B, seed=5, lo=0.05, hi=0.95, dtype=dtype).requires_grad_()
    g = torch.Generator().manual_seed(6)
    dy = (0.05 + 0.9 * torch.rand(T, B, len(rows), M, generator=g, dtype=dtype)).requires_grad_()
    dp = DynamicParams(st, dy, rows)
    w = torch.randn(T - 20, B, generator=g, dtype=dtype)
    grads = []
    outs = []
    for model, params in ((fused, dp), (fused, dp.full()), (ref, dp)):
        out = model(f, params, warmup=20)["streamflow"]
        st.grad = dy.grad = None
        (out * w).sum().backward()
        outs.append(out.detach())
        grads.append((st.grad.clone(), dy.grad.clone()))
    assert torch.equal(outs[0], outs[1])
    tol = dict(rtol=1e-9, atol=1e-10) if dtype == torch.float64 else dict(rtol=2e-4, atol=2e-5)
    assert torch.allclose(outs[0], outs[2], **tol)
    assert torch.equal(grads[0][1], grads[1][1])
    for k in (0, 1):
        assert torch.allclose(grads[0][k], grads[2][k], **tol)
    assert torch.allclose(grads[0][0], grads[1][0], **tol)
    assert float(grads[0][0][:, list(rows)].abs().max()) == 0.0  # placeholders get no gradient
    assert float(grads[0][1].abs().max()) > 0


def test_mixed_rows_validated():
    from dplpaper.models.base import DynamicParams
    st = torch.rand(2, 14, 1)
    with pytest.raises(ValueError, match="distinct"):
        DynamicParams(st, torch.rand(5, 2, 2, 1), (0, 0))
    with pytest.raises(ValueError, match="does not match"):
        DynamicParams(st, torch.rand(5, 3, 1, 1), (0,))
    with pytest.raises(ValueError, match="distinct parameter rows"):
        hbv_fused.hbv_fused_run_dyn(make_forcing(5, 2), torch.rand(2, 12, 1) + 1, torch.rand(5, 2, 2, 1), (1, 1),
                                    torch.ones(2, 5, 1))
