"""Tests of dplpaper.experiments.methods (all methods on one epoch axis) on a tiny real problem.

Four shipped Caravan basins, two training water years and one test year with a 60-day spin-up,
tiny networks and SCE-UA budgets: every test takes a second or two.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from dplpaper import metrics
from dplpaper.experiments import methods as mt
from dplpaper.experiments import streamflow as sf

TRAIN = ("2001-10-01", "2003-09-30")
TEST = ("1995-10-01", "1996-09-30")
WARM = 60
ATTR = tuple(sf.BECK_ATTRIBUTES_CAMELS)


@pytest.fixture(scope="module")
def data():
    ds, attrs = sf.load_streamflow_data(quick=True)
    basins = mt.select_basins(ds["site"].values, 4)
    return ds.sel(site=basins), attrs.sel(site=basins), basins


def tiny(**kw) -> sf.DPLSettings:
    base = dict(nmul=2, hidden=16, n_layers=1, epochs=3, batch_sites=4, window_days=200, warmup_days=WARM,
                lr=0.02, eval_every=1)
    base.update(kw)
    return sf.DPLSettings(**base)


def _monotone(curve: pd.DataFrame) -> bool:
    return bool((np.diff(curve["epoch"].values) > 0).all() and (np.diff(curve["wall_time_s"].values) >= 0).all())


def test_select_basins_spread_and_deterministic():
    b = [f"{i:08d}" for i in range(40, 0, -1)]
    s = mt.select_basins(b, 5)
    assert s == ["00000001", "00000011", "00000021", "00000030", "00000040"]
    assert mt.select_basins(b, None) == sorted(b) and mt.select_basins(b, 100) == sorted(b)
    with pytest.raises(ValueError, match="n_basins"):
        mt.select_basins(b, 1)


def test_configs():
    q, f = mt.MethodsConfig.quick(seed=3, n_basins=7), mt.MethodsConfig.full()
    assert q.mode == "quick" and q.n_basins == 7 and q.seed == 3 and q.quick_data is True
    assert f.mode == "full" and f.n_basins is None and f.quick_data is None
    assert f.sceua_max_evals > q.sceua_max_evals and f.regionalization_max_evals > q.regionalization_max_evals
    assert f.sceua_complexes == 7 and q.ga.eval_every >= 1 and q.gz.eval_every >= 1
    assert q.train_period == ("1999-10-01", "2008-09-30") and q.test_period == ("1989-10-01", "1999-09-30")


def test_gz_series_channels_mask_spinup_and_never_see_test_flow(data):
    ds, _, basins = data
    ser, norm = mt.gz_series(ds, basins, TRAIN, WARM)
    days = (pd.Timestamp(TRAIN[1]) - pd.Timestamp(TRAIN[0])).days + 1
    assert tuple(ser.shape) == (days + WARM, len(basins), 4) and ser.dtype == torch.float32
    assert torch.isnan(ser[:WARM, :, 3]).all()            # spin-up flow hidden
    assert torch.isfinite(ser[:, :, :3]).all()             # forcing channels complete
    # streamflow channel is the normalized observed flow of the training period
    q = ds["streamflow"].sel(site=basins[1], time=slice(*TRAIN)).values
    back = norm.inverse_transform(ser[WARM:, 1].double().numpy())[:, 3]
    expect = np.log10(np.sqrt(np.clip(q, 0, None)) + 0.1)
    np.testing.assert_allclose(back[np.isfinite(q)], expect[np.isfinite(q)], rtol=1e-5, atol=1e-5)
    # a second period reuses the training normalizer
    ser2, norm2 = mt.gz_series(ds, basins, TEST, WARM, normalizer=norm)
    assert norm2 is norm and ser2.shape[0] == (pd.Timestamp(TEST[1]) - pd.Timestamp(TEST[0])).days + 1 + WARM


def test_gz_parameters_average_over_training_spans(data):
    ds, attrs, basins = data
    model = mt.build_gz_model(len(ATTR), tiny(), seed=0)
    ser, _ = mt.gz_series(ds, basins, TRAIN, WARM)
    a = torch.zeros(len(basins), len(ATTR))
    span = 200
    p = mt.gz_parameters(model, ser, a, span)
    assert tuple(p.shape) == (len(basins), model.pbm.n_params, 2)
    with torch.no_grad():
        k = ser.shape[0] // span
        expect = torch.stack([model.net(ser[i * span:(i + 1) * span], a) for i in range(k)]).mean(0)
    torch.testing.assert_close(p, expect)
    assert model.training  # mode restored


def test_run_dpl_gz_learning_curve_in_paper_epochs(data):
    ds, attrs, basins = data
    s = tiny()
    r = mt.run_dpl_gz(ds, attrs, basins, TRAIN, TEST, ATTR, s, seed=0, warmup_days=WARM)
    c = mt.dpl_curve(r, "gz")
    assert list(c.columns) == mt.CURVE_COLUMNS and len(c) == s.epochs + 1
    assert c["epoch"].iloc[0] == 0.0 and c["wall_time_s"].iloc[0] == 0.0 and _monotone(c)
    # trainer's unit: one loop epoch ~ one forward run per site (batch 4 of 4 sites, 200-day windows)
    n_t = (pd.Timestamp(TRAIN[1]) - pd.Timestamp(TRAIN[0])).days + 1 + WARM - WARM
    n_iter = max(1, round(n_t / 200))
    np.testing.assert_allclose(c["epoch"].iloc[1], n_iter * 200 / n_t)
    # last point = the returned simulation's median NSE; parameters came from training series only
    obs = ds["streamflow"].sel(site=basins, time=slice(*TEST)).transpose("time", "site").values
    np.testing.assert_allclose(c["test_nse_median"].iloc[-1], np.nanmedian(metrics.nse(
        r.simulation.transpose("time", "site").values.astype(np.float64), obs)), rtol=1e-6)
    assert np.isfinite(c["test_nse_median"]).all()
    # bit-for-bit reproducible
    r2 = mt.run_dpl_gz(ds, attrs, basins, TRAIN, TEST, ATTR, s, seed=0, warmup_days=WARM)
    np.testing.assert_array_equal(r.parameters, r2.parameters)


def test_gz_test_prediction_ignores_test_period_flow(data):
    ds, attrs, basins = data
    s = tiny(epochs=1)
    r = mt.run_dpl_gz(ds, attrs, basins, TRAIN, TEST, ATTR, s, seed=1, warmup_days=WARM)
    ds2 = ds.copy()
    q = ds2["streamflow"].values.copy()
    t = pd.DatetimeIndex(ds2["time"].values)
    q[:, (t >= TEST[0]) & (t <= TEST[1])] *= 3.0  # test-period flow must not change the parameters
    ds2["streamflow"] = (ds2["streamflow"].dims, q)
    r2 = mt.run_dpl_gz(ds2, attrs, basins, TRAIN, TEST, ATTR, s, seed=1, warmup_days=WARM)
    np.testing.assert_array_equal(r.parameters, r2.parameters)


def test_sceua_curve_epochs_are_evaluations_per_basin(data):
    ds, _, basins = data
    c, res = mt.sceua_curve(ds, basins, TRAIN, TEST, max_evals=300, n_complexes=2, warmup_days=WARM)
    assert list(c.columns) == mt.CURVE_COLUMNS and _monotone(c)
    # epoch-0 row: the mid-cube point, same score as mid_cube_score
    assert c["epoch"].iloc[0] == 0.0
    np.testing.assert_allclose(c["test_nse_median"].iloc[0], mt.mid_cube_score(ds, basins, TEST, WARM))
    # loop rows: mean evaluations per basin; the last equals n_evals
    np.testing.assert_array_equal(c["epoch"].values[1:], res.epoch_history.mean(axis=1))
    assert c["epoch"].iloc[-1] == res.n_evals.mean() >= 300
    n = res.settings["n_params"]
    assert c["epoch"].iloc[1] == res.settings["n_complexes"] * (2 * n + 1)  # initial population
    assert len(c) == res.param_history.shape[0] + 1


def test_sceua_curve_final_matches_run_sceua_hbv(data):
    ds, _, basins = data
    c, res = mt.sceua_curve(ds, basins, TRAIN, TEST, max_evals=250, n_complexes=2, warmup_days=WARM,
                            start_at_mid=False)
    base = sf.run_sceua_hbv(ds, basins, TRAIN, TEST, max_evals=250, n_complexes=2, warmup_days=WARM)
    np.testing.assert_array_equal(res.best_params, base.parameters)
    assert c["epoch"].iloc[0] > 0  # no mid-cube row
    np.testing.assert_allclose(c["test_nse_median"].iloc[-1], np.nanmedian(base.metrics["nse"]), atol=1e-4)


def test_regionalization_curve_epochs_are_evaluations(data):
    ds, attrs, basins = data
    c, run = mt.regionalization_curve(ds, attrs, basins, TRAIN, TEST, ATTR, max_evals=600, n_complexes=1,
                                      warmup_days=WARM)
    res = run.transfer_functions.fit_result
    assert list(c.columns) == mt.CURVE_COLUMNS and _monotone(c)
    np.testing.assert_array_equal(c["epoch"].values[1:], res.epoch_history[:, 0])
    assert c["epoch"].iloc[-1] == res.n_evals[0]
    # starts at the mid-cube score (all-zero coefficients), ends at the fitted functions' test score
    np.testing.assert_allclose(c["test_nse_median"].iloc[0], mt.mid_cube_score(ds, basins, TEST, WARM))
    np.testing.assert_allclose(c["test_nse_median"].iloc[-1], np.nanmedian(run.metrics["nse"]), atol=1e-4)


def test_epochs_to_reach_and_summary():
    curves = pd.DataFrame({
        "method": ["a"] * 4 + ["b"] * 3,
        "epoch": [0, 1, 2, 3, 0, 100, 1000],
        "wall_time_s": [0, 1, 2, 3, 0, 5, 50],
        "test_nse_median": [0.0, 0.3, 0.5, 0.4, 0.0, 0.2, 0.45],
    })
    assert mt.epochs_to_reach(curves[curves.method == "a"], 0.45) == (2.0, 2.0)
    assert np.isnan(mt.epochs_to_reach(curves[curves.method == "b"], 0.5)[0])
    t = mt.summary_table(curves, {"b_final": 0.45})
    assert list(t.index) == ["a", "b"]
    assert t.loc["a", "final_test_nse"] == 0.4 and t.loc["a", "epochs_to_b_final"] == 2.0
    assert t.loc["b", "epochs_to_b_final"] == 1000.0 and t.loc["b", "wall_s_to_b_final"] == 50.0
    d = mt.curve_dict(curves)
    assert d["a"][0][0] == 0.5 and d["b"][0][-1] == 1000.0


def test_run_methods_unknown_method():
    with pytest.raises(ValueError, match="unknown methods"):
        mt.run_methods(mt.MethodsConfig.quick(), ds=object(), attrs=object(), methods=("dpl_gx",))


def test_methods_claims_rules_and_quick_cap():
    import numpy as np
    import pandas as pd

    from dplpaper.experiments import methods as mt

    lab = mt.METHOD_LABELS
    summary = pd.DataFrame({"final_test_nse": [0.60, 0.61, 0.58, 0.40],
                            "epochs_to_sceua_final": [4.0, 16.0, 700.0, np.nan],
                            "wall_s_to_sceua_final": [2.0, 8.0, 60.0, np.nan]},
                           index=[lab["dpl_ga"], lab["dpl_gz"], lab["sceua"], lab["regionalization"]])
    full = {c.key: c for c in mt.methods_claims(summary, mt.MethodsConfig.full(0), 426)}
    assert [full[k].replicated for k in ("fewer_epochs", "final_vs_sceua", "less_wall_time", "gz_vs_ga")] == ["yes"] * 4
    assert full["less_wall_time"].timing and "426 basins" in full["fewer_epochs"].note
    quick = mt.methods_claims(summary, mt.MethodsConfig.quick(0, 20), 20)
    assert {c.replicated for c in quick} == {"partly"}
    worse = summary.assign(final_test_nse=[0.50, 0.47, 0.58, 0.40], epochs_to_sceua_final=[np.nan, 20.0, 700.0, np.nan],
                           wall_s_to_sceua_final=[np.nan, 9.0, 60.0, np.nan])
    w = {c.key: c.replicated for c in mt.methods_claims(worse, mt.MethodsConfig.full(0), 426)}
    assert w == {"fewer_epochs": "partly", "final_vs_sceua": "no", "less_wall_time": "no", "gz_vs_ga": "no"}
