"""Tests of dplpaper.experiments.streamflow (Cases 2 and 3) on a tiny real problem.

A few shipped Caravan basins, short periods (two water years plus a 60-day spin-up), small
networks and one or two epochs: each test takes seconds.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from dplpaper import metrics
from dplpaper.experiments import hbv_baselines as hb
from dplpaper.experiments import streamflow as sf

BASINS = ["01022500", "01031500", "02053200"]
TRAIN = ("2001-10-01", "2003-09-30")
TEST = ("1995-10-01", "1996-09-30")
WARM = 60


@pytest.fixture(scope="module")
def data():
    all_basins = sf.camels_caravan_basins(quick=True)
    basins = BASINS + [b for b in all_basins if b not in BASINS][:3]
    ds, attrs = sf.load_streamflow_data(basins, quick=True)
    return ds, attrs, basins


def tiny_settings(**kw) -> sf.DPLSettings:
    base = dict(nmul=2, hidden=16, n_layers=1, epochs=2, batch_sites=6, window_days=200, warmup_days=WARM, lr=0.02)
    base.update(kw)
    return sf.DPLSettings(**base)


def test_basin_list_is_camels_531_with_caravan():
    b = sf.camels_caravan_basins(quick=True)
    assert len(b) == 40 and b == sorted(b) and len(set(b)) == 40
    assert all(len(x) == 8 for x in b)


def test_configs_quick_and_full():
    q2, f2 = sf.Case2Config.quick(), sf.Case2Config.full()
    assert q2.mode == "quick" and f2.mode == "full" and q2.quick_data is True and f2.quick_data is None
    assert q2.train_period == ("1999-10-01", "2008-09-30") and q2.test_period == ("1989-10-01", "1999-09-30")
    assert len(f2.seeds) > 1 and f2.dpl.epochs > q2.dpl.epochs
    q3, f3 = sf.Case3Config.quick(), sf.Case3Config.full()
    assert f3.k_folds == 10 and q3.k_folds < 10
    assert len(f3.attribute_sets["8"]) == 8 and len(f3.attribute_sets["27"]) == 27
    assert max(f3.fractions) == 1.0 and len(f3.scaling_seeds) > 1
    # regionalizations end with a gradient stage (converged baselines) in both modes
    assert min(q2.regionalization_refine_steps, f2.regionalization_refine_steps, q3.regionalization_refine_steps,
               f3.regionalization_refine_steps) > 0


def test_attribute_sets_exist_and_have_no_streamflow_signatures(data):
    _, attrs, _ = data
    for n in sf.ATTRIBUTES_27 + tuple(sf.BECK_ATTRIBUTES_CAMELS):
        assert n in attrs, n
    leaky = {"q_mean", "runoff_ratio", "baseflow_index", "q5", "q95", "slope_fdc", "stream_elas"}
    assert not leaky & set(sf.ATTRIBUTES_27)
    assert len(set(sf.ATTRIBUTES_27)) == 27


def test_assembled_tensors_match_xarray(data):
    ds, attrs, basins = data
    names = list(sf.BECK_ATTRIBUTES_CAMELS)
    norm = sf.fit_attribute_normalizer(attrs, basins, names)
    td = sf.assemble(ds, attrs, basins, TRAIN, names, norm, warmup_days=WARM)
    days = (pd.Timestamp(TRAIN[1]) - pd.Timestamp(TRAIN[0])).days + 1
    assert tuple(td.forcing.shape) == (days + WARM, len(basins), 3)
    assert td.site_ids == basins
    k = 2
    start = pd.Timestamp(TRAIN[0]) - pd.Timedelta(days=WARM)
    # day WARM is the period's first day
    for j, v in enumerate(("precip", "temp", "pet")):
        x = ds[v].sel(site=basins[k], time=slice(start, TRAIN[1])).values
        if v != "temp":
            x = np.maximum(x, 0)
        np.testing.assert_array_equal(td.forcing[:, k, j].numpy(), x.astype(np.float32))
    q = ds["streamflow"].sel(site=basins[k], time=slice(TRAIN[0], TRAIN[1])).values
    np.testing.assert_array_equal(td.target[WARM:, k].numpy(), q.astype(np.float32))
    assert torch.isnan(td.target[:WARM]).all()  # spin-up days never scored
    raw = np.array([float(attrs[n].sel(site=basins[k])) for n in names])
    np.testing.assert_allclose(td.attributes[k].numpy(), ((raw - norm.mean) / norm.std).astype(np.float32), rtol=1e-5)
    assert (td.forcing[..., 0] >= 0).all() and (td.forcing[..., 2] >= 0).all()


def test_normalizer_fitted_on_training_basins_only(data):
    ds, attrs, basins = data
    names = list(sf.ATTRIBUTES_27)
    train, test = basins[:4], basins[4:]
    norm = sf.fit_attribute_normalizer(attrs, train, names)
    x_train = sf.attribute_matrix(attrs, train, names)
    j = names.index("p_mean")
    assert norm.mean[j] == pytest.approx(x_train[:, j].mean())
    x_all = sf.attribute_matrix(attrs, basins, names)
    assert norm.mean[j] != pytest.approx(x_all[:, j].mean())
    ja = names.index("area_gages2")  # log-transformed
    pre = np.log10(np.sqrt(x_train[:, ja]) + 0.1)
    assert norm.mean[ja] == pytest.approx(pre.mean())
    td = sf.assemble(ds, attrs, test, TEST, names, norm, WARM, fill_basins=train)
    assert torch.isfinite(td.attributes).all()


def test_attribute_nan_filled_with_training_mean(data):
    _, attrs, basins = data
    a = attrs.copy(deep=True)
    a["p_mean"].loc[{"site": basins[0]}] = np.nan
    x = sf.attribute_matrix(a, basins[:2], ["p_mean"], fill_basins=basins[1:4])
    assert x[0, 0] == pytest.approx(np.mean([float(attrs["p_mean"].sel(site=b)) for b in basins[1:4]]))
    with pytest.raises(KeyError):
        sf.attribute_matrix(attrs, basins, ["not_an_attribute"])


def test_pub_folds_disjoint_and_cover(data):
    basins = sf.camels_caravan_basins(quick=True)
    folds = sf.pub_folds_for(basins, 4, seed=0)
    flat = [b for f in folds for b in f]
    assert len(flat) == len(set(flat)) == len(basins) and set(flat) == set(basins)
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    assert sf.pub_folds_for(basins, 4, seed=0) == folds and sf.pub_folds_for(basins, 4, seed=1) != folds


def test_fast_candidate_costs_match_metrics(data):
    ds, attrs, basins = data
    names = list(sf.BECK_ATTRIBUTES_CAMELS)
    td = sf.assemble(ds, attrs, basins, TRAIN, names, sf.fit_attribute_normalizer(attrs, basins, names), WARM)
    obs = td.target[WARM:].numpy()
    theta = np.random.default_rng(0).random((3, len(basins), 14))
    for obj in ("nse", "kge"):
        runner = hb.CandidateRunner(td.forcing.numpy(), obs, WARM, obj, chunk=2)  # 3 candidates: one padded chunk
        c = runner.costs(theta)
        for i in range(3):
            sim = hb.hbv_numpy(td.forcing.numpy(), theta[i], WARM)
            ref = 1 - (metrics.nse(sim.astype(float), obs.astype(float)) if obj == "nse"
                       else metrics.kge(sim.astype(float), obs.astype(float), variant="2012"))
            np.testing.assert_allclose(c[i], ref, rtol=1e-4, atol=1e-4)


def test_short_dpl_run_improves_nse_and_is_reproducible(data):
    ds, attrs, basins = data
    names = list(sf.BECK_ATTRIBUTES_CAMELS)
    s0 = tiny_settings(epochs=1)
    s = tiny_settings(epochs=8, eval_every=8)
    r = sf.run_dpl_hbv(ds, attrs, basins, basins, TRAIN, TRAIN, names, s, seed=0, warmup_days=WARM)
    h = r.history
    before, after = h["test_median_nse"].iloc[0], h["test_median_nse"].iloc[-1]
    assert after > before + 0.05, (before, after)
    assert list(r.metrics.columns[:3]) == ["site", "nse", "kge"] and len(r.metrics) == len(basins)
    assert r.simulation.sizes == {"site": len(basins), "time": (pd.Timestamp(TRAIN[1]) - pd.Timestamp(TRAIN[0])).days + 1}
    assert r.parameters.shape == (len(basins), 14, 2) and (r.parameters > 0).all() and (r.parameters < 1).all()
    a = sf.run_dpl_hbv(ds, attrs, basins[:3], basins[3:], TRAIN, TEST, names, s0, seed=3, warmup_days=WARM)
    b = sf.run_dpl_hbv(ds, attrs, basins[:3], basins[3:], TRAIN, TEST, names, s0, seed=3, warmup_days=WARM)
    np.testing.assert_array_equal(a.simulation.values, b.simulation.values)
    assert list(a.metrics["site"]) == basins[3:]


def test_regionalization_and_sceua_improve_on_their_start(data):
    ds, attrs, basins = data
    names = list(sf.BECK_ATTRIBUTES_CAMELS)[:2]
    g = sf.run_regionalization(ds, attrs, basins, basins[:2], TRAIN, TEST, names, max_evals=150, n_complexes=1,
                               objective="kge", warmup_days=WARM)
    lc = g.learning_curve
    assert lc["best_cost_median"].iloc[-1] <= lc["best_cost_median"].iloc[0]
    assert len(g.metrics) == 2 and g.parameters.shape == (2, 14)
    s = sf.run_sceua_hbv(ds, basins[:2], TRAIN, TEST, max_evals=150, n_complexes=2, objective="nse",
                         warmup_days=WARM)
    lc = s.learning_curve
    assert lc["best_cost_mean"].iloc[-1] < lc["best_cost_mean"].iloc[0]
    # the calibrated parameters reproduce the reported test metrics
    sub = ds.sel(site=basins[:2], time=slice(pd.Timestamp(TEST[0]) - pd.Timedelta(days=WARM), TEST[1]))
    sim = hb.hbv_numpy(sf.forcing_array(sub), s.parameters, WARM)
    obs = sub["streamflow"].transpose("time", "site").values[WARM:]
    np.testing.assert_allclose(metrics.nse(sim.astype(float), obs.astype(float)), s.metrics["nse"], rtol=1e-6)


@pytest.mark.parametrize("objective", ["nse", "kge"])
def test_torch_costs_match_numpy_costs_and_finite_differences(data, objective):
    """The differentiable cost of the regionalization's refinement is the SCE-UA cost (same values),
    and its gradient matches central finite differences of the NumPy cost. No warm-up here: HBV's
    warm-up runs without gradient (as in dPL training), so with one the gradient leaves out how the
    parameters shape the initial states (for FC about 8 % of the derivative over two years)."""
    ds, attrs, basins = data
    sub = ds.sel(site=basins[:4], time=slice(TRAIN[0], TRAIN[1]))
    f = sf.forcing_array(sub)
    obs = sub["streamflow"].transpose("time", "site").values
    run = hb.CandidateRunner(f, obs, 0, objective, True, 1)
    theta = np.random.default_rng(0).uniform(0.2, 0.8, (4, 14))
    ref = run.costs(theta[None])[0]
    th = torch.tensor(theta, requires_grad=True)
    c = run.torch_costs(th)
    np.testing.assert_allclose(c.detach().numpy(), ref, rtol=2e-6, atol=1e-7)
    c.sum().backward()
    g = th.grad.numpy()
    assert np.isfinite(g).all()
    h = 1e-3
    for s, j in [(0, 0), (1, 1), (2, 6), (3, 9), (0, 12)]:  # BETA, FC, PERC, CFMAX, ROUTA
        up, dn = theta.copy(), theta.copy()
        up[s, j] += h
        dn[s, j] -= h
        fd = (run.costs(up[None])[0, s] - run.costs(dn[None])[0, s]) / (2 * h)
        assert g[s, j] == pytest.approx(fd, rel=0.05, abs=2e-3), (s, j, g[s, j], fd)


def test_regionalization_refinement_lowers_the_training_cost(data):
    ds, attrs, basins = data
    names = list(sf.BECK_ATTRIBUTES_CAMELS)[:2]
    kw = dict(max_evals=60, n_complexes=1, objective="nse", warmup_days=WARM)
    plain = sf.run_regionalization(ds, attrs, basins, basins[:2], TRAIN, TEST, names, **kw)
    ref = sf.run_regionalization(ds, attrs, basins, basins[:2], TRAIN, TEST, names, refine_steps=40, **kw)
    lc = ref.learning_curve
    assert list(lc["stage"].unique()) == ["sceua", "gradient"]
    sce, grad = lc[lc["stage"] == "sceua"], lc[lc["stage"] == "gradient"]
    # the same SCE-UA stage, then a gradient stage that starts where it ended and goes lower
    np.testing.assert_allclose(sce["best_cost_median"], plain.learning_curve["best_cost_median"])
    assert grad["best_cost_median"].iloc[0] == pytest.approx(sce["best_cost_median"].iloc[-1], rel=1e-5)
    assert grad["best_cost_median"].iloc[-1] < grad["best_cost_median"].iloc[0] - 0.01
    assert grad["epoch"].iloc[0] == sce["epoch"].iloc[-1] and len(grad) == 41
    assert np.isfinite(ref.metrics["nse"]).all()


def test_pub_and_scaling_tables(data, tmp_path, monkeypatch):
    monkeypatch.setenv("DPLPAPER_RESULTS", str(tmp_path))
    ds, attrs, basins = data
    cfg = sf.Case3Config(mode="test", period=TRAIN, warmup_days=WARM, k_folds=3,
                         attribute_sets={"2": tuple(sf.BECK_ATTRIBUTES_CAMELS[:2])}, regionalization_sets=("2",),
                         dpl=tiny_settings(epochs=1), regionalization_max_evals=60, regionalization_complexes=1,
                         fractions=(0.5, 1.0), scaling_seeds=(0,), scaling_attributes="2")
    folds = sf.pub_folds_for(basins, 3, seed=0)
    t = sf.run_pub_folds(ds, attrs, folds, cfg)
    for m in t["method"].unique():
        held = t[t["method"] == m]
        assert sorted(held["site"]) == sorted(basins)  # every basin held out exactly once
        for i, f in enumerate(folds):
            assert set(held[held["fold"] == i]["site"]) == set(f)
    assert (tmp_path / "case3" / "pub_metrics_test.csv").exists()
    # the regionalization's rows carry its convergence on each fold, dPL's rows none
    reg = t["method"].str.startswith("regionalization")
    assert t.loc[reg, "budget_converged"].notna().all() and t.loc[~reg, "budget_converged"].isna().all()
    assert t.loc[~reg, "tail_improvement"].isna().all()
    assert t.loc[reg].groupby("fold")["budget_converged"].nunique().eq(1).all()
    sc = sf.scaling_curve(ds, attrs, folds, cfg)
    summ = sf.scaling_summary(sc)
    assert set(summ["method"]) == {"dPL", "regionalization"}
    d = sc[(sc["method"] == "dPL")]
    assert sorted(d["fraction"].unique()) == [0.5, 1.0]
    assert (d.groupby("fraction")["n_train"].max() <= 4).all()
    # at share 1 both methods are PUB's own fits: taken from the stored PUB table (read back from its
    # CSV, key checked), the scaling table is the same as fitted afresh
    stored = sf.stored_pub_table(cfg, folds)
    assert stored is not None and len(stored) == len(t)
    calls = []
    real_dpl, real_reg = sf.run_dpl_hbv, sf.run_regionalization
    monkeypatch.setattr(sf, "run_dpl_hbv", lambda *a, **k: calls.append("dpl") or real_dpl(*a, **k))
    monkeypatch.setattr(sf, "run_regionalization", lambda *a, **k: calls.append("reg") or real_reg(*a, **k))
    sc2 = sf.scaling_curve(ds, attrs, folds, cfg, pub_table=stored, tag="_reuse")
    assert calls == ["dpl"] * len(folds)   # share 0.5 only: the share-1 fits were reused
    key = ["method", "fraction", "fold", "site"]
    pd.testing.assert_frame_equal(sc.sort_values(key).reset_index(drop=True)[key + ["nse", "kge"]],
                                  sc2.sort_values(key).reset_index(drop=True)[key + ["nse", "kge"]])
    assert (tmp_path / "case3" / "scaling_test_reuse.csv").exists()
    # another config (or other folds) does not match the stored table's key
    assert sf.stored_pub_table(replace(cfg, regionalization_max_evals=61), folds) is None
    assert sf.stored_pub_table(cfg, [folds[1], folds[0], folds[2]]) is None


def test_matching_share():
    assert sf.matching_share([0.1, 0.2, 0.4], [0.3, 0.5, 0.6], 0.4) == pytest.approx(0.15)
    assert sf.matching_share([0.1, 0.2], [0.5, 0.6], 0.4) == pytest.approx(0.1)
    assert np.isnan(sf.matching_share([0.1, 0.2], [0.1, 0.2], 0.4))


def test_pet_correction_matches_camels_mean():
    ds, attrs = sf.load_streamflow_data(BASINS, quick=True, forcing="era5land")
    raw, _ = sf.load_streamflow_data(BASINS, quick=True, pet_correction=False, forcing="era5land")
    m = ds["pet"].where(ds["pet"] > 0, 0).mean("time")
    np.testing.assert_allclose(m.values, attrs["pet_mean"].values, rtol=1e-3)
    np.testing.assert_allclose(ds["pet"].values, raw["pet"].values * ds["pet_scale"].values[:, None], rtol=1e-6)
    assert (ds["pet_scale"] < 1).all()  # ERA5-Land PET is too high over these basins
    np.testing.assert_array_equal(ds["precip"].values, raw["precip"].values)


def test_pub_medians_and_scaling_phases():
    t = pd.DataFrame({"method": ["a"] * 6 + ["b"] * 3, "seed": [0, 0, 0, 1, 1, 1, 0, 0, 0],
                      "site": list("xyzxyzxyz"), "kge": [0.1, 0.2, 0.3, 0.3, 0.4, 0.5, 0.0, 1.0, 0.5],
                      "nse": [0.0] * 9})
    m = sf.pub_medians(t)
    assert m.loc["a", "median_kge"] == pytest.approx((0.2 + 0.4) / 2) and m.loc["b", "median_kge"] == 0.5
    assert m.loc["a", "n_basins"] == 3 and list(m.index) == ["a", "b"]
    early, late = sf.scaling_phases([1.0, 0.02, 0.25, 0.5], [0.6, 0.38, 0.54, 0.57])
    assert early == pytest.approx(0.16) and late == pytest.approx(0.06)
    assert np.isnan(sf.scaling_phases([0.1, 0.5, 1.0], [0.1, 0.2, 0.3])[0])
    assert np.isnan(sf.scaling_phases([0.25, 0.5, 1.0], [0.1, 0.2, 0.3])[1])


def test_pub_fold_subset_equals_the_full_run_on_those_folds(data, tmp_path, monkeypatch):
    monkeypatch.setenv("DPLPAPER_RESULTS", str(tmp_path))
    ds, attrs, basins = data
    cfg = sf.Case3Config(mode="test", period=TRAIN, warmup_days=WARM, k_folds=3,
                         attribute_sets={"2": tuple(sf.BECK_ATTRIBUTES_CAMELS[:2])}, regionalization_sets=("2",),
                         dpl=tiny_settings(epochs=1), regionalization_max_evals=40, regionalization_complexes=1)
    folds = sf.pub_folds_for(basins, 3, seed=0)
    full = sf.run_pub_folds(ds, attrs, folds, cfg, methods=("dpl",))
    part = sf.run_pub_folds(ds, attrs, folds, cfg, methods=("dpl",), fold_indices=[1])
    assert set(part["fold"]) == {1}
    a = full[full["fold"] == 1].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, part.reset_index(drop=True))
    m = sf.pub_medians(full, folds=[1])
    assert m.iloc[0]["n_basins"] == len(folds[1])


def test_daymet_is_the_default_forcing_with_caravan_streamflow():
    from dplpaper.data import load_caravan, load_camels_daymet
    ds, attrs = sf.load_streamflow_data(BASINS, quick=True)
    assert ds.attrs["forcing"] == "daymet"
    car = load_caravan(BASINS, quick=True)
    dm = load_camels_daymet(BASINS, quick=True)
    t = ds["time"].values
    assert str(t[0])[:10] == "1981-01-01" and str(t[-1])[:10] == "2014-12-31"
    np.testing.assert_array_equal(ds["streamflow"].values, car["streamflow"].sel(time=t).values.astype(np.float32))
    np.testing.assert_array_equal(ds["precip"].values, dm["precip"].sel(time=t).values.astype(np.float32))
    np.testing.assert_array_equal(ds["pet"].values, dm["pet"].sel(time=t).values.astype(np.float32))
    np.testing.assert_allclose(ds["temp"].values, (dm["tmin"] + dm["tmax"]).sel(time=t).values / 2, atol=1e-5)
    with pytest.raises(ValueError, match="forcing must be one of"):
        sf.load_streamflow_data(BASINS, quick=True, forcing="nldas")


def test_portable_export_round_trip_is_exact(tmp_path):
    from dplpaper.experiments import portable
    ds, attrs = sf.load_streamflow_data(BASINS, quick=True)
    portable.check_roundtrip(ds, attrs, tmp_path / "x.npz", ("1995-10-01", "1997-09-30"), sf.ATTRIBUTES_27)
    ds2, at2 = portable.load_streamflow_inputs(tmp_path / "x.npz")
    assert list(ds2["site"].values) == BASINS and ds2.sizes["time"] == 731
    era, _ = sf.load_streamflow_data(BASINS, quick=True, forcing="era5land")
    with pytest.raises(ValueError, match="only Daymet"):
        portable.export_streamflow_inputs(era, attrs, tmp_path / "y.npz", ("1995-10-01", "1997-09-30"), ["p_mean"])


def test_dynamic_dpl_and_lstm_baseline_run_and_learn(data):
    ds, attrs, basins = data
    dyn = tiny_settings(net="dynamic", lstm_hidden=8, epochs=3)
    r = sf.run_dpl_hbv(ds, attrs, basins, basins, TRAIN, TEST, sf.ATTRIBUTES_27, dyn, seed=0, warmup_days=WARM)
    h = r.history.dropna(subset=["train_loss"])
    assert h["train_loss"].iloc[-1] < h["train_loss"].iloc[0]
    assert r.parameters.shape == (len(basins), 15, 2)      # time-mean of the dynamic parameters (BETAET added)
    lstm = sf.LSTMSettings(epochs=20, batch_sites=6, window_days=200, warmup_days=WARM, lr=0.01, hidden=16, dropout=0.0)
    r2 = sf.run_lstm(ds, attrs, basins, basins, TRAIN, TEST, sf.ATTRIBUTES_27, lstm, seed=0, warmup_days=WARM)
    h2 = r2.history.dropna(subset=["train_loss"])
    assert h2["train_loss"].iloc[-5:].mean() < 0.8 * h2["train_loss"].iloc[:5].mean()
    assert np.isfinite(r2.metrics["nse"]).all() and (r2.simulation.values >= 0).all()
    with pytest.raises(ValueError, match="DPLSettings.net"):
        sf.DPLSettings(net="gx")


def test_forcing_comparison_reuses_known_runs(data, monkeypatch, tmp_path):
    monkeypatch.setenv("DPLPAPER_RESULTS", str(tmp_path))
    ds, attrs, basins = data
    cfg = sf.Case2Config(basins=tuple(basins), train_period=TRAIN, test_period=TEST, warmup_days=WARM,
                         dpl=tiny_settings(), seeds=(0,))
    dm = sf.run_case2(cfg, ds, attrs, methods=("dpl",), write=False)
    cmp = sf.forcing_comparison(cfg, methods=("dpl",), known={"daymet": dm["metrics"]})
    assert set(cmp["forcing"]) == {"daymet", "era5land"} and len(cmp) == 2 * len(basins)
    pd.testing.assert_frame_equal(cmp[cmp["forcing"] == "daymet"].drop(columns="forcing").reset_index(drop=True),
                                  dm["metrics"].reset_index(drop=True))
    tab = sf.forcing_table(cmp)
    row = tab.iloc[0]
    assert row["nse_gain_daymet"] == pytest.approx(row["median_nse_daymet"] - row["median_nse_era5land"])
    assert 0 <= row["share_basins_daymet_better"] <= 1
    assert (tmp_path / "case2" / "forcing_comparison_quick.csv").exists()


def test_method_labels_and_basin_medians():
    labels = sf.case2_method_labels(sf.Case2Config.full())
    assert labels["sceua"] == "SCE-UA per basin HBV" and labels["dpl"] == "dPL gA+HBV (8 attr)"
    assert set(labels) >= {"dpl", "dpl_extra", "dpl_nmul1", "dpl_dynamic", "lstm", "regionalization", "sceua"}
    t = pd.DataFrame({"site": ["a", "a", "a", "b", "b", "b"], "method": ["m"] * 6, "seed": [0, 1, 2] * 2,
                      "nse": [0.1, 0.5, 0.3, -1.0, 0.2, np.nan]})
    med = sf.basin_medians(t)
    assert list(med) == ["m"] and med["m"]["a"] == pytest.approx(0.3) and med["m"]["b"] == pytest.approx(-0.4)
    with pytest.raises(ValueError, match="kge"):
        sf.basin_medians(t, score="kge")
