r"""Case 1 of Tsai et al. (2021): soil moisture (SMAP) — dPL (gA, gZ) vs SCE-UA through an LSTM surrogate.

The paper calibrated five VIC parameters (INFILT, Dsmax, Ds, Ws, EXPT) against SMAP surface soil
moisture over CONUS through an LSTM surrogate of VIC, by dPL (networks gA and gZ, one domain-wide
loss) and by SCE-UA (site by site), at three sampling densities. Here the process model is the
VIC-style model :class:`dplpaper.models.vicwb.VICStyleModel` and its LSTM surrogate
(:mod:`dplpaper.models.surrogate`). This module is the case pipeline (training cells, cached runs,
evaluation, scaling and seed tables); its parts live in :mod:`dplpaper.data.soil_moisture` (data),
:mod:`dplpaper.experiments.configs` (``Case1Config``), :mod:`dplpaper.experiments.case1_methods`
(surrogate, dPL, SCE-UA) and :mod:`dplpaper.metrics` (Moran's I, neighbour differences), whose public
names are re-exported here. The notebooks ``notebooks/1x_case1_*.ipynb`` only call it and plot.

Two variants (``Case1Config.variant``):

* ``"real"``: the 412 real SMAP cells (hydroDL CONUSv4f1) with NLDAS-2 forcing and SMAP L3 AM
  soil moisture as the target; the true parameters are unknown.
* ``"twin"``: the same cells, forcing and observation gaps, but the observations are made by the
  VIC-style model from a known parameter field (:func:`dplpaper.data.make_twin`: a smooth,
  nonlinear function of the cells' static attributes plus spatially correlated noise), with
  additive Gaussian noise (``twin_noise`` m3/m3) and SMAP's real gaps. Parameter recovery can then
  be measured, and the twin's noise-free ("true") ET stands in for the MODIS MOD16A2 ET of the
  paper's Figure 3.

Periods. The data cover 2015-04-01..2018-03-31 but SMAP ends 2017-03-31 in this copy, so the split
is exactly the paper's: train 2015-04-01..2016-03-31, test 2016-04-01..2017-03-31. Every run of
the surrogate starts with ``spinup_days`` days that only spin up its LSTM state: in the test
period these are the real preceding days; the training year has no preceding forcing, so its
spin-up repeats the last ``spinup_days`` days of the training year (late winter before the
1 April start: seasonally seamless). The VIC-style model itself (twin truth, ET) is spun up by
running the first year once before the record.

Sampling densities: the paper's s16 / s8 / s4 (one cell per 16x16 / 8x8 / 4x4 patch of the 36-km
grid) become one cell per 4x4 / 2x2 / 1x1 patch of the 412-cell lattice
(:func:`dplpaper.data.density_sample`), and the spatial-test neighbour "3 rows north, 3 columns
east" becomes the lattice cell 1 north, 1 east (:func:`dplpaper.data.neighbour_cells`). With s4
every cell trains, so there are no neighbours at s4.

Epochs: for both methods one epoch is, on average, one forward run of the model per training
cell over the training period (paper, Methods). Learning curves record the test-period RMSE
(median over training cells of the per-cell RMSE) against epochs and wall time (wall time
excludes the evaluations made to draw the curve).

Units: soil moisture m3/m3, ET mm/day (mm/year for temporal means), parameters in the unit cube
unless said otherwise. Shapes: series ``[time, site]``, parameters ``[site, 5]``.

Results (NetCDF / CSV) go to ``results/case1/`` (:func:`dplpaper.results.results_dir`); the
trained surrogate and every calibration run are cached there, keyed by a hash of the settings,
so the notebooks share them, and a notebook run from a clean clone recomputes what it needs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import xarray as xr

from dplpaper.data import density_sample, neighbour_cells
from dplpaper.data.soil_moisture import (ATTRIBUTES, PARAM_NAMES, SOIL_VARS, Case1Data, legacy_spunup, load_case1,
                                         period_slice)
from dplpaper.experiments.case1_methods import (MethodRun, SoilSurrogate, default_run, get_surrogate, run_dpl,
                                                run_sceua, surrogate_accuracy, surrogate_chunks, surrogate_path)
from dplpaper.experiments.configs import CASE1_RUN_FIELDS, Case1Config
from dplpaper.metrics import mean_neighbour_difference, metrics_table, morans_i
from dplpaper.models.surrogate import LSTMSurrogate
from dplpaper.models.vicwb import PARAMETER_TABLE
from dplpaper.results import results_dir

__all__ = [
    "ATTRIBUTES", "SOIL_VARS", "PARAM_NAMES", "PARAMETER_TABLE", "METHOD_LABELS", "Case1Config", "Case1Data", "MethodRun",
    "SoilSurrogate", "load_case1", "get_surrogate", "surrogate_accuracy", "run_dpl", "run_sceua", "get_run",
    "default_run", "simulate_surrogate", "simulate_legacy", "site_metrics", "generalization",
    "et_comparison", "parameter_recovery", "morans_i", "mean_neighbour_difference", "spatial_coherence",
    "epochs_to_threshold", "learning_curve_runs", "scaling_table", "seed_ensemble", "ensemble_summary",
    "neighbour_test_cells", "period_slice", "write_table",
]

METHOD_LABELS = {"default": "default", "sceua": "SCE-UA", "gz": "dPL gZ", "ga": "dPL gA"}


def training_cells(data: Case1Data, density: str, cfg: Case1Config, method: str) -> np.ndarray:
    """Training cells of a density (``density_sample`` seed 0); SCE-UA learning-curve runs may use
    a seeded subsample of at most ``cfg.sce_site_cap`` cells (never at ``cfg.density_main``)."""
    idx = density_sample(xr.Dataset(coords={"row": ("site", data.row), "col": ("site", data.col)}), density, seed=0)
    if method == "sceua" and cfg.sce_site_cap is not None and density != cfg.density_main and len(idx) > cfg.sce_site_cap:
        rng = np.random.default_rng([cfg.twin_seed, 11])
        idx = np.sort(rng.choice(idx, size=cfg.sce_site_cap, replace=False))
    return idx


def get_run(cfg: Case1Config, data: Case1Data, surrogate: LSTMSurrogate, method: str, density: str,
            seed: int | None = None, progress: bool = False) -> MethodRun:
    """A cached run (``results/case1/runs/<variant>_<method>_<density>_seed<k>_<hash>.nc``), computed if absent."""
    seed = cfg.seed if seed is None else int(seed)
    if method == "default":
        return default_run(data)
    key = cfg.key(CASE1_RUN_FIELDS, variant=data.variant, method=method, density=density, seed=seed,
                  sur=surrogate_path(cfg).name)
    path = results_dir("case1", "runs") / f"{data.variant}_{method}_{density}_seed{seed}_{key}.nc"
    if cfg.use_cache and path.exists():
        return MethodRun.from_netcdf(path)
    idx = training_cells(data, density, cfg, method)
    if method == "sceua":
        run = run_sceua(data, surrogate, idx, cfg, seed=seed, density=density, progress=progress)
    elif method in ("gz", "ga"):
        run = run_dpl(data, surrogate, idx, cfg, net=method, seed=seed, density=density, progress=progress)
    else:
        raise ValueError(f"unknown method {method!r}: default, sceua, gz or ga")
    run.to_netcdf(path)
    return run


# ============================================================================== evaluation
def simulate_surrogate(data: Case1Data, surrogate: LSTMSurrogate, idx, params: np.ndarray, period,
                       cfg: Case1Config | None = None) -> dict[str, np.ndarray]:
    """Surrogate ``soil_moisture`` and ``et`` over ``period`` at cells ``idx`` with ``params [k, 5]``
    (spin-up as in training); each ``[n_days, k]`` float64."""
    chunk = cfg.sur_chunk if cfg else 4096
    dev = cfg.torch_device() if cfg else torch.device("cpu")
    f, _ = data.model_inputs(period, idx)
    out = surrogate_chunks(SoilSurrogate(surrogate).to(dev), torch.as_tensor(f), torch.as_tensor(params, dtype=torch.float32),
                            data.spinup_days, chunk, dev, outputs=("soil_moisture", "et"))
    return {k: v.double().numpy() for k, v in out.items()}


def simulate_legacy(data: Case1Data, idx, params: np.ndarray, period) -> dict[str, np.ndarray]:
    """The VIC-style model itself (spun up over the first year, run over the whole record) at cells
    ``idx`` with ``params [k, 5]``; ``soil_moisture`` and ``et`` over ``period``, ``[n_days, k]``."""
    idx = np.asarray(idx, dtype=int)
    out = legacy_spunup(data.forcing[:, idx], params, data.soil[idx])
    sl = period_slice(data, period)
    return {k: v[sl] for k, v in out.items()}


def site_metrics(sim: np.ndarray, obs: np.ndarray) -> pd.DataFrame:
    """bias, corr, ubrmse, rmse per cell (``[time, site]``, NaN obs ignored)."""
    return metrics_table(sim, obs)[["bias", "corr", "ubrmse", "rmse"]].reset_index(drop=True)


def neighbour_test_cells(data: Case1Data, train_idx) -> np.ndarray:
    """Unique spatial-test cells: the lattice neighbour (1 north, 1 east) of each training cell
    that exists and is not a training cell (:func:`dplpaper.data.neighbour_cells`)."""
    nb = neighbour_cells(data.row, data.col, np.asarray(train_idx, dtype=int))
    return np.unique(nb[nb >= 0])


def generalization(cfg: Case1Config, data: Case1Data, surrogate: LSTMSurrogate, runs: dict[str, MethodRun],
                   train_idx) -> pd.DataFrame:
    """Temporal and spatial generalization (Figure 2d): per method and cell, bias / corr / ubRMSE /
    RMSE of surrogate soil moisture against the observations over the test period.

    ``temporal``: the training cells; ``spatial``: their neighbours (not trained), where gA uses
    the neighbour's attributes, gZ its attributes and training-period series, SCE-UA the parameters
    of the nearest calibrated cell, default the defaults. Long table: test, method, site, metrics.
    """
    train_idx = np.asarray(train_idx, dtype=int)
    rows = []
    y = data.obs[period_slice(data, data.test_period)]
    for test, idx in (("temporal", train_idx), ("spatial", neighbour_test_cells(data, train_idx))):
        for name, run in runs.items():
            p = run.params_at(idx, data)
            sim = simulate_surrogate(data, surrogate, idx, p, data.test_period, cfg)["soil_moisture"]
            m = site_metrics(sim, y[:, idx])
            m.insert(0, "site", data.site[idx])
            m.insert(0, "method", name)
            m.insert(0, "test", test)
            rows.append(m)
    return pd.concat(rows, ignore_index=True)


def et_comparison(data: Case1Data, runs: dict[str, MethodRun], idx, period=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Uncalibrated ET (Figure 3, twin): the VIC-style model's ET with each method's parameters vs
    the twin's true ET (noise-free, from the true parameters), at cells ``idx``.

    Returns (summary, means): summary per method with ``spatial_corr``, ``bias`` (mm/yr) and
    ``nse`` of the temporal-mean ET across cells and ``median_corr`` (CONUS median of the
    per-cell daily correlation); means: per cell the temporal-mean ET (mm/yr) of truth and methods.
    """
    if data.et_true is None:
        raise ValueError("ET truth exists only in the twin variant")
    period = period or data.test_period
    idx = np.asarray(idx, dtype=int)
    sl = period_slice(data, period)
    et_true = data.et_true[sl][:, idx]
    means = pd.DataFrame({"site": data.site[idx], "lat": data.lat[idx], "lon": data.lon[idx],
                          "truth": et_true.mean(0) * 365.25})
    rows = []
    for name, run in runs.items():
        et = simulate_legacy(data, idx, run.params_at(idx, data), period)["et"]
        m = et.mean(0) * 365.25
        means[name] = m
        t = means["truth"].values
        rows.append({"method": name, "spatial_corr": float(np.corrcoef(m, t)[0, 1]), "bias": float(np.mean(m - t)),
                     "nse": float(1 - np.sum((m - t) ** 2) / np.sum((t - t.mean()) ** 2)),
                     "median_corr": float(np.nanmedian(metrics_table(et, et_true)["corr"]))})
    return pd.DataFrame(rows).set_index("method"), means


def parameter_recovery(estimated: np.ndarray, true: np.ndarray, names: Sequence[str] = PARAM_NAMES) -> pd.DataFrame:
    """Per parameter, across cells: RMSE, bias (mean est - true) and Pearson correlation of
    estimated vs true unit-cube parameters (``[site, n_params]`` each)."""
    e, t = np.asarray(estimated, float), np.asarray(true, float)
    if e.shape != t.shape:
        raise ValueError(f"estimated {e.shape} and true {t.shape} parameters differ in shape")
    out = []
    for j, n in enumerate(names):
        d = e[:, j] - t[:, j]
        c = np.corrcoef(e[:, j], t[:, j])[0, 1] if e[:, j].std() > 0 and t[:, j].std() > 0 else np.nan
        out.append({"param": n, "rmse": float(np.sqrt(np.mean(d ** 2))), "bias": float(d.mean()), "corr": float(c)})
    return pd.DataFrame(out).set_index("param")


def spatial_coherence(params: dict[str, np.ndarray], lat, lon, k: int = 4) -> pd.DataFrame:
    """Moran's I per parameter set (dict name -> ``[site, 5]``) and parameter: a DataFrame
    indexed by parameter, one column per name."""
    return pd.DataFrame({name: [morans_i(p[:, j], lat, lon, k) for j in range(p.shape[1])] for name, p in params.items()},
                        index=pd.Index(PARAM_NAMES, name="param"))


def epochs_to_threshold(history: pd.DataFrame, threshold: float) -> tuple[float, float]:
    """(epoch, wall seconds) of the first learning-curve point with ``test_rmse <= threshold``
    (no interpolation); (nan, nan) if never reached."""
    ok = history["test_rmse"].values <= threshold
    if not ok.any():
        return float("nan"), float("nan")
    i = int(np.argmax(ok))
    return float(history["epoch"].values[i]), float(history["wall_time_s"].values[i])


# ============================================================================== orchestration
def learning_curve_runs(cfg: Case1Config, data: Case1Data, surrogate: LSTMSurrogate,
                        methods=("gz", "sceua"), seed: int | None = None) -> dict[tuple[str, str], MethodRun]:
    """Runs for every (method, density) in ``cfg.densities`` (cached)."""
    return {(m, d): get_run(cfg, data, surrogate, m, d, seed) for d in cfg.densities for m in methods}


def scaling_table(cfg: Case1Config, data: Case1Data, surrogate: LSTMSurrogate,
                  runs: dict[tuple[str, str], MethodRun]) -> pd.DataFrame:
    """Figure 6a: per density, dPL (gZ) epochs and wall time to ``cfg.rmse_threshold``, ending test RMSE,
    the same for SCE-UA, ET spatial correlation (twin only; at the training cells) and the
    neighbour (spatial test) median RMSE of dPL and of SCE-UA (NaN at s4: no neighbours).
    Written to ``results/case1/scaling_<variant>_<mode>.csv``."""
    rows = []
    y = data.obs[period_slice(data, data.test_period)]
    for d in cfg.densities:
        g, s = runs[("gz", d)], runs[("sceua", d)]
        idx = training_cells(data, d, cfg, "gz")
        e_g, w_g = epochs_to_threshold(g.history, cfg.rmse_threshold)
        e_s, w_s = epochs_to_threshold(s.history, cfg.rmse_threshold)
        row = {"density": d, "n_train": len(idx), "dpl_epochs_to_threshold": e_g, "dpl_wall_to_threshold_s": w_g,
               "sceua_epochs_to_threshold": e_s, "sceua_wall_to_threshold_s": w_s,
               "dpl_ending_rmse": float(g.history["test_rmse"].iloc[-1]),
               "sceua_ending_rmse": float(s.history["test_rmse"].iloc[-1]),
               "dpl_epochs": float(g.history["epoch"].iloc[-1]), "sceua_epochs": float(s.history["epoch"].iloc[-1])}
        if data.et_true is not None:
            summ, _ = et_comparison(data, {"gz": g}, idx)
            row["dpl_et_spatial_corr"] = summ.loc["gz", "spatial_corr"]
        nb = neighbour_test_cells(data, idx)
        for name, run in (("dpl", g), ("sceua", s)):
            if nb.size:
                sim = simulate_surrogate(data, surrogate, nb, run.params_at(nb, data), data.test_period, cfg)["soil_moisture"]
                row[f"{name}_neighbour_rmse"] = float(np.nanmedian(site_metrics(sim, y[:, nb])["rmse"]))
            else:
                row[f"{name}_neighbour_rmse"] = float("nan")
        rows.append(row)
    out = pd.DataFrame(rows).set_index("density")
    out.to_csv(results_dir("case1") / f"scaling_{data.variant}_{cfg.mode}.csv")
    return out


def seed_ensemble(cfg: Case1Config, data: Case1Data, surrogate: LSTMSurrogate, seeds=None,
                  methods=("sceua", "gz", "ga")) -> pd.DataFrame:
    """Table S1: for each seed and method at ``cfg.density_main``, the CONUS medians of bias and corr
    (temporal test: training cells; spatial: neighbours) and, in the twin, the ET median corr and
    spatial corr at the training cells. Written to ``results/case1/seed_ensemble_<variant>_<mode>.csv``."""
    seeds = cfg.seeds if seeds is None else seeds
    d = cfg.density_main
    idx = training_cells(data, d, cfg, "gz")
    rows = []
    for s in seeds:
        runs = {m: get_run(cfg, data, surrogate, m, d, s) for m in methods}
        runs = {"default": default_run(data), **runs}
        gen = generalization(cfg, data, surrogate, runs, idx)
        med = gen.groupby(["test", "method"])[["bias", "corr", "ubrmse", "rmse"]].median()
        et = et_comparison(data, runs, idx)[0] if data.et_true is not None else None
        for m in runs:
            if m == "default" and s != seeds[0]:
                continue
            r = {"seed": s, "method": m}
            for test in ("temporal", "spatial"):
                for k in ("bias", "corr", "ubrmse", "rmse"):
                    r[f"{test}_{k}"] = float(med.loc[(test, m), k])
            if et is not None:
                r["et_median_corr"] = float(et.loc[m, "median_corr"])
                r["et_spatial_corr"] = float(et.loc[m, "spatial_corr"])
            rows.append(r)
    out = pd.DataFrame(rows)
    out.to_csv(results_dir("case1") / f"seed_ensemble_{data.variant}_{cfg.mode}.csv", index=False)
    return out


def write_table(table: pd.DataFrame, stem: str, index: bool = False) -> Path:
    """Save one of Case 1's tables as ``results/case1/<stem>.csv`` (e.g. ``generalization_real_quick``)."""
    path = results_dir("case1") / f"{stem}.csv"
    table.to_csv(path, index=index)
    return path


def ensemble_summary(ens: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of every metric column, per method (std NaN for a single seed)."""
    cols = [c for c in ens.columns if c not in ("seed", "method")]
    g = ens.groupby("method", sort=False)[cols]
    mean, std = g.mean(), g.std(ddof=1)
    return pd.concat({"mean": mean, "std": std}, axis=1)
