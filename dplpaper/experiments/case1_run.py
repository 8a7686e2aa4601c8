"""Case 1 as one run (``dplpaper run case1``): every method, density and seed, scored per cell.

:func:`run_case1` trains (or loads from the cache) the surrogate, runs dPL gZ, dPL gA and SCE-UA at
every density of ``cfg.densities`` for every seed of ``cfg.seeds`` (:func:`soil_moisture.get_run`),
and scores each run's parameters per cell over the test period twice: through the surrogate (what
training saw) and in the VIC-style model itself (the number that counts), at the training cells
(``test="temporal"``) and at their untrained lattice neighbours (``"spatial"``; none at s4). The
tables are what the archived claims of Case 1 are computed from (:mod:`dplpaper.experiments.case1_claims`).

Outputs under ``results/case1/`` (``<variant>_<mode><tag>``):

* ``cells_*.csv``: ``seed, method, density, test, site, rmse_surrogate, rmse_legacy, corr_surrogate,
  corr_legacy, ubrmse_legacy, bias_legacy`` (m3/m3; corr unitless);
* ``curves_*.csv``: every run's learning curve, ``seed, method, density, epoch, wall_time_s, test_rmse``;
* ``runs_*.csv``: per run ``n_train``, epochs run, training wall time, ending and best test RMSE (surrogate),
  share of parameters within 0.02 of a bound, surrogate accuracy beside it.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from dplpaper.experiments import soil_moisture as sm
from dplpaper.experiments.configs import Case1Config
from dplpaper.results import RunStore

__all__ = ["CASE1_METHODS", "run_case1", "score_cells", "share_at_bounds", "full_summary", "per_cell"]

#: methods of a Case 1 run (ids of :data:`soil_moisture.METHOD_LABELS`)
CASE1_METHODS = ("gz", "ga", "sceua")


def share_at_bounds(params, bound: float = 0.02) -> float:
    """Share of unit-cube parameter values within ``bound`` of 0 or 1."""
    p = np.asarray(params)
    return float(((p < bound) | (p > 1 - bound)).mean())


def score_cells(cfg: Case1Config, data: sm.Case1Data, surrogate, run: sm.MethodRun, idx) -> pd.DataFrame:
    """Per cell of ``idx``, the run's parameters over the test period through the surrogate and in the
    VIC-style model: ``site, rmse_surrogate, rmse_legacy, corr_surrogate, corr_legacy, ubrmse_legacy,
    bias_legacy``."""
    idx = np.asarray(idx, dtype=int)
    y = data.obs[sm.period_slice(data, data.test_period)][:, idx]
    p = run.params_at(idx, data)
    m_sur = sm.site_metrics(sm.simulate_surrogate(data, surrogate, idx, p, data.test_period, cfg)["soil_moisture"], y)
    m_leg = sm.site_metrics(sm.simulate_legacy(data, idx, p, data.test_period)["soil_moisture"], y)
    return pd.DataFrame({"site": data.site[idx], "rmse_surrogate": m_sur["rmse"].values,
                         "rmse_legacy": m_leg["rmse"].values, "corr_surrogate": m_sur["corr"].values,
                         "corr_legacy": m_leg["corr"].values, "ubrmse_legacy": m_leg["ubrmse"].values,
                         "bias_legacy": m_leg["bias"].values})


def run_case1(cfg: Case1Config, methods=CASE1_METHODS, tag: str = "", progress: bool = False) -> dict:
    """Run Case 1 for ``cfg.variant`` at every density and seed of ``cfg``; write the three tables
    (module docstring) through a :class:`~dplpaper.results.RunStore` and return them as
    ``{"cells", "curves", "runs", "surrogate_accuracy", "paths", "store"}``."""
    bad = [m for m in methods if m not in CASE1_METHODS]
    if bad:
        raise ValueError(f"case1: unknown methods {bad}; valid: {', '.join(CASE1_METHODS)}")
    data = sm.load_case1(cfg)
    t0 = time.perf_counter()
    surrogate = sm.get_surrogate(cfg, progress=progress)
    sur_wall = time.perf_counter() - t0
    acc = sm.surrogate_accuracy(cfg, surrogate)
    cells, curves, runs = [], [], []
    for seed in cfg.seeds:
        for density in cfg.densities:
            for method in methods:
                t1 = time.perf_counter()
                run = sm.get_run(cfg, data, surrogate, method, density, seed, progress=progress)
                wall = time.perf_counter() - t1
                idx = sm.training_cells(data, density, cfg, method)
                key = {"seed": int(seed), "method": method, "density": density}
                for test, where in (("temporal", idx), ("spatial", sm.neighbour_test_cells(data, idx))):
                    if len(where):
                        cells.append(score_cells(cfg, data, surrogate, run, where).assign(test=test, **key))
                curves.append(run.history.assign(**key))
                p = run.params_at(idx, data)
                runs.append({**key, "n_train": len(idx), "epochs": float(run.history["epoch"].iloc[-1]),
                             "training_wall_s": float(run.history["wall_time_s"].iloc[-1]),
                             "wall_s_this_call": wall,
                             "ending_test_rmse": float(run.history["test_rmse"].iloc[-1]),
                             "best_test_rmse": float(run.history["test_rmse"].min()),
                             "share_at_bounds": share_at_bounds(p)})
    first = ["seed", "method", "density", "test", "site"]
    cells = pd.concat(cells, ignore_index=True)
    cells = cells[first + [c for c in cells.columns if c not in first]]
    curves = pd.concat(curves, ignore_index=True)
    curves = curves[["seed", "method", "density"] + [c for c in curves.columns if c not in ("seed", "method", "density")]]
    runs = pd.DataFrame(runs).assign(surrogate_wall_s=sur_wall, **{f"surrogate_{k}": v for k, v in acc["median"].items()})
    store = RunStore("case1", f"{data.variant}_{cfg.mode}", tag)
    paths = [store.write_table(name, table) for name, table in (("cells", cells), ("curves", curves), ("runs", runs))]
    return {"cells": cells, "curves": curves, "runs": runs, "surrogate_accuracy": acc, "paths": paths, "store": store}


def full_summary(cells: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Per density and method: the mean over seeds of the median over cells of the test RMSE (m3/m3) in
    the VIC-style model (``rmse_legacy``; at the training cells, and ``rmse_legacy_neighbours`` at their
    untrained neighbours) and through the surrogate, the seed standard deviation of the legacy medians,
    the share of parameters within 0.02 of a bound, epochs and training wall time per run (s)."""
    med = cells.groupby(["density", "method", "test", "seed"])[["rmse_legacy", "rmse_surrogate"]].median()
    t = med.xs("temporal", level="test")
    out = t.groupby(["density", "method"]).mean()
    out["rmse_legacy_seed_sd"] = t["rmse_legacy"].groupby(["density", "method"]).std(ddof=1)
    if "spatial" in med.index.get_level_values("test"):
        sp = med.xs("spatial", level="test")["rmse_legacy"].groupby(["density", "method"]).mean()
        out["rmse_legacy_neighbours"] = sp.reindex(out.index)
    r = runs.groupby(["density", "method"])[["share_at_bounds", "epochs", "training_wall_s"]].mean()
    out = out.join(r)
    order = {d: i for i, d in enumerate(("s16", "s8", "s4"))}
    return out.sort_index(key=lambda ix: ix.map(order) if ix.name == "density" else ix)


def per_cell(cells: pd.DataFrame, density: str, col: str = "rmse_legacy", test: str = "temporal") -> dict[str, pd.Series]:
    """Method -> per-cell mean over seeds of ``col`` at ``density`` (``test``: training cells or neighbours)."""
    c = cells[(cells["density"] == density) & (cells["test"] == test)]
    return {m: g.groupby("site")[col].mean() for m, g in c.groupby("method", sort=False)}
