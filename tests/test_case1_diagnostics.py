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
