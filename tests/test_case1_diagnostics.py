"""legacy_check on a tiny twin: the surrogate and the legacy model score the same parameters."""
import numpy as np
import pytest

from dplpaper.experiments import case1_diagnostics as cd
from dplpaper.experiments import soil_moisture as sm


class _Run:
    def __init__(self, params):
        self.params = params

    def params_at(self, idx, data):
        return self.params[np.asarray(idx)]


def test_legacy_check_uses_the_legacy_model_and_counts_bounds(monkeypatch):
    rng = np.random.default_rng(0)
    T, S = 200, 6
    obs = rng.uniform(0.1, 0.4, (T, S))

    class Data:
        def __init__(self):
            self.obs = obs
            self.test_period = None

    data = Data()
    legacy = obs + 0.01
    monkeypatch.setattr(sm, "period_slice", lambda d, p: slice(None))
    monkeypatch.setattr(sm, "training_cells", lambda d, dens, cfg, m: np.arange(4))
    monkeypatch.setattr(sm, "simulate_surrogate", lambda d, s, idx, p, per, cfg: {"soil_moisture": obs[:, idx] + 0.03})
    monkeypatch.setattr(sm, "simulate_legacy", lambda d, idx, p, per: {"soil_moisture": legacy[:, idx]})
    params = np.full((S, 5), 0.5)
    params[:2, 0] = 0.0           # 2 of 20 values at a bound for the training cells 0-3
    out = cd.legacy_check(None, data, None, {"gz": _Run(params)}, "s8")
    row = out.loc["gz"]
    assert row["rmse_surrogate"] == pytest.approx(0.03) and row["rmse_legacy"] == pytest.approx(0.01)
    assert row["surrogate_error_rmse"] == pytest.approx(0.02)
    assert row["share_at_bounds"] == pytest.approx(2 / 20) and row["n_cells"] == 4


def test_budget_sweep_runs_each_budget_and_scores_it(tmp_path, monkeypatch):
    from dplpaper.models.surrogate import make_surrogate_training_set, train_surrogate
    from dplpaper.models.vicwb import VICStyleModel

    monkeypatch.setenv("DPLPAPER_RESULTS", str(tmp_path / "results"))
    cfg = sm.Case1Config.quick(variant="real", sce_complexes=1, dpl_batch=16)
    data = sm.load_case1(cfg)
    cells = np.arange(0, 412, 35)
    attrs = {k: data.soil[cells, i] for i, k in enumerate(sm.SOIL_VARS)}
    ds = make_surrogate_training_set(VICStyleModel(), data.forcing[:, cells], attrs, n_param_sets=6, seed=0,
                                     outputs=("soil_moisture", "et"))
    sur = train_surrogate(ds, outputs=("soil_moisture", "et"), hidden=8, epochs=1, iters_per_epoch=20, batch=16,
                          seq_len=120, warmup=40, lr=1e-2, seed=0, progress=False)
    out = cd.budget_sweep(cfg, data, sur, "s16", epochs=(1, 3), lrs=(1e-2,), sce_evals=(10, 40))
    assert list(out["method"]) == ["gz", "gz", "sceua", "sceua"] and list(out["budget"]) == [1, 3, 10, 40]
    gz = out[out["method"] == "gz"]
    assert (gz["epochs"].values >= [1, 3]).all() and gz["epochs"].is_monotonic_increasing   # spin-up days counted
    assert (out["n_cells"] == 41).all()                                                    # every s16 cell, no cap
    sce = out[out["method"] == "sceua"]
    assert (sce["epochs"] >= sce["budget"]).all() and np.isnan(sce["lr"]).all()
    assert np.isfinite(out[["rmse_surrogate", "rmse_legacy", "corr_legacy", "wall_s"]]).all().all()
    assert ((out["share_at_bounds"] >= 0) & (out["share_at_bounds"] <= 1)).all()


@pytest.fixture(scope="module")
def twin():
    cfg = sm.Case1Config.for_mode("quick", variant="twin", seed=0)
    data = sm.load_case1(cfg)
    return cfg, data, sm.training_cells(data, "s16", cfg, "gz")


def test_truth_scores_put_the_true_parameters_at_zero_and_the_floor_at_the_noise(twin):
    cfg, data, idx = twin
    rng = np.random.default_rng(0)
    off = np.clip(data.params_true + 0.15 * rng.standard_normal(data.params_true.shape), 0, 1)
    out = cd.truth_scores(data, {"truth": _Run(data.params_true), "off": _Run(off)}, idx)
    assert set(out["test"]) == {"temporal", "spatial"}
    assert len(out[(out["method"] == "truth") & (out["test"] == "temporal")]) == len(idx)
    t = out[out["method"] == "truth"]
    assert t["rmse_truth"].max() < 1e-12                              # the twin's truth is the legacy model's
    np.testing.assert_allclose(t["rmse_obs"], t["noise_floor"])
    assert abs(t["noise_floor"].median() - cfg.twin_noise) < 0.002   # N(0, twin_noise) on the observed days
    o = out[out["method"] == "off"]
    assert o["rmse_truth"].median() > 1e-3 and (o["rmse_obs"].values >= 0).all()
    real = sm.load_case1(sm.Case1Config.for_mode("quick", variant="real", seed=0))
    with pytest.raises(ValueError, match="twin"):
        cd.truth_scores(real, {"x": _Run(off)}, idx)


def test_identifiability_against_a_direct_finite_difference(twin):
    cfg, data, idx = twin
    idx = idx[:12]
    out = cd.identifiability(data, idx, cfg.twin_noise)
    assert list(out.index) == list(sm.PARAM_NAMES) and (out["sensitivity"] >= 0).all()
    # EXPT at one cell by hand: move it 0.1 down and up from the truth, run the model, RMS of the change
    j, c = sm.PARAM_NAMES.index("EXPT"), int(idx[0])
    lo, hi = data.params_true[[c]].copy(), data.params_true[[c]].copy()
    lo[0, j], hi[0, j] = max(lo[0, j] - 0.1, 0), min(hi[0, j] + 0.1, 1)
    sl = sm.period_slice(data, data.train_period)
    d = (sm.legacy_spunup(data.forcing[:, [c]], hi, data.soil[[c]])["soil_moisture"][sl]
         - sm.legacy_spunup(data.forcing[:, [c]], lo, data.soil[[c]])["soil_moisture"][sl])
    one = cd.identifiability(data, [c], cfg.twin_noise)
    assert one.loc["EXPT", "sensitivity"] == pytest.approx(np.sqrt(np.mean(d ** 2)) * 0.2 / (hi[0, j] - lo[0, j]))
    # the signal-to-noise ratio scales with 1 / noise
    half = cd.identifiability(data, idx, cfg.twin_noise / 2)
    np.testing.assert_allclose(half["snr"], 2 * out["snr"])
    assert out.loc["EXPT", "share_identifiable"] > 0.5
    # what the book reports of the VIC-style model: the baseflow parameters drain the bottom layer; the top layer
    # (what SMAP sees) feels them only through a bottom layer full enough to hold back drainage from above,
    # which these cells never reach, so its soil moisture does not depend on them
    assert (out.loc[["Dsmax", "Ds", "Ws"], "sensitivity"] < 1e-6).all()
    with pytest.raises(ValueError, match="params"):
        cd.identifiability(data, idx, 0.02, params=np.zeros((3, 5)))
