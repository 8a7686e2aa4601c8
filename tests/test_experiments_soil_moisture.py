"""Tests of the Case 1 (soil moisture) experiment module on tiny problems."""
import numpy as np
import pandas as pd
import pytest
import torch

from dplpaper.experiments import soil_moisture as sm
from dplpaper.models.surrogate import make_surrogate_training_set, train_surrogate
from dplpaper.models.vicwb import VICStyleModel


@pytest.fixture(autouse=True)
def _results_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("DPLPAPER_RESULTS", str(tmp_path / "results"))


@pytest.fixture(scope="module")
def real():
    return sm.load_case1(sm.Case1Config.quick(variant="real"))


@pytest.fixture(scope="module")
def twin():
    return sm.load_case1(sm.Case1Config.quick(variant="twin"))


@pytest.fixture(scope="module")
def tiny_surrogate(real):
    """A small surrogate trained in seconds on 12 cells (enough for the gradient / SCE-UA tests)."""
    cells = np.arange(0, 412, 35)
    f = real.forcing[:, cells]
    attrs = {k: real.soil[cells, i] for i, k in enumerate(sm.SOIL_VARS)}
    ds = make_surrogate_training_set(VICStyleModel(), f, attrs, n_param_sets=12, seed=0, outputs=("soil_moisture", "et"))
    return train_surrogate(ds, outputs=("soil_moisture", "et"), hidden=16, epochs=1, iters_per_epoch=50, batch=32,
                           seq_len=120, warmup=40, lr=1e-2, seed=0, progress=False)


def test_periods_and_spinup(real):
    tr = real.period_index(real.train_period)
    te = real.period_index(real.test_period)
    assert real.time[tr[0]] == pd.Timestamp("2015-04-01") and real.time[tr[-1]] == pd.Timestamp("2016-03-31")
    assert real.time[te[0]] == pd.Timestamp("2016-04-01") and real.time[te[-1]] == pd.Timestamp("2017-03-31")
    assert len(tr) == 366 and len(te) == 365                     # 2016 is a leap year
    assert np.intersect1d(tr, te).size == 0
    # test spin-up uses the real preceding days; training spin-up repeats the end of the training year
    ext, s = real.extended_index(real.test_period)
    assert s == real.spinup_days and real.time[ext[0]] == pd.Timestamp("2016-04-01") - pd.Timedelta(days=s)
    ext, s = real.extended_index(real.train_period)
    np.testing.assert_array_equal(ext[:s], tr[-s:])
    f, y = real.model_inputs(real.test_period, [3, 5])
    assert f.shape == (365 + s, 2, 6) and y.shape == (365 + s, 2)
    assert np.isnan(y[:s]).all() and np.isfinite(y[s:]).any()
    np.testing.assert_allclose(f[0, :, 3:], real.soil[[3, 5]], rtol=1e-6)
    # SMAP observations end 2017-03-31: nothing after the test period is used
    assert real.time[-1] == pd.Timestamp("2017-03-31")


def test_real_and_twin_data(real, twin):
    assert real.params_true is None and real.et_true is None
    assert twin.params_true.shape == (412, 5) and ((twin.params_true > 0) & (twin.params_true < 1)).all()
    # the twin keeps SMAP's real gaps, and its obs are truth + noise of the configured size
    np.testing.assert_array_equal(np.isnan(twin.obs), np.isnan(real.obs))
    ok = ~np.isnan(twin.obs)
    resid = (twin.obs - twin.sm_true)[ok]
    assert abs(resid.std() - 0.02) < 0.002 and abs(resid.mean()) < 0.002
    np.testing.assert_allclose(real.soil.sum(1), 100.0)
    assert np.isfinite(real.attributes).all() and real.attributes.shape == (412, len(sm.ATTRIBUTES))


def test_morans_i_smooth_vs_shuffled(real):
    smooth = real.lat + 0.5 * real.lon                          # a smooth field across CONUS
    shuffled = np.random.default_rng(0).permutation(smooth)
    i_smooth = sm.morans_i(smooth, real.lat, real.lon)
    i_shuffled = sm.morans_i(shuffled, real.lat, real.lon)
    assert i_smooth > 0.8 and abs(i_shuffled) < 0.15 and i_smooth > i_shuffled
    assert sm.mean_neighbour_difference(smooth, real.lat, real.lon) < sm.mean_neighbour_difference(shuffled, real.lat, real.lon)


def test_parameter_recovery_known_case():
    rng = np.random.default_rng(0)
    true = rng.random((50, 5))
    est = true.copy()
    est[:, 0] = true[:, 0] + 0.1                                 # pure bias
    est[:, 1] = 1 - true[:, 1]                                   # anti-correlated
    est[:, 2] = rng.random(50)                                   # unrelated
    rec = sm.parameter_recovery(est, true)
    assert list(rec.index) == list(sm.PARAM_NAMES)
    assert rec.loc["INFILT", "bias"] == pytest.approx(0.1) and rec.loc["INFILT", "rmse"] == pytest.approx(0.1)
    assert rec.loc["INFILT", "corr"] == pytest.approx(1.0)
    assert rec.loc["Dsmax", "corr"] == pytest.approx(-1.0)
    assert abs(rec.loc["Ds", "corr"]) < 0.4
    assert rec.loc["Ws", "rmse"] == 0 and rec.loc["EXPT", "bias"] == 0
    with pytest.raises(ValueError):
        sm.parameter_recovery(est[:10], true)


def test_epochs_to_threshold():
    h = pd.DataFrame({"epoch": [0, 1, 2, 3], "wall_time_s": [0, 1.5, 3, 4.5], "test_rmse": [0.09, 0.06, 0.049, 0.04]})
    assert sm.epochs_to_threshold(h, 0.05) == (2.0, 3.0)
    e, w = sm.epochs_to_threshold(h, 0.01)
    assert np.isnan(e) and np.isnan(w)


def test_neighbours_and_nearest_transfer(real):
    cfg = sm.Case1Config.quick()
    tr = sm.training_cells(real, "s8", cfg, "gz")
    nb = sm.neighbour_test_cells(real, tr)
    assert nb.size > 50 and np.intersect1d(nb, tr).size == 0
    assert sm.neighbour_test_cells(real, sm.training_cells(real, "s4", cfg, "gz")).size == 0
    # SCE-UA's parameters at a non-calibrated cell are those of the nearest calibrated cell
    params = np.full((412, 5), np.nan)
    params[tr] = np.arange(len(tr))[:, None] / len(tr)
    run = sm.MethodRun("sceua", "s8", 0, tr, params, pd.DataFrame())
    p = run.params_at(nb[:5], real)
    from dplpaper.data.twin import haversine_km
    for k, c in enumerate(nb[:5]):
        d = haversine_km(np.r_[real.lat[c], real.lat[tr]], np.r_[real.lon[c], real.lon[tr]])[0, 1:]
        np.testing.assert_array_equal(p[k], params[tr[np.argmin(d)]])
    np.testing.assert_array_equal(run.params_at(tr[:3], real), params[tr[:3]])


def test_soil_surrogate_passes_texture_and_gradients(real, tiny_surrogate):
    pbm = sm.SoilSurrogate(tiny_surrogate)
    f, _ = real.model_inputs(real.train_period, [0, 1, 2])
    f = torch.as_tensor(f)
    p = torch.full((3, 5, 1), 0.5, requires_grad=True)
    out = pbm(f, p, warmup=real.spinup_days)
    direct = tiny_surrogate(f[..., :3], p, warmup=real.spinup_days, attributes=f[0, :, 3:])
    torch.testing.assert_close(out["soil_moisture"], direct["soil_moisture"])
    out["soil_moisture"].mean().backward()
    assert p.grad.abs().sum() > 0


def test_sceua_through_surrogate_reduces_rmse(twin, tiny_surrogate):
    cfg = sm.Case1Config.quick(sce_complexes=1, use_cache=False)
    idx = np.array([10, 120, 240, 330])
    run = sm.run_sceua(twin, tiny_surrogate, idx, cfg, seed=0, max_evals=30)
    h = run.history
    assert h["epoch"].iloc[-1] >= 30 and (np.diff(h["epoch"]) > 0).all()
    assert (np.diff(h["wall_time_s"]) >= 0).all()
    assert np.isnan(run.params[np.setdiff1d(np.arange(412), idx)]).all() and np.isfinite(run.params[idx]).all()
    # the training RMSE of the best parameters is below that of the default parameters
    y = twin.obs[sm.period_slice(twin, twin.train_period)][:, idx]
    rmse = lambda p: np.nanmedian(sm.site_metrics(sm.simulate_surrogate(twin, tiny_surrogate, idx, p,
                                                                        twin.train_period)["soil_moisture"], y)["rmse"])
    default = sm.default_run(twin).params[idx]
    assert rmse(run.params[idx]) < rmse(default)
    # reproducible with the same seed
    again = sm.run_sceua(twin, tiny_surrogate, idx, cfg, seed=0, max_evals=30)
    np.testing.assert_array_equal(run.params, again.params)


def test_dpl_ga_learns_and_caches(twin, tiny_surrogate, tmp_path):
    cfg = sm.Case1Config.quick(dpl_batch=8, dpl_lr=1e-2, ga_hidden=16)
    idx = sm.training_cells(twin, "s16", cfg, "ga")[:16]
    run = sm.run_dpl(twin, tiny_surrogate, idx, cfg, net="ga", seed=0, epochs=3)
    h = run.history
    assert list(h.columns) == ["epoch", "wall_time_s", "test_rmse"] and len(h) == 4
    assert h["test_rmse"].iloc[-1] < h["test_rmse"].iloc[0]
    assert run.params.shape == (412, 5) and np.isfinite(run.params).all()
    path = tmp_path / "run.nc"
    run.to_netcdf(path)
    back = sm.MethodRun.from_netcdf(path)
    np.testing.assert_array_equal(back.params, run.params)
    np.testing.assert_array_equal(back.train_idx, idx)
    pd.testing.assert_frame_equal(back.history, h, check_dtype=False)


def test_et_comparison_truth_is_perfect(twin):
    idx = np.arange(0, 412, 40)
    truth = sm.MethodRun("truth", "-", 0, idx, twin.params_true, pd.DataFrame())
    summ, means = sm.et_comparison(twin, {"truth": truth, "default": sm.default_run(twin)}, idx)
    assert summ.loc["truth", "spatial_corr"] == pytest.approx(1.0)
    assert summ.loc["truth", "nse"] == pytest.approx(1.0) and summ.loc["truth", "bias"] == pytest.approx(0.0, abs=1e-9)
    assert summ.loc["default", "nse"] < 1.0
    assert len(means) == len(idx)


def test_config_modes():
    q, f = sm.Case1Config.quick(), sm.Case1Config.full()
    assert q.mode == "quick" and f.mode == "full" and len(f.seeds) > len(q.seeds)
    assert f.sce_complexes == 7 and f.dpl_epochs["s8"] > q.dpl_epochs["s8"]
    with pytest.raises(ValueError):
        sm.Case1Config(variant="other")
    assert q.key(["seed"]) != sm.Case1Config.quick(seed=1).key(["seed"])


def test_dpl_loss_reduction_per_cell(twin, tiny_surrogate):
    """``dpl_loss_reduction="site"`` trains on the mean of per-cell RMSEs: it learns, differs from the
    pooled loss, keys the run cache apart, and a bad value is refused."""
    with pytest.raises(ValueError, match="dpl_loss_reduction"):
        sm.Case1Config.quick(dpl_loss_reduction="median")
    cfgs = {r: sm.Case1Config.quick(dpl_batch=8, dpl_lr=1e-2, ga_hidden=16, dpl_loss_reduction=r) for r in ("pooled", "site")}
    idx = sm.training_cells(twin, "s16", cfgs["site"], "ga")[:16]
    runs = {r: sm.run_dpl(twin, tiny_surrogate, idx, c, net="ga", seed=0, epochs=3) for r, c in cfgs.items()}
    h = runs["site"].history
    assert h["test_rmse"].iloc[-1] < h["test_rmse"].iloc[0]
    assert not np.array_equal(runs["site"].params[idx], runs["pooled"].params[idx])
    assert cfgs["site"].key(sm.CASE1_RUN_FIELDS) != cfgs["pooled"].key(sm.CASE1_RUN_FIELDS)
