"""Cases 2 and 3 of Tsai et al. (2021): streamflow on real CAMELS basins (Daymet or ERA5-Land forcing, USGS Q).

The case pipelines; their parts live in modules with one job each:
:mod:`dplpaper.data.streamflow` (basins, forcing, tensors), :mod:`dplpaper.experiments.configs`
(settings and the quick/full configs), :mod:`dplpaper.experiments.streamflow_dpl` (dPL and the LSTM),
:mod:`dplpaper.experiments.hbv_baselines` (SCE-UA per basin, regionalization) and
:mod:`dplpaper.experiments.streamflow_vic` (the paper's VIC-surrogate route). Their public names are
re-exported here, so ``from dplpaper.experiments import streamflow as sf`` reaches all of them.

Case 2 — temporal generalization (Figure 5a): train 1999-10-01..2008-09-30, test
1989-10-01..1999-09-30 on the same basins. Methods: dPL = gA (attributes -> HBV parameters) +
the differentiable HBV (no surrogate: HBV is written in PyTorch, with a fused C kernel); dPL with
dynamic parameters; the LSTM baseline; transfer-function regionalization
(:mod:`dplpaper.calibrate.regionalization`, the MPR-like baseline, fitted on the training period
with the same attributes); SCE-UA per basin (:mod:`dplpaper.calibrate.sceua`, all basins in
lockstep, HBV with one component).

Case 3 — prediction in ungauged basins (Figures 5b, 6b): k-fold cross-validation over basins
(:func:`dplpaper.data.random_pub_folds`); gA + HBV trained on k-1 folds and run on the held-out
fold over the same period (:data:`PUB_PERIOD`); held-out basins pooled over folds. Two attribute
sets: :data:`BECK_ATTRIBUTES_CAMELS` (8, Beck et al.'s choice as far as CAMELS allows) and
:data:`ATTRIBUTES_27` (the 27 CAMELS attributes of the dPL code line). Baseline: regionalization on
the same folds and attributes. Scaling curve: nested subsets of the training folds
(:func:`dplpaper.data.basin_fractions`), median held-out KGE per share.

Periods. ``PUB_PERIOD`` = 1999-10-01..2008-09-30: the paper trained and tested Case 3 on
2000-2016 (Beck20's period), which the Caravan streamflow record (ending 2014-12-31) does not
cover; the nine water years 1999-2008 are the Case 2 training window, start the same autumn as the
paper's period and leave a spin-up year before.

Metrics: NSE and KGE per basin on the test period (KGE in the 2012 form, the paper's eq. 15;
:func:`dplpaper.metrics.kge` with ``variant="2012"``). Results are written under
``results/case2/`` and ``results/case3/`` (:func:`dplpaper.results.results_dir`).
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from dplpaper.calibrate.regionalization import BECK_ATTRIBUTES_CAMELS
from dplpaper.calibrate.sceua import budget_convergence
from dplpaper.data import basin_fractions, random_pub_folds
from dplpaper.data.streamflow import (ATTRIBUTES_27, FORCING_VARS, FORCINGS, LOG_ATTRIBUTES, assemble,
                                      attribute_matrix, camels_caravan_basins, fit_attribute_normalizer,
                                      forcing_array, load_daymet_forcing, load_streamflow_data)
from dplpaper.experiments.configs import (DPL_NETS, PUB_PERIOD, Case2Config, Case3Config, DPLSettings, LSTMSettings,
                                          TrainerSettings)
from dplpaper.experiments import streamflow_vic as sv
from dplpaper.experiments.hbv_baselines import BaselineRun, run_regionalization, run_sceua_hbv
from dplpaper.experiments.streamflow_dpl import (DPLRun, build_dpl_model, forcing_normalizer, run_dpl_hbv, run_lstm,
                                                 score, with_forcing_series)
from dplpaper.results import RunStore

__all__ = [
    "ATTRIBUTES_27", "BECK_ATTRIBUTES_CAMELS", "PUB_PERIOD", "FORCING_VARS", "LOG_ATTRIBUTES",
    "TrainerSettings", "DPLSettings", "Case2Config", "Case3Config", "DPLRun", "BaselineRun",
    "FORCINGS", "camels_caravan_basins", "load_streamflow_data", "load_daymet_forcing", "forcing_array",
    "attribute_matrix", "fit_attribute_normalizer", "assemble", "build_dpl_model", "case3_method_labels",
    "forcing_normalizer", "with_forcing_series", "run_lstm", "LSTMSettings", "DPL_NETS", "score", "run_dpl_hbv",
    "run_regionalization", "run_sceua_hbv",
    "pub_folds_for", "run_pub_folds", "pub_key", "stored_pub_table", "scaling_curve", "scaling_summary",
    "matching_share", "pub_medians", "scaling_phases",
    "median_table", "run_case2", "forcing_comparison", "forcing_table", "case2_method_labels", "basin_medians",
]


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")


def _write_simulations(simds: xr.Dataset, path) -> None:
    """NetCDF with variable names made safe (method label kept in ``long_name``), zlib-compressed."""
    out = xr.Dataset({_safe_name(k): v.assign_attrs(long_name=f"simulated streamflow, {k}", units="mm/day")
                      for k, v in simds.data_vars.items()})
    out.to_netcdf(path, encoding={k: {"zlib": True, "complevel": 4} for k in out.data_vars})

def median_table(df: pd.DataFrame, by: str | Sequence[str] = "method") -> pd.DataFrame:
    """Median (NaN-aware) NSE and KGE per group, and the number of basins with a score."""
    g = df.groupby(by, sort=False)
    return pd.DataFrame({"median_nse": g["nse"].median(), "median_kge": g["kge"].median(),
                         "n_basins": g["nse"].count()})


def _learned_methods(config: Case2Config) -> dict:
    """Case 2's trained methods, in run order: method id -> (display label, runner, settings,
    attribute names). Methods whose settings are empty in ``config`` are left out."""
    n8, extra = len(config.attributes), config.extra_attributes or config.attributes
    out = {"dpl": (f"dPL gA+HBV ({n8} attr)", run_dpl_hbv, config.dpl, config.attributes)}
    if config.extra_attributes:
        out["dpl_extra"] = (f"dPL gA+HBV ({len(extra)} attr)", run_dpl_hbv, config.dpl, extra)
    out["dpl_nmul1"] = (f"dPL gA+HBV nmul=1 ({n8} attr)", run_dpl_hbv, replace(config.dpl, nmul=1), config.attributes)
    if config.dynamic is not None:
        out["dpl_dynamic"] = (f"dPL dynamic {'+'.join(config.dynamic.dynamic_params)}+HBV ({len(extra)} attr)",
                              run_dpl_hbv, config.dynamic, extra)
    if config.lstm is not None:
        out["lstm"] = (f"LSTM (no process model, {len(extra)} attr)", run_lstm, config.lstm, extra)
    return out


def case2_method_labels(config: Case2Config) -> dict[str, str]:
    """Method id -> display label of Case 2's result tables (the trained methods of ``config`` and
    the baselines), so that callers select rows by id, not by parsing labels."""
    labels = {k: v[0] for k, v in _learned_methods(config).items()}
    labels.update({"regionalization": f"regionalization HBV ({len(config.attributes)} attr)",
                   "sceua": "SCE-UA per basin HBV"})
    if config.vic is not None:
        na = len(config.vic.attributes)
        labels["vic_gz"] = f"dPL {config.vic.net}+VIC surrogate ({na} attr)"
        labels["vic_gz_legacy"] = f"dPL {config.vic.net} parameters in VIC-style model ({na} attr)"
        labels["vic_sceua"] = "SCE-UA per basin VIC-style (no surrogate)"
    return labels


def case3_method_labels(config: Case3Config) -> dict[str, str]:
    """Method id -> display label of Case 3's PUB tables: ``dpl_<set>`` for every attribute set and
    ``regionalization_<set>`` for every regionalization set (e.g. ``dpl_8``, ``dpl_27``,
    ``regionalization_8``), so that callers select rows by id, not by parsing labels."""
    labels = {f"dpl_{k}": f"dPL gA+HBV ({len(v)} attr)" for k, v in config.attribute_sets.items()}
    labels.update({f"regionalization_{k}": f"regionalization HBV ({len(config.attribute_sets[k])} attr)"
                   for k in config.regionalization_sets})
    return labels


def basin_medians(table: pd.DataFrame, score: str = "nse") -> dict[str, pd.Series]:
    """Per method, each basin's ``score`` (median over seeds) from a long metrics table
    (``site, method, seed, <score>``, e.g. an archived ``metrics_*.csv``): method -> Series by site."""
    missing = [c for c in ("site", "method", score) if c not in table]
    if missing:
        raise ValueError(f"basin_medians: columns {missing} missing from the table")
    g = table.groupby(["method", "site"], sort=False)[score].median()
    return {m: g.xs(m).astype(float) for m in table["method"].unique()}


def run_case2(config: Case2Config, ds: xr.Dataset | None = None, attrs: xr.Dataset | None = None,
              methods: Sequence[str] = ("dpl", "dpl_extra", "dpl_nmul1", "dpl_dynamic", "lstm", "vic_gz",
                                        "regionalization", "vic_sceua", "sceua"),
              write: bool = True, tag: str = "", progress: bool = False, store: RunStore | None = None) -> dict:
    """Run Case 2 and (``write``) save ``results/case2/metrics_<mode><tag>.csv`` (long table: site,
    method, seed, nse, kge, n_obs), ``medians_<mode><tag>.csv`` and ``simulations_<mode><tag>.nc``.
    ``progress``: tqdm bars for the dPL trainer and per-basin SCE-UA.

    Methods: ``dpl`` / ``dpl_extra`` (gA + HBV with ``attributes`` / ``extra_attributes``),
    ``dpl_nmul1`` (gA + HBV with one component: like for like with per-basin SCE-UA),
    ``dpl_dynamic`` (``config.dynamic``: time-varying BETA/BETAET from an LSTM, 27 attributes),
    ``lstm`` (``config.lstm``: the LSTM streamflow baseline, no process model, 27 attributes),
    ``vic_gz`` (the paper's configuration, :mod:`dplpaper.experiments.streamflow_vic`: two rows,
    the surrogate's simulation and the same parameters run in the VIC-style model itself; also
    writes ``vic_surrogate_accuracy_<mode><tag>.csv``), ``regionalization``, ``vic_sceua``
    (per-basin SCE-UA of the VIC-style model itself, no surrogate), ``sceua`` (per-basin SCE-UA of HBV).

    Returns dict with ``metrics`` (long DataFrame), ``medians``, ``simulations`` (xr.Dataset,
    one variable per method, first seed), ``histories`` (method -> learning curve DataFrame),
    ``wall_time_s`` (method -> seconds), ``basins`` and, with ``vic_gz``, ``surrogate_accuracy``
    (per parameter set and basin, test period) and ``surrogate_info`` (its training record).
    """
    if ds is None or attrs is None:
        ds, attrs = load_streamflow_data(config.basins, quick=config.quick_data, forcing=config.forcing)
    basins = [str(b) for b in ds["site"].values]
    rows, sims, hist, wall = [], {}, {}, {}
    extra: dict = {}
    sur = None
    if "vic_gz" in methods and config.vic is not None:
        t0 = time.perf_counter()
        sur = sv.get_surrogate(ds, attrs, basins, config.train_period, config.vic, config.mode, progress=progress)
        extra["surrogate_accuracy"] = sv.surrogate_accuracy(sur, ds, attrs, basins, config.test_period, config.vic)
        extra["surrogate_info"] = dict(sur.training_info)
        wall["VIC surrogate (training + accuracy test)"] = time.perf_counter() - t0
    for seed in config.seeds:
        if sur is not None:
            r, legacy = sv.run_dpl_vic(ds, attrs, basins, config.train_period, config.test_period, config.vic, sur,
                                       seed, config.warmup_days, progress=progress)
            name = case2_method_labels(config)["vic_gz"]
            rows.append(r.metrics.assign(method=name, seed=seed))
            rows.append(legacy.assign(method=case2_method_labels(config)["vic_gz_legacy"], seed=seed))
            sims.setdefault(name, r.simulation)
            hist.setdefault(name, r.history)
            wall[name] = wall.get(name, 0.0) + r.wall_time_s
        for mid in [m for m in _learned_methods(config) if m in methods]:
            label, runner, settings, names = _learned_methods(config)[mid]
            r = runner(ds, attrs, basins, basins, config.train_period, config.test_period, names, settings, seed,
                       config.warmup_days, progress=progress)
            rows.append(r.metrics.assign(method=label, seed=seed))
            sims.setdefault(label, r.simulation)
            hist.setdefault(label, r.history)
            wall[label] = wall.get(label, 0.0) + r.wall_time_s
    seed0 = config.seeds[0]
    if "regionalization" in methods:
        r = run_regionalization(ds, attrs, basins, basins, config.train_period, config.test_period, config.attributes,
                                config.regionalization_max_evals, config.regionalization_complexes, config.objective,
                                seed0, config.warmup_days, config.dpl.routing, progress=progress,
                                refine_steps=config.regionalization_refine_steps,
                                refine_lr=config.regionalization_refine_lr,
                                refine_max_steps=config.regionalization_refine_max_steps)
        name = case2_method_labels(config)["regionalization"]
        rows.append(r.metrics.assign(method=name, seed=seed0))
        sims[name], hist[name], wall[name] = r.simulation, r.learning_curve, r.wall_time_s
    if "vic_sceua" in methods and config.vic is not None:
        r = sv.run_sceua_vic(ds, attrs, basins, config.train_period, config.test_period, config.vic.sceua_max_evals,
                             config.vic.sceua_complexes, seed0, config.warmup_days, progress=progress)
        name = case2_method_labels(config)["vic_sceua"]
        rows.append(r.metrics.assign(method=name, seed=seed0))
        sims[name], hist[name], wall[name] = r.simulation, r.learning_curve, r.wall_time_s
    if "sceua" in methods:
        r = run_sceua_hbv(ds, basins, config.train_period, config.test_period, config.sceua_max_evals,
                          config.sceua_complexes, config.objective, seed0, config.warmup_days, config.dpl.routing,
                          progress=progress)
        name = case2_method_labels(config)["sceua"]
        rows.append(r.metrics.assign(method=name, seed=seed0))
        sims[name], hist[name], wall[name] = r.simulation, r.learning_curve, r.wall_time_s
    table = pd.concat(rows, ignore_index=True)[["site", "method", "seed", "nse", "kge", "n_obs"]]
    # per method: median over basins for each seed, then the mean over seeds
    per_seed = table.groupby(["method", "seed"], sort=False)[["nse", "kge"]].median()
    med = per_seed.groupby("method", sort=False).mean().rename(columns={"nse": "median_nse", "kge": "median_kge"})
    med["n_basins"] = table.groupby("method", sort=False)["nse"].count() // table.groupby("method", sort=False)["seed"].nunique()
    med["n_seeds"] = table.groupby("method", sort=False)["seed"].nunique()
    med["seed_sd_nse"] = per_seed["nse"].groupby("method", sort=False).std(ddof=1)
    med["forcing"] = ds.attrs.get("forcing", config.forcing)
    # SCE-UA-based baselines: is the budget converged (learning curve flat over its last 20 %)?
    conv = {k: budget_convergence(h) for k, h in hist.items() if "best_cost_median" in h}
    med["budget_converged"] = pd.Series({k: c["converged"] for k, c in conv.items()}, dtype=object)
    med["tail_improvement"] = pd.Series({k: c["improvement"] for k, c in conv.items()}, dtype=float)
    simds = xr.Dataset({k: v for k, v in sims.items()})
    store = store or RunStore("case2", config.mode, tag)
    if write:
        store.write_table("medians", med, index=True)
        store.write_table("metrics", table)
        _write_simulations(simds, store.add("simulations", "nc"))
        if "surrogate_accuracy" in extra:
            store.write_table("vic_surrogate_accuracy", extra["surrogate_accuracy"])
    return {"metrics": table, "medians": med, "simulations": simds, "histories": hist, "wall_time_s": wall,
            "basins": basins, "store": store, **extra}


def forcing_comparison(config: Case2Config, methods: Sequence[str] = ("dpl", "sceua"),
                       forcings: Sequence[str] = FORCINGS, known: dict | None = None, progress: bool = False,
                       write: bool = True, tag: str = "") -> pd.DataFrame:
    """What the forcing costs: the same Case 2 ``methods`` on the same basins and periods under each
    forcing product. ``known``: forcing -> a metrics table already computed with ``config`` (e.g.
    ``run_case2(...)["metrics"]``), reused instead of rerunning (only the methods' rows are kept).
    Returns the long per-basin table (``site, method, seed, nse, kge, n_obs, forcing``) and (``write``)
    saves it as ``results/case2/forcing_comparison_<mode><tag>.csv``."""
    known = dict(known or {})
    tables, labels = {}, set()
    for f in forcings:
        if f in known:
            continue
        cfg = replace(config, forcing=f)
        ds, attrs = load_streamflow_data(cfg.basins, quick=cfg.quick_data, forcing=f)
        r = run_case2(cfg, ds, attrs, methods=methods, write=False, progress=progress)
        tables[f] = r["metrics"].assign(forcing=f)
        labels |= set(r["metrics"]["method"])
    for f, t in known.items():
        if f not in forcings:
            continue
        sub = t[t["method"].isin(labels)] if labels else t
        if labels and set(sub["method"]) != labels:
            raise ValueError(f"known[{f!r}] lacks methods {sorted(labels - set(sub['method']))}")
        tables[f] = sub.assign(forcing=f)
    out = pd.concat([tables[f] for f in forcings if f in tables], ignore_index=True)
    if write:
        RunStore("case2", config.mode, tag).write_table("forcing_comparison", out)
    return out


def forcing_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """Median NSE and KGE (mean over seeds of per-seed medians) per method and forcing, with the
    Daymet minus ERA5-Land difference and the share of basins where Daymet scores higher."""
    per_seed = comparison.groupby(["method", "forcing", "seed"], sort=False)[["nse", "kge"]].median()
    med = per_seed.groupby(["method", "forcing"], sort=False).mean().unstack("forcing")
    out = pd.DataFrame(index=med.index)
    for f in comparison["forcing"].unique():
        out[f"median_nse_{f}"] = med[("nse", f)]
        out[f"median_kge_{f}"] = med[("kge", f)]
    if {"daymet", "era5land"} <= set(comparison["forcing"]):
        out["nse_gain_daymet"] = out["median_nse_daymet"] - out["median_nse_era5land"]
        wide = comparison.pivot_table(index=["method", "seed", "site"], columns="forcing", values="nse")
        better = (wide["daymet"] > wide["era5land"]).groupby(level="method").mean()
        out["share_basins_daymet_better"] = better.reindex(out.index)
    return out


# ============================================================================ Case 3: PUB
def pub_folds_for(basins: Sequence[str], k: int, seed: int = 0) -> list[list[str]]:
    """Random PUB folds (seeded) over ``basins``: disjoint, together all basins."""
    return random_pub_folds(list(basins), k, seed)


def _folds_progress(folds, progress: bool, desc: str):
    if not progress:
        return enumerate(folds)
    from dplpaper.progress import tqdm
    return tqdm(list(enumerate(folds)), desc=desc, unit="fold")


def run_pub_folds(ds: xr.Dataset, attrs: xr.Dataset, folds: list[list[str]], config: Case3Config,
                  methods: Sequence[str] = ("dpl", "regionalization"), write: bool = True,
                  seed: int | None = None, tag: str = "", progress: bool = False,
                  fold_indices: Sequence[int] | None = None, store: RunStore | None = None) -> pd.DataFrame:
    """k-fold PUB: for every fold, train on the other folds and test on it, for each attribute
    set (dPL) and each of ``config.regionalization_sets`` (regionalization); held-out basins
    pooled. Returns a long table ``fold, site, method, attributes, seed, nse, kge, n_obs`` and, with
    the regionalization, ``budget_converged, tail_improvement`` (its fit's
    :func:`~dplpaper.calibrate.sceua.budget_convergence` on that fold; empty on dPL rows), and writes
    ``results/case3/pub_metrics_<mode><tag>.csv``. ``progress``: a bar over folds.
    ``fold_indices``: test only these folds (the others still train; default all)."""
    seeds = config.seeds if seed is None else (seed,)
    labels = case3_method_labels(config)
    rows = []
    for i, test in _folds_progress(folds, progress, "PUB folds"):
        if fold_indices is not None and i not in fold_indices:
            continue
        train = sorted(b for j, f in enumerate(folds) if j != i for b in f)
        for label, names in config.attribute_sets.items():
            if "dpl" in methods:
                for s in seeds:
                    r = run_dpl_hbv(ds, attrs, train, test, config.period, config.period, names, config.dpl, s,
                                    config.warmup_days)
                    rows.append(r.metrics.assign(fold=i, method=labels[f"dpl_{label}"], attributes=label,
                                                 seed=s))
            if "regionalization" in methods and label in config.regionalization_sets:
                r = run_regionalization(ds, attrs, train, test, config.period, config.period, names,
                                        config.regionalization_max_evals, config.regionalization_complexes,
                                        config.objective, seeds[0], config.warmup_days, config.dpl.routing,
                                        progress=progress, refine_steps=config.regionalization_refine_steps,
                                        refine_lr=config.regionalization_refine_lr,
                                refine_max_steps=config.regionalization_refine_max_steps)
                conv = budget_convergence(r.learning_curve)
                rows.append(r.metrics.assign(fold=i, method=labels[f"regionalization_{label}"],
                                             attributes=label, seed=seeds[0], budget_converged=conv["converged"],
                                             tail_improvement=conv["improvement"]))
    cols = ["fold", "site", "method", "attributes", "seed", "nse", "kge", "n_obs"]
    table = pd.concat(rows, ignore_index=True)
    # the regionalization's rows say whether its search converged on that fold (dPL rows: empty)
    table = table[cols + [c for c in ("budget_converged", "tail_improvement") if c in table]]
    if write:
        store = store or RunStore("case3", config.mode, tag)
        store.write_table("pub_metrics", table)
        store.path("pub_key", "json").write_text(json.dumps({"key": pub_key(config, folds, seeds, methods, fold_indices)}))
    return table


def pub_key(config: Case3Config, folds: list[list[str]], seeds: Sequence[int], methods: Sequence[str],
            fold_indices: Sequence[int] | None = None) -> str:
    """Hash of everything a :func:`run_pub_folds` table depends on (config, folds, seeds, methods,
    tested folds): :func:`stored_pub_table` reuses a stored table only when its key matches."""
    from dplpaper.config import config_dict

    d = {"config": config_dict(config), "folds": [sorted(map(str, f)) for f in folds], "seeds": [int(s) for s in seeds],
         "methods": sorted(methods), "fold_indices": None if fold_indices is None else sorted(map(int, fold_indices)),
         "format": 1}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def stored_pub_table(config: Case3Config, folds: list[list[str]], tag: str = "") -> pd.DataFrame | None:
    """The PUB table that :func:`run_pub_folds` (default methods, all folds, ``config.seeds``) wrote
    for exactly this ``config`` and ``folds`` (key file beside it), or None. Passed to
    :func:`scaling_curve` as ``pub_table``, its share-1 fits are taken instead of being fitted again."""
    store = RunStore("case3", config.mode, tag)
    table_path, key_path = store.path("pub_metrics"), store.path("pub_key", "json")
    want = pub_key(config, folds, config.seeds, ("dpl", "regionalization"))
    if not (table_path.exists() and key_path.exists()) or json.loads(key_path.read_text()).get("key") != want:
        return None
    return pd.read_csv(table_path, dtype={"site": str})


def scaling_curve(ds: xr.Dataset, attrs: xr.Dataset, folds: list[list[str]], config: Case3Config,
                  write: bool = True, pub_table: pd.DataFrame | None = None, tag: str = "",
                  progress: bool = False, regionalization: bool = True,
                  fold_indices: Sequence[int] | None = None, store: RunStore | None = None) -> pd.DataFrame:
    """PUB scaling curve: for every fold, seed and share ``f`` of ``config.fractions``, train gA +
    HBV on the nested subset of the training folds (:func:`dplpaper.data.basin_fractions`, one
    permutation per seed and fold) and test on the held-out fold. Regionalization is fitted at
    share 1 (and at every share if ``config.scaling_regionalization``). At share 1 both methods are
    the very fits of :func:`run_pub_folds` (same basins, attributes, settings and seed): with
    ``pub_table`` (its table, e.g. :func:`stored_pub_table`) those rows are taken, not fitted again. The
    per-basin long table ``fraction, seed, fold, n_train, site, method, nse, kge`` (and
    ``budget_converged`` on the regionalization's rows where known) is returned and written to
    ``results/case3/scaling_<mode><tag>.csv`` (summaries: :func:`scaling_summary`).
    ``regionalization=False``: dPL rows only (e.g. when the PUB run, made apart, holds the baseline).
    ``fold_indices``: test only these folds (default all)."""
    names = config.attribute_sets[config.scaling_attributes]
    labels = case3_method_labels(config)

    def from_pub(i: int, s: int, method_id: str, n_test: int) -> pd.DataFrame | None:
        """Fold ``i``'s rows of ``method_id`` and seed ``s`` in ``pub_table`` (the very share-1 fit), or None."""
        if pub_table is None or method_id not in labels:
            return None
        sel = pub_table[(pub_table["fold"] == i) & (pub_table["method"] == labels[method_id])
                        & (pub_table["seed"] == int(s))]
        if len(sel) != n_test:
            return None
        keep = [c for c in ("site", "nse", "kge", "n_obs", "budget_converged") if c in sel]
        return sel[keep].reset_index(drop=True)

    rows = []
    for i, test in _folds_progress(folds, progress, "scaling folds"):
        if fold_indices is not None and i not in fold_indices:
            continue
        train = sorted(b for j, f in enumerate(folds) if j != i for b in f)
        for s in config.scaling_seeds:
            subsets = basin_fractions(train, config.fractions, seed=1000 * int(s) + i)
            for frac, sub in subsets.items():
                if len(sub) < 2:
                    continue
                reused = from_pub(i, s, f"dpl_{config.scaling_attributes}", len(test)) if frac == 1.0 else None
                if reused is None:
                    reused = run_dpl_hbv(ds, attrs, sub, test, config.period, config.period, names, config.dpl, s,
                                         config.warmup_days).metrics
                rows.append(reused.drop(columns=["budget_converged"], errors="ignore")
                            .assign(fraction=frac, seed=s, fold=i, n_train=len(sub), method="dPL"))
                if regionalization and (config.scaling_regionalization or frac == 1.0):
                    if frac == 1.0 and s != config.scaling_seeds[0] and not config.scaling_regionalization:
                        continue
                    reused = from_pub(i, s, f"regionalization_{config.scaling_attributes}", len(test)) \
                        if frac == 1.0 else None
                    if reused is None:
                        fit = run_regionalization(ds, attrs, sub, test, config.period, config.period, names,
                                                  config.regionalization_max_evals, config.regionalization_complexes,
                                                  config.objective, int(s), config.warmup_days, config.dpl.routing,
                                                  refine_steps=config.regionalization_refine_steps,
                                                  refine_lr=config.regionalization_refine_lr,
                                refine_max_steps=config.regionalization_refine_max_steps)
                        reused = fit.metrics.assign(budget_converged=budget_convergence(fit.learning_curve)["converged"])
                    rows.append(reused.assign(fraction=frac, seed=s, fold=i, n_train=len(sub),
                                              method="regionalization"))
    cols = ["fraction", "seed", "fold", "n_train", "site", "method", "nse", "kge"]
    table = pd.concat(rows, ignore_index=True)
    table = table[cols + (["budget_converged"] if "budget_converged" in table else [])]
    if write:
        (store or RunStore("case3", config.mode, tag)).write_table("scaling", table)
    return table


def scaling_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Median held-out KGE (and NSE) pooled over folds, per method, share and seed; then mean and
    spread over seeds. Columns: ``method, fraction, median_kge, median_kge_min, median_kge_max,
    median_nse, n_train_mean, n_seeds``."""
    per = table.groupby(["method", "fraction", "seed"]).agg(median_kge=("kge", "median"), median_nse=("nse", "median"),
                                                            n_train=("n_train", "mean")).reset_index()
    out = per.groupby(["method", "fraction"]).agg(median_kge=("median_kge", "mean"),
                                                  median_kge_min=("median_kge", "min"),
                                                  median_kge_max=("median_kge", "max"),
                                                  median_nse=("median_nse", "mean"),
                                                  n_train_mean=("n_train", "mean"),
                                                  n_seeds=("seed", "nunique")).reset_index()
    return out


def pub_medians(table: pd.DataFrame, folds: Sequence[int] | None = None) -> pd.DataFrame:
    """Per method of a PUB table (:func:`run_pub_folds`): the median over held-out basins of KGE
    and NSE for each seed, then the mean over seeds; ``n_basins`` counts the first seed's basins.
    ``folds``: only the held-out basins of these folds (e.g. those every method was run on)."""
    if folds is not None:
        table = table[table["fold"].isin(list(folds))]
    per_seed = table.groupby(["method", "seed"], sort=False)[["kge", "nse"]].median()
    med = per_seed.groupby("method", sort=False).mean().rename(columns={"kge": "median_kge", "nse": "median_nse"})
    first = table[table["seed"] == table["seed"].iloc[0]]
    med["n_basins"] = first.groupby("method", sort=False)["kge"].count()
    return med


def scaling_phases(fractions: Sequence[float], values: Sequence[float], split: float = 0.25) -> tuple[float, float]:
    """Rise of a scaling curve from its smallest share to ``split`` and from ``split`` to its largest
    share: ``(early, late)`` (NaN where ``split`` is not one of the shares or is an end point).
    The paper's two-phase curve is ``early > late > 0`` (steep, then slower, not saturated)."""
    f = np.asarray(fractions, dtype=float)
    v = np.asarray(values, dtype=float)
    order = np.argsort(f)
    f, v = f[order], v[order]
    hit = np.flatnonzero(np.isclose(f, split))
    if len(hit) == 0 or hit[0] in (0, len(f) - 1):
        return float("nan"), float("nan")
    j = int(hit[0])
    return float(v[j] - v[0]), float(v[-1] - v[j])


def matching_share(fractions: Sequence[float], values: Sequence[float], target: float) -> float:
    """Smallest share at which the curve ``values(fractions)`` reaches ``target`` (linear
    interpolation between neighbouring shares). Returns the first share if it already reaches
    the target there, and NaN if it never does."""
    f = np.asarray(fractions, dtype=float)
    v = np.asarray(values, dtype=float)
    order = np.argsort(f)
    f, v = f[order], v[order]
    if len(f) == 0 or not np.isfinite(target):
        return float("nan")
    if v[0] >= target:
        return float(f[0])
    for j in range(1, len(f)):
        if v[j] >= target:
            w = (target - v[j - 1]) / (v[j] - v[j - 1])
            return float(f[j - 1] + w * (f[j] - f[j - 1]))
    return float("nan")
