"""Tests of dplpaper.experiments.streamflow_vic (Case 2, the paper's VIC-surrogate gZ configuration).

A few shipped Caravan basins, short periods, a surrogate trained for a few iterations: the tests
check the plumbing (shapes, routing against an independent convolution, gradients, caching,
reproducibility, no test-period observation reaching gZ), not the surrogate's skill.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from dplpaper.experiments import streamflow as sf
from dplpaper.experiments import streamflow_vic as sv
from dplpaper.models.vicwb import VICStyleModel

BASINS = ["01022500", "01031500", "02053200", "03164000"]
TRAIN = ("2001-10-01", "2003-09-30")
TEST = ("1996-10-01", "1997-09-30")
WARM = 60


@pytest.fixture(scope="module")
def data():
    all_basins = sf.camels_caravan_basins(quick=True)
    basins = [b for b in BASINS if b in all_basins]
    basins += [b for b in all_basins if b not in basins][: 4 - len(basins)]
    ds, attrs = sf.load_streamflow_data(basins, quick=True)
    return ds, attrs, basins


def tiny(**kw) -> sv.VICSettings:
    base = dict(sur_param_sets=4, sur_hidden=8, sur_iters=20, sur_batch=8, sur_seq_len=120, sur_warmup=30,
                sur_eval_sets=2, hidden=8, epochs=2, batch_sites=4, window_days=150, warmup_days=WARM, lr=0.02,
                eval_every=1, use_cache=False)
    base.update(kw)
    return sv.VICSettings(**base)


@pytest.fixture(scope="module")
def surrogate(data, tmp_path_factory):
    ds, attrs, basins = data
    with pytest.MonkeyPatch.context() as mp:   # the trained surrogate is saved: never into results/
        mp.setenv("DPLPAPER_RESULTS", str(tmp_path_factory.mktemp("results")))
        return sv.get_surrogate(ds, attrs, basins, TRAIN, tiny(), mode="test")


def test_routed_table_is_vic_plus_routing():
    names = sv.ROUTED_VIC_TABLE.names
    assert names == ["INFILT", "Dsmax", "Ds", "Ws", "EXPT", "ROUTA", "ROUTB"]
    assert sv.RoutedRunoffSurrogate.parameter_table is sv.ROUTED_VIC_TABLE


def test_texture_from_camels_and_errors(data):
    ds, attrs, basins = data
    t = sv.texture(attrs, basins)
    np.testing.assert_array_equal(t["sand"], attrs["sand_frac"].sel(site=basins).values)
    assert set(t) == {"sand", "clay", "silt"} and all(((v >= 0) & (v <= 100)).all() for v in t.values())
    bad = attrs.copy()
    bad["clay_frac"] = bad["clay_frac"].where(bad["site"] != basins[1])
    with pytest.raises(ValueError, match=f"basin {basins[1]}: attribute clay_frac"):
        sv.texture(bad, basins)
    with pytest.raises(KeyError, match="silt_frac"):
        sv.texture(attrs.drop_vars("silt_frac"), basins)


def test_training_set_is_the_legacy_model_after_spinup(data):
    ds, attrs, basins = data
    s = tiny()
    d = sv.surrogate_training_set(ds, attrs, basins, TRAIN, s, spinup_days=100)
    n_days = (pd.Timestamp(TRAIN[1]) - pd.Timestamp(TRAIN[0])).days + 1
    assert d["outputs"]["runoff"].shape == (s.sur_param_sets, n_days, len(basins))
    assert d["forcing"].shape == (n_days, len(basins), 3)
    # an independent run of the VIC-style model for parameter set 2
    sub = ds.sel(site=basins, time=slice(pd.Timestamp(TRAIN[0]) - pd.Timedelta(days=100), TRAIN[1]))
    f = sf.forcing_array(sub).astype(np.float64)
    p = np.broadcast_to(d["params"][2], (len(basins), 5))
    ref = VICStyleModel().run(f, p, warmup=100, soil_properties=sv.texture(attrs, basins))["runoff"]
    np.testing.assert_allclose(d["outputs"]["runoff"][2], ref, rtol=1e-12)
    assert (d["outputs"]["runoff"] >= 0).all()


def test_routing_matches_numpy_convolution_and_gradients_flow(data, surrogate):
    ds, attrs, basins = data
    pbm = sv.RoutedRunoffSurrogate(surrogate)
    sub = ds.sel(site=basins, time=slice(TRAIN[0], "2002-06-30"))
    f = sv._forcing_with_texture(sf.forcing_array(sub), sv.texture(attrs, basins))
    g = torch.Generator().manual_seed(0)
    p = torch.rand(len(basins), 7, 1, generator=g).requires_grad_(True)
    out = pbm(f, p, warmup=10)
    assert out["streamflow"].shape == (f.shape[0] - 10, len(basins)) and (out["runoff"] >= 0).all()
    # reference: the surrogate's runoff convolved with the gamma UH in NumPy
    full = pbm(f, p.detach(), warmup=0)
    phys = sv.ROUTED_VIC_TABLE.to_physical(p.detach()[..., 0].double().numpy(), dim=-1)
    for s in range(len(basins)):
        a, theta = phys[s, 5] + 0.1, phys[s, 6] + 0.5
        t = np.arange(15) + 0.5
        w = t ** (a - 1) * np.exp(-t / theta)
        w /= w.sum()
        ref = np.convolve(full["runoff"][:, s].double().numpy(), w)[: f.shape[0]]
        np.testing.assert_allclose(full["streamflow"][:, s].numpy(), ref, rtol=2e-4, atol=1e-5)
    # gradients reach every parameter; the routing one matches a finite difference
    loss = (out["streamflow"] * torch.linspace(0, 1, out["streamflow"].shape[0])[:, None]).sum()
    loss.backward()
    assert torch.isfinite(p.grad).all() and (p.grad.abs().sum(0)[:, 0] > 0).all()
    h = 1e-2
    with torch.no_grad():
        pp, pm = p.detach().clone(), p.detach().clone()
        pp[0, 6, 0] += h
        pm[0, 6, 0] -= h
        w = torch.linspace(0, 1, out["streamflow"].shape[0])[:, None]
        fd = ((pbm(f, pp, warmup=10)["streamflow"] * w).sum() - (pbm(f, pm, warmup=10)["streamflow"] * w).sum()) / (2 * h)
    assert float(p.grad[0, 6, 0]) == pytest.approx(float(fd), rel=0.05)


def test_rejects_wrong_surrogate_and_params(data, surrogate):
    pbm = sv.RoutedRunoffSurrogate(surrogate)
    with pytest.raises(ValueError, match=r"params must be \[site, 7"):
        pbm(torch.zeros(10, 2, 6), torch.full((2, 5), 0.5))
    from dplpaper.models.surrogate import LSTMSurrogate
    from dplpaper.models.vicwb import PARAMETER_TABLE
    with pytest.raises(ValueError, match="runoff"):
        sv.RoutedRunoffSurrogate(LSTMSurrogate(PARAMETER_TABLE, outputs=("soil_moisture",), n_attr=3))


def test_legacy_streamflow_conserves_water(data):
    ds, attrs, basins = data
    sub = ds.sel(site=basins, time=slice("2001-10-01", "2003-09-30"))
    f = sf.forcing_array(sub)
    tex = sv.texture(attrs, basins)
    p = np.full((len(basins), 7), 0.5)
    q = sv.legacy_streamflow(f, tex, p, warmup=0)
    runoff = VICStyleModel().run(f.astype(np.float64), p[:, :5], soil_properties=tex)["runoff"]
    # routing only delays: what left by the end plus what is still in transit equals the runoff
    assert (q.sum(0) <= runoff.sum(0) + 1e-9).all()
    assert np.allclose(q.sum(0), runoff.sum(0), rtol=0.05)
    np.testing.assert_allclose(sv.legacy_streamflow(f, tex, p, warmup=30), q[30:])


def test_surrogate_cache_and_accuracy_table(data, tmp_path, monkeypatch):
    monkeypatch.setenv("DPLPAPER_RESULTS", str(tmp_path))
    ds, attrs, basins = data
    s = tiny(sur_iters=5, use_cache=True)
    a = sv.get_surrogate(ds, attrs, basins, TRAIN, s, mode="test")
    path = sv.surrogate_path(s, basins, TRAIN, "test")
    assert path.exists()
    b = sv.get_surrogate(ds, attrs, basins, TRAIN, s, mode="test")       # loaded, not retrained
    for k, v in a.state_dict().items():
        torch.testing.assert_close(v, b.state_dict()[k])
    assert s.surrogate_key(basins, TRAIN) != tiny(sur_iters=6).surrogate_key(basins, TRAIN)
    acc = sv.surrogate_accuracy(a, ds, attrs, basins, TEST, s, spinup_days=60)
    assert list(acc.columns) == ["site", "set", "corr", "nse", "rmse"] and len(acc) == 2 * len(basins)
    assert np.isfinite(acc["rmse"]).all()


def test_gz_run_reproducible_and_blind_to_test_observations(data, surrogate):
    ds, attrs, basins = data
    s = tiny()
    r1, leg1 = sv.run_dpl_vic(ds, attrs, basins, TRAIN, TEST, s, surrogate, seed=1, warmup_days=WARM)
    assert len(r1.metrics) == len(basins) and len(leg1) == len(basins)
    assert r1.parameters.shape == (len(basins), 7, 1) and ((r1.parameters > 0) & (r1.parameters < 1)).all()
    n_test = (pd.Timestamp(TEST[1]) - pd.Timestamp(TEST[0])).days + 1
    assert r1.simulation.sizes == {"site": len(basins), "time": n_test}
    assert "test_median_nse" in r1.history and len(r1.history) == s.epochs + 1
    # observations outside the training period (test period and the spin-up year before training)
    # are scrambled: the learned parameters must not change
    ds2 = ds.copy(deep=True)
    q = ds2["streamflow"].values
    outside = (ds2["time"] < np.datetime64(TRAIN[0])) | (ds2["time"] > np.datetime64(TRAIN[1]))
    q[:, outside.values] = np.random.default_rng(0).gamma(1.0, 2.0, size=q[:, outside.values].shape)
    ds2["streamflow"].values[:] = q
    r2, _ = sv.run_dpl_vic(ds2, attrs, basins, TRAIN, TEST, s, surrogate, seed=1, warmup_days=WARM)
    np.testing.assert_array_equal(r1.parameters, r2.parameters)
    # ... but a change inside the training period does reach gZ
    ds3 = ds.copy(deep=True)
    inside = ~outside.values
    ds3["streamflow"].values[:, inside] *= 1.5
    r3, _ = sv.run_dpl_vic(ds3, attrs, basins, TRAIN, TEST, s, surrogate, seed=1, warmup_days=WARM)
    assert not np.array_equal(r1.parameters, r3.parameters)


def test_legacy_metrics_are_the_vic_style_model_with_the_learned_parameters(data, surrogate):
    ds, attrs, basins = data
    s = tiny(net="ga", epochs=1, eval_every=0)
    r, leg = sv.run_dpl_vic(ds, attrs, basins, TRAIN, TEST, s, surrogate, seed=0, warmup_days=WARM)
    sub = ds.sel(site=basins, time=slice(pd.Timestamp(TEST[0]) - pd.Timedelta(days=WARM), TEST[1]))
    q = sv.legacy_streamflow(sf.forcing_array(sub), sv.texture(attrs, basins), r.parameters[..., 0], warmup=WARM)
    obs = sub["streamflow"].transpose("time", "site").values[WARM:]
    from dplpaper import metrics
    np.testing.assert_allclose(leg["nse"].values, metrics.nse(q.astype(float), obs.astype(float)), rtol=1e-6)
    with pytest.raises(ValueError, match="net must be"):
        sv.run_dpl_vic(ds, attrs, basins, TRAIN, TEST, tiny(net="lstm"), surrogate)


def test_sceua_of_the_legacy_model_improves_and_reports_its_parameters(data):
    ds, attrs, basins = data
    r = sv.run_sceua_vic(ds, attrs, basins[:2], TRAIN, TEST, max_evals=80, n_complexes=2, warmup_days=WARM)
    lc = r.learning_curve
    assert lc["best_cost_mean"].iloc[-1] < lc["best_cost_mean"].iloc[0]
    assert r.parameters.shape == (2, 7) and len(r.metrics) == 2
    sub = ds.sel(site=basins[:2], time=slice(pd.Timestamp(TEST[0]) - pd.Timedelta(days=WARM), TEST[1]))
    q = sv.legacy_streamflow(sf.forcing_array(sub), sv.texture(attrs, basins[:2]), r.parameters, warmup=WARM)
    obs = sub["streamflow"].transpose("time", "site").values[WARM:]
    from dplpaper import metrics
    np.testing.assert_allclose(r.metrics["nse"].values, metrics.nse(q.astype(float), obs.astype(float)), rtol=1e-9)
