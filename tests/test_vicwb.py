"""Tests of the VIC-style water-balance model (dplpaper.models.vicwb)."""
import numpy as np
import pytest
from scipy.integrate import quad, solve_ivp

from dplpaper.models.vicwb import (PARAMETER_TABLE, VICStyleModel, arno_baseflow, brooks_corey_drain,
                                   simulate, soil_from_texture, vic_surface_runoff)


def synthetic_forcing(n_t=3 * 365, n_s=6, seed=0):
    """Seasonal temperature and PET, intermittent gamma-distributed rain: [time, site, 3]."""
    rng = np.random.default_rng(seed)
    doy = np.arange(n_t)
    temp = (8 - 14 * np.cos(2 * np.pi * doy / 365))[:, None] + rng.normal(0, 3, (n_t, n_s)) + rng.uniform(-5, 10, n_s)
    wet = rng.random((n_t, n_s)) < rng.uniform(0.15, 0.45, n_s)
    prcp = np.where(wet, rng.gamma(0.7, 12, (n_t, n_s)), 0.0)
    pet = np.clip(3 - 2.5 * np.cos(2 * np.pi * doy / 365), 0.1, None)[:, None] * rng.uniform(0.6, 1.5, n_s)
    return np.stack([prcp, temp, pet], axis=-1)


def defaults(n_s):
    return np.tile(PARAMETER_TABLE.defaults_unit(), (n_s, 1))


def with_param(n_s, name, u):
    p = defaults(n_s)
    p[:, PARAMETER_TABLE.index(name)] = u
    return p


def test_parameter_table():
    assert PARAMETER_TABLE.names == ["INFILT", "Dsmax", "Ds", "Ws", "EXPT"]
    assert VICStyleModel.forcing_names == ("precip", "temp", "pet")
    u = PARAMETER_TABLE.defaults_unit()
    assert np.all((u >= 0) & (u <= 1))
    for s in PARAMETER_TABLE:
        assert s.units and s.description


def test_water_balance_closes_multiyear():
    f = synthetic_forcing(n_t=5 * 365, n_s=8, seed=1)
    rng = np.random.default_rng(2)
    params = rng.random((8, 5))
    soil = {"sand": rng.uniform(5, 50, 8), "clay": rng.uniform(2, 45, 8)}
    m = VICStyleModel()
    s0 = m.initial_state(8, soil)
    storage0 = s0["layers"].sum(0) + s0["swe"]
    o = m.run(f, params, soil_properties=soil)
    p_tot = f[:, :, 0].sum(0)
    resid = p_tot - o["runoff"].sum(0) - o["et"].sum(0) - (o["storage"][-1] - storage0)
    assert np.all(np.abs(resid) / p_tot < 1e-9), resid / p_tot
    # daily balance too
    storage = np.concatenate([storage0[None], o["storage"]])
    daily = f[:, :, 0] - o["runoff"] - o["et"] - np.diff(storage, axis=0)
    assert np.abs(daily).max() < 1e-9
    assert np.allclose(o["runoff"], o["surface_runoff"] + o["baseflow"], rtol=0, atol=0)
    # a broken balance is detectable: dropping baseflow leaves a clear residual
    bad = p_tot - o["surface_runoff"].sum(0) - o["et"].sum(0) - (o["storage"][-1] - storage0)
    assert np.all(np.abs(bad) / p_tot > 1e-3)


def test_bounds_hold():
    f = synthetic_forcing(n_t=3 * 365, n_s=6, seed=3)
    f[100:110, :, 0] = 150.0          # extreme storm
    f[400:520, :, 0] = 0.0            # long drought with high PET
    f[400:520, :, 2] = 9.0
    rng = np.random.default_rng(4)
    for params in (rng.random((6, 5)), np.zeros((6, 5)), np.ones((6, 5))):
        m = VICStyleModel()
        o = m.run(f, params)
        soil = m.soil_arrays(6)
        for key in ("soil_moisture", "soil_moisture_2", "soil_moisture_3"):
            assert np.all(o[key] >= soil["residual"] - 1e-12), key
            assert np.all(o[key] <= soil["porosity"] + 1e-12), key
        for key in ("et", "surface_runoff", "baseflow", "runoff", "swe", "soil_water"):
            assert np.all(o[key] >= 0), key
        assert np.all(o["surface_runoff"] <= f[:, :, 0] + o["swe"].max() + 1e-9)
        assert np.all(o["et"] <= f[:, :, 2] + 1e-12)          # ET never exceeds PET
    # the storm saturates the top layer, the drought dries it well below field capacity
    assert np.all(o["soil_moisture"][100] > soil["field_capacity"])
    assert np.all(o["soil_moisture"][515] < soil["wilting_point"])


def _total(name, out_key, lo, hi, f):
    n_s = f.shape[1]
    a = simulate(f, with_param(n_s, name, lo))[out_key]
    b = simulate(f, with_param(n_s, name, hi))[out_key]
    return a, b


@pytest.mark.parametrize("name,key,sign", [
    ("INFILT", "surface_runoff", +1),     # steeper curve -> more saturation-excess runoff
    ("Dsmax", "baseflow", +1),            # faster bottom layer -> more baseflow
    ("Ds", "baseflow", +1),               # larger linear part (Ds < Ws) -> more baseflow
    ("Ws", "baseflow", -1),               # non-linear part starts later -> less baseflow
    ("EXPT", "soil_moisture", +1),        # larger exponent -> slower drainage -> wetter top layer
])
def test_parameter_directions(name, key, sign):
    f = synthetic_forcing(n_t=2 * 365, n_s=6, seed=5)
    lo, hi = (0.1, 0.6) if name == "Ds" else (0.1, 0.9)
    a, b = _total(name, key, lo, hi, f)
    diff = sign * (b.mean(0) - a.mean(0))
    assert np.all(diff > 0), (name, a.mean(0), b.mean(0))


def test_infilt_reduces_top_soil_moisture_and_exposes_expt_on_drainage():
    f = synthetic_forcing(n_t=2 * 365, n_s=4, seed=6)
    sm_lo, sm_hi = _total("INFILT", "soil_moisture_2", 0.0, 1.0, f)
    assert np.all(sm_hi.mean(0) < sm_lo.mean(0))   # less infiltration -> drier upper zone
    # faster drainage (small EXPT) moves more water to the bottom layer -> more baseflow
    bf_lo, bf_hi = _total("EXPT", "baseflow", 0.0, 1.0, f)
    assert np.all(bf_lo.sum(0) > bf_hi.sum(0))


def test_snow_accumulates_and_melts():
    n_t = 60
    f = np.zeros((n_t, 2, 3))
    f[:30, :, 0] = 5.0
    f[:30, :, 1] = -5.0
    f[30:, :, 1] = 4.0             # melt 2.5 * 4 = 10 mm/d
    f[:, :, 2] = 0.0
    m = VICStyleModel()
    o = m.run(f, defaults(2))
    assert np.allclose(o["swe"][29], 150.0)
    assert np.all(np.diff(o["swe"][:30], axis=0) > 0)
    assert np.all(o["surface_runoff"][:30] == 0)                 # nothing reaches the soil while frozen
    assert np.allclose(o["swe"][30], 140.0) and np.allclose(o["swe"][44], 0.0)
    assert np.all(o["soil_water"][30] > o["soil_water"][29])      # melt infiltrates
    # rain/snow partition: half snow at 0 degC
    f2 = np.zeros((1, 1, 3)); f2[0, 0] = (10.0, 0.0, 0.0)
    m.ddf = 0.0
    assert np.isclose(m.run(f2, defaults(1))["swe"][0, 0], 5.0)


def test_bad_input_rejected():
    f = synthetic_forcing(n_t=20, n_s=3, seed=7)
    m = VICStyleModel()
    p = defaults(3)
    p_bad = p.copy(); p_bad[1, 2] = 1.2
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        m.run(f, p_bad)
    p_bad[1, 2] = np.nan
    with pytest.raises(ValueError):
        m.run(f, p_bad)
    with pytest.raises(ValueError, match="5"):
        m.run(f, p[:, :4])
    f_bad = f.copy(); f_bad[4, 2, 0] = np.nan
    with pytest.raises(ValueError, match="precip.*time index 4, site index 2"):
        m.run(f_bad, p)
    f_bad = f.copy(); f_bad[3, 1, 2] = -1
    with pytest.raises(ValueError, match="pet"):
        m.run(f_bad, p)
    with pytest.raises(ValueError, match="porosity"):
        m.run(f, p, soil_properties={"porosity": 0.3, "field_capacity": 0.35, "wilting_point": 0.1,
                                      "residual": 0.05, "ksat": 100.0})
    with pytest.raises(ValueError, match="sand"):
        soil_from_texture([30, 120], [10, 10])


def test_warmup_shapes_and_param_layouts():
    f = synthetic_forcing(n_t=100, n_s=3, seed=8)
    p = np.random.default_rng(9).random((3, 5))
    full = simulate(f, p)
    part = VICStyleModel().run(f, p[:, :, None], warmup=30)
    for k in full:
        assert part[k].shape == (70, 3)
        np.testing.assert_array_equal(part[k], full[k][30:])


# ---------------------------------------------------------------- independent references
@pytest.mark.parametrize("b", [0.001, 0.05, 0.3, 0.4])
@pytest.mark.parametrize("wet", [0.0, 0.3, 0.8, 0.99])
@pytest.mark.parametrize("p", [1.0, 20.0, 200.0])
def test_vic_curve_matches_quadrature(b, wet, p):
    """R = P - integral of the unsaturated area fraction (1 - i/im)^b from i0 to min(i0+P, im)."""
    wmax = 200.0
    w = wet * wmax
    im = (1 + b) * wmax
    # i0: capacity where stored water int_0^i0 (1-i/im)^b di equals w, found numerically
    from scipy.optimize import brentq
    i0 = brentq(lambda i: quad(lambda s: (1 - s / im) ** b, 0, i)[0] - w, 0, im) if w > 0 else 0.0
    infil = quad(lambda s: (1 - s / im) ** b, i0, min(i0 + p, im))[0]
    r_ref = p - infil
    r = vic_surface_runoff(np.array(p), np.array(w), wmax, b)
    assert abs(r - r_ref) < 1e-7 * max(p, 1)


@pytest.mark.parametrize("c", [3.0, 8.0, 30.0])
@pytest.mark.parametrize("se0", [1.0, 0.7, 0.3])
def test_drainage_matches_ode(c, se0):
    k_over_d = 15.0
    sol = solve_ivp(lambda t, s: -k_over_d * np.maximum(s, 0) ** c, (0, 1), [se0], rtol=1e-11, atol=1e-14, method="LSODA")
    assert abs(brooks_corey_drain(np.array(se0), c, k_over_d) - sol.y[0, -1]) < 1e-7


def test_arno_baseflow_anchor_points():
    dsmax, ds, ws = 12.0, 0.2, 0.7
    assert np.isclose(arno_baseflow(ws, dsmax, ds, ws), ds * dsmax)
    assert np.isclose(arno_baseflow(1.0, dsmax, ds, ws), dsmax)
    assert np.isclose(arno_baseflow(0.35, dsmax, ds, ws), ds * dsmax * 0.5)
    assert arno_baseflow(0.0, dsmax, ds, ws) == 0
    x = np.linspace(0, 1, 101)
    assert np.all(np.diff(arno_baseflow(x, dsmax, ds, ws)) > 0)
    assert np.allclose(arno_baseflow(x, dsmax, 0.5, 1.0), 0.5 * dsmax * x)   # Ws = 1: purely linear


def test_soil_from_texture():
    s = soil_from_texture([90, 40, 10], [5, 20, 50])
    # loam (Cosby 1984): porosity 0.441, ksat ~ 364 mm/d
    assert np.isclose(s["porosity"][1], 0.505 - 0.0568 - 0.0074)
    assert 300 < s["ksat"][1] < 420
    assert np.all(np.diff(s["ksat"]) < 0)                   # sand conducts more than clay
    assert np.all(np.diff(s["field_capacity"]) > 0)         # clay holds more water
    assert np.all((s["residual"] < s["wilting_point"]) & (s["wilting_point"] < s["field_capacity"])
                  & (s["field_capacity"] < s["porosity"]))


# ---------------------------------------------------------------- compiled loop
def _random_case(seed=0, T=800, S=12):
    rng = np.random.default_rng(seed)
    precip = rng.gamma(0.5, 8.0, (T, S)) * (rng.random((T, S)) < 0.4)
    temp = 8 + 14 * np.sin(np.arange(T) / 58.0)[:, None] + rng.normal(0, 4, (T, S))   # snow and melt seasons
    pet = rng.uniform(0, 6, (T, S))
    soil = {"sand": rng.uniform(5, 55, S), "clay": rng.uniform(5, 40, S)}
    return np.stack([precip, temp, pet], -1), rng.random((S, 5)), soil


@pytest.mark.parametrize("warmup", [0, 90])
def test_c_loop_equals_the_numpy_reference(warmup):
    from dplpaper.models import vicwb_c

    if not vicwb_c.available():
        pytest.skip(f"no C kernel: {vicwb_c.unavailable_reason()}")
    f, p, soil = _random_case()
    p[0] = [0.0, 0.0, 0.0, 0.0, 0.0]          # range ends
    p[1] = [1.0, 1.0, 1.0, 1.0, 1.0]
    p[2, 2], p[2, 3] = 1.0, 0.0               # Ds above Ws: ARNO's non-monotone branch
    ref_model, c_model = VICStyleModel(backend="numpy"), VICStyleModel(backend="c")
    init = ref_model.initial_state(len(p), soil)
    init["layers"] = init["layers"] * np.linspace(0.3, 1.2, len(p))      # dry and over-full starts
    init["swe"] = np.linspace(0, 50, len(p))
    ref = ref_model.run(f, p, warmup=warmup, soil_properties=soil, initial_state=init)
    out = c_model.run(f, p, warmup=warmup, soil_properties=soil, initial_state=init)
    assert set(out) == set(ref)
    for k in ref:
        np.testing.assert_allclose(out[k], ref[k], rtol=1e-13, atol=1e-12, err_msg=k)
    np.testing.assert_allclose(c_model.final_state["layers"], ref_model.final_state["layers"], rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(c_model.final_state["swe"], ref_model.final_state["swe"], rtol=1e-13, atol=1e-12)
    # mass balance holds in the C loop too: P = Q + ET + d(storage)
    if warmup == 0:
        start = init["layers"].sum(0) + init["swe"]
        d_storage = np.diff(np.concatenate([start[None], out["storage"]]), axis=0)
        resid = f[:, :, 0] - out["runoff"] - out["et"] - d_storage
        assert np.abs(resid).max() < 1e-9


def test_backend_choice_and_missing_kernel(monkeypatch):
    from dplpaper.models import vicwb_c

    with pytest.raises(ValueError, match="backend"):
        VICStyleModel(backend="fortran")
    f, p, soil = _random_case(T=50, S=3)
    monkeypatch.setattr(vicwb_c, "_state", {"lib": None, "reason": "disabled for the test"})
    with pytest.raises(RuntimeError, match="disabled for the test"):
        VICStyleModel(backend="c").run(f, p, soil_properties=soil)
    auto = VICStyleModel().run(f, p, soil_properties=soil)               # falls back to NumPy
    np.testing.assert_array_equal(auto["runoff"], VICStyleModel(backend="numpy").run(f, p, soil_properties=soil)["runoff"])
