"""``dplpaper run case1``: every method x density x seed scored per cell, through the surrogate and
in the VIC-style model itself."""
import numpy as np
import pytest

from dplpaper.experiments import case1_run as cr
from dplpaper.experiments import soil_moisture as sm
from dplpaper.models.surrogate import make_surrogate_training_set, train_surrogate
from dplpaper.models.vicwb import VICStyleModel


@pytest.fixture(autouse=True)
def _results_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("DPLPAPER_RESULTS", str(tmp_path / "results"))


def _tiny_surrogate(data):
    cells = np.arange(0, 412, 35)
    attrs = {k: data.soil[cells, i] for i, k in enumerate(sm.SOIL_VARS)}
    ds = make_surrogate_training_set(VICStyleModel(), data.forcing[:, cells], attrs, n_param_sets=8, seed=0,
                                     outputs=("soil_moisture", "et"))
    return train_surrogate(ds, outputs=("soil_moisture", "et"), hidden=8, epochs=1, iters_per_epoch=20, batch=16,
                           seq_len=120, warmup=40, lr=1e-2, seed=0, progress=False)


def test_run_case1_scores_every_run_per_cell(monkeypatch):
    cfg = sm.Case1Config.quick(variant="real", seeds=(0, 1), densities=("s16",), dpl_epochs={"s16": 2},
                               density_main="s16", sce_max_evals=20, sce_complexes=1, sur_eval_sets=1)
    data = sm.load_case1(cfg)
    sur = _tiny_surrogate(data)
    monkeypatch.setattr(sm, "get_surrogate", lambda cfg, progress=False: sur)
    out = cr.run_case1(cfg, methods=("gz", "sceua"))
    cells, runs, curves = out["cells"], out["runs"], out["curves"]
    n_train = len(sm.training_cells(data, "s16", cfg, "gz"))
    n_nb = len(sm.neighbour_test_cells(data, sm.training_cells(data, "s16", cfg, "gz")))
    assert len(runs) == 4 and set(runs["method"]) == {"gz", "sceua"} and set(runs["seed"]) == {0, 1}
    per = cells.groupby(["seed", "method", "test"]).size()
    assert (per.xs("temporal", level="test") == n_train).all() and (per.xs("spatial", level="test") == n_nb).all()
    assert np.isfinite(cells[["rmse_surrogate", "rmse_legacy"]]).all().all()
    # the surrogate's score of a run is the learning curve's ending test RMSE (median over training cells)
    for _, r in runs.iterrows():
        c = cells[(cells["seed"] == r["seed"]) & (cells["method"] == r["method"]) & (cells["test"] == "temporal")]
        assert np.nanmedian(c["rmse_surrogate"]) == pytest.approx(r["ending_test_rmse"], abs=1e-4)
        assert curves[(curves["seed"] == r["seed"]) & (curves["method"] == r["method"])]["epoch"].iloc[-1] == r["epochs"]
    assert all(p.exists() for p in out["paths"])
    summ = cr.full_summary(cells, runs)
    assert list(summ.index) == [("s16", "gz"), ("s16", "sceua")]
    gz = cells[(cells["method"] == "gz") & (cells["test"] == "temporal")].groupby("seed")["rmse_legacy"].median()
    assert summ.loc[("s16", "gz"), "rmse_legacy"] == pytest.approx(gz.mean())
    assert summ.loc[("s16", "gz"), "rmse_legacy_seed_sd"] == pytest.approx(gz.std(ddof=1))
    assert np.isfinite(summ["rmse_legacy_neighbours"]).all() and (summ["epochs"] > 0).all()
    pc = cr.per_cell(cells, "s16")
    assert set(pc) == {"gz", "sceua"} and len(pc["gz"]) == n_train
    assert np.median(pc["gz"]) == pytest.approx(np.median(
        cells[(cells["method"] == "gz") & (cells["test"] == "temporal")].groupby("site")["rmse_legacy"].mean()))
    with pytest.raises(ValueError, match="unknown methods"):
        cr.run_case1(cfg, methods=("gz", "mcmc"))


def test_cli_rejects_streamflow_options_for_case1():
    from dplpaper.cli import main

    assert main(["run", "case1", "--folds", "1"]) == 2
    assert main(["run", "case2", "--variant", "real"]) == 2
    assert main(["run", "case1", "--methods", "lstm"]) == 2
    assert main(["run", "case1", "--parts", "pub"]) == 2
    assert main(["run", "case3", "--parts", "sweep"]) == 2
