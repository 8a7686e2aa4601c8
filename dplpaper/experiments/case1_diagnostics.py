"""Case 1 diagnostics (issue 15): is dPL's real-SMAP gap ours, the surrogate's or the model's?

:func:`legacy_check` scores each method's learned parameters twice against the observations, once
through the LSTM surrogate (what training saw) and once in the VIC-style model itself (the number
that counts), measures the surrogate's own error along those parameters, and counts the parameters
piled at the bounds of their range. If dPL scored well through the surrogate but worse in the
legacy model, it would be exploiting the surrogate's errors; if both agree, the gap is the
optimization's or the model structure's.

:func:`budget_sweep` asks whether the gap is the optimizer's budget: dPL gZ at several learning rates
and epoch budgets, SCE-UA at several evaluation budgets, on the same cells, each scored through the
surrogate and in the VIC-style model, with its epochs and wall time.

:func:`identifiability` asks which parameters surface soil moisture can pin down at all: it moves each
parameter a little and measures the change of the VIC-style model's top-layer soil moisture against
the observation noise (:func:`identifiability_table` adds each method's share of cells at the bounds,
so parameters piled there can be told apart from parameters the data never constrained).
:func:`truth_scores` makes the twin discriminating: each method's parameters scored against the twin's
noise-free truth, whose floor is 0, instead of against noisy observations that put every method near
the noise floor.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from dplpaper.experiments import soil_moisture as sm
from dplpaper.experiments.case1_run import score_cells, share_at_bounds

__all__ = ["legacy_check", "budget_sweep", "archived_sweep", "truth_scores", "identifiability", "residual_noise",
           "bounds_by_parameter", "identifiability_table"]


def legacy_check(cfg: sm.Case1Config, data: sm.Case1Data, surrogate, runs: dict, density: str,
                 bound: float = 0.02) -> pd.DataFrame:
    """Per method (``runs``: method -> :class:`~soil_moisture.MethodRun` at ``density``), over its
    training cells and the test period, CONUS medians over cells of:

    * ``rmse_surrogate``, ``corr_surrogate``: soil moisture through the surrogate vs observations;
    * ``rmse_legacy``, ``corr_legacy``: the same parameters run in the VIC-style model itself;
    * ``surrogate_error_rmse``: surrogate vs VIC-style model soil moisture (m3/m3);
    * ``share_at_bounds``: share of the five unit-cube parameters within ``bound`` of 0 or 1.

    Returns a DataFrame indexed by method (RMSE in m3/m3, corr unitless)."""
    y = data.obs[sm.period_slice(data, data.test_period)]
    rows = {}
    for method, run in runs.items():
        idx = sm.training_cells(data, density, cfg, method)
        p = run.params_at(idx, data)
        s_sur = sm.simulate_surrogate(data, surrogate, idx, p, data.test_period, cfg)["soil_moisture"]
        s_leg = sm.simulate_legacy(data, idx, p, data.test_period)["soil_moisture"]
        m_sur, m_leg = sm.site_metrics(s_sur, y[:, idx]), sm.site_metrics(s_leg, y[:, idx])
        rows[method] = {"rmse_surrogate": float(m_sur["rmse"].median()), "rmse_legacy": float(m_leg["rmse"].median()),
                        "corr_surrogate": float(m_sur["corr"].median()), "corr_legacy": float(m_leg["corr"].median()),
                        "surrogate_error_rmse": float(sm.site_metrics(s_sur, s_leg)["rmse"].median()),
                        "share_at_bounds": share_at_bounds(p, bound),
                        "n_cells": int(len(idx))}
    return pd.DataFrame(rows).T.rename_axis("method")


def budget_sweep(cfg: sm.Case1Config, data: sm.Case1Data, surrogate, density: str = "s8",
                 epochs=(30, 100, 300), lrs=(1e-2, 3e-3), sce_evals=(150, 500, 2000), seed: int = 0) -> pd.DataFrame:
    """dPL gZ for every (learning rate, epochs) of ``lrs`` x ``epochs`` and SCE-UA for every budget of
    ``sce_evals`` (evaluations per cell, all training cells) at ``density``; each run cached like any
    other (:func:`soil_moisture.get_run`). One row per run: ``method, lr, budget, epochs, wall_s,
    rmse_surrogate, rmse_legacy, corr_legacy, share_at_bounds, n_cells`` (test year, training cells,
    medians over cells; RMSE m3/m3; ``epochs``: forward runs per cell, SCE-UA's initial population
    included; ``wall_s``: training wall time without the curve's evaluations)."""
    rows = []
    plans = [("gz", replace(cfg, dpl_lr=float(lr), dpl_epochs={**cfg.dpl_epochs, density: int(ep)},
                            sce_site_cap=None), lr, ep) for lr in lrs for ep in epochs]
    plans += [("sceua", replace(cfg, sce_max_evals=int(ev), sce_site_cap=None), float("nan"), ev) for ev in sce_evals]
    for method, c, lr, budget in plans:
        run = sm.get_run(c, data, surrogate, method, density, seed)
        idx = sm.training_cells(data, density, c, method)
        sc = score_cells(c, data, surrogate, run, idx)
        p = run.params_at(idx, data)
        rows.append({"method": method, "lr": lr, "budget": int(budget),
                     "epochs": float(run.history["epoch"].iloc[-1]), "wall_s": float(run.history["wall_time_s"].iloc[-1]),
                     "rmse_surrogate": float(np.nanmedian(sc["rmse_surrogate"])),
                     "rmse_legacy": float(np.nanmedian(sc["rmse_legacy"])),
                     "corr_legacy": float(np.nanmedian(sc["corr_legacy"])),
                     "share_at_bounds": share_at_bounds(p), "n_cells": int(len(idx))})
    return pd.DataFrame(rows).assign(density=density)


def archived_sweep(variant: str = "real", mode: str = "quick") -> tuple[pd.DataFrame | None, dict | None]:
    """The archived budget sweep (``dplpaper run case1 --parts sweep --archive``:
    ``book/full_runs/case1/budget_sweep_<variant>_<mode>.csv``) and its provenance; ``(None, None)`` if absent."""
    from dplpaper.results import archived

    return archived("case1", f"budget_sweep_{variant}_{mode}.csv")


# ============================================================================ a discriminating twin
def truth_scores(data: sm.Case1Data, runs: dict, train_idx) -> pd.DataFrame:
    """Twin only: how far each method's parameters, run in the VIC-style model itself, put the test
    year's soil moisture from the **noise-free truth** (:attr:`Case1Data.sm_true`, every day), beside the
    RMSE against the noisy, gappy observations that training and the learning curves see.

    ``runs``: method -> :class:`~soil_moisture.MethodRun`; ``train_idx``: the training cells (each
    method is scored there, ``test="temporal"``, and at their untrained lattice neighbours,
    ``"spatial"``, with :meth:`~soil_moisture.MethodRun.params_at`: SCE-UA takes the nearest calibrated
    cell's parameters). One row per method, test and cell: ``rmse_truth``, ``rmse_obs`` (m3/m3) and
    ``noise_floor``, the RMSE of the observations against the truth (what even the true parameters
    score against the observations). Against the observations every method sits near the floor;
    against the truth the floor is 0, which is what lets the twin tell the methods apart."""
    if data.sm_true is None:
        raise ValueError("truth_scores needs the twin variant (data.sm_true is None for real SMAP)")
    sl = sm.period_slice(data, data.test_period)
    train_idx = np.asarray(train_idx, dtype=int)
    rows = []
    for test, idx in (("temporal", train_idx), ("spatial", sm.neighbour_test_cells(data, train_idx))):
        truth, obs = data.sm_true[sl][:, idx], data.obs[sl][:, idx]
        floor = np.sqrt(np.nanmean((obs - truth) ** 2, axis=0))
        for method, run in runs.items():
            sim = sm.simulate_legacy(data, idx, run.params_at(idx, data), data.test_period)["soil_moisture"]
            rows.append(pd.DataFrame({"method": method, "test": test, "site": data.site[idx].astype(str),
                                      "rmse_truth": np.sqrt(np.mean((sim - truth) ** 2, axis=0)),
                                      "rmse_obs": np.sqrt(np.nanmean((sim - obs) ** 2, axis=0)),
                                      "noise_floor": floor}))
    return pd.concat(rows, ignore_index=True)


def identifiability(data: sm.Case1Data, idx, noise_std, params: np.ndarray | None = None, step: float = 0.1,
                    snr_min: float = 2.0) -> pd.DataFrame:
    """Can the training data identify each parameter? At cells ``idx``, each parameter is moved by
    ``step`` (unit cube) below and above its value in ``params [len(idx), 5]`` (default: the twin's true
    parameters; on real SMAP, e.g. SCE-UA's calibrated ones), the others held (clipped to [0, 1]), and
    the VIC-style model's soil moisture over the training period is compared:

    * ``sensitivity``: RMS change of soil moisture per ``2 * step`` of the parameter (m3/m3);
    * ``snr``: ``sensitivity * sqrt(n_obs) / noise_std``, with ``n_obs`` the cell's observed training
      days and ``noise_std`` the observation error (m3/m3; one value or one per cell: the twin's noise,
      or on real data the calibrated fit's residual RMSE): how clearly such a move stands out of the
      noise in the training cost (a
      systematic change ``d`` over ``n`` days with noise ``s`` is detectable when ``sqrt(n) d / s`` is
      a few units);
    * ``share_identifiable``: share of cells with ``snr >= snr_min``.

    Returns a DataFrame indexed by parameter name with the medians over cells of ``sensitivity`` and
    ``snr`` and ``share_identifiable``."""
    idx = np.asarray(idx, dtype=int)
    if params is None and data.params_true is None:
        raise ValueError("identifiability: pass params on real SMAP (its true parameters are unknown)")
    base = np.asarray(data.params_true[idx] if params is None else params, dtype=np.float64)
    if base.shape != (len(idx), len(sm.PARAM_NAMES)):
        raise ValueError(f"identifiability: params must be [{len(idx)}, {len(sm.PARAM_NAMES)}], got {base.shape}")
    sl = sm.period_slice(data, data.train_period)
    n_obs = np.sum(np.isfinite(data.obs[sl][:, idx]), axis=0)
    rows = {}
    for j, name in enumerate(sm.PARAM_NAMES):
        lo, hi = base.copy(), base.copy()
        lo[:, j] = np.clip(base[:, j] - step, 0.0, 1.0)
        hi[:, j] = np.clip(base[:, j] + step, 0.0, 1.0)
        s_lo = sm.simulate_legacy(data, idx, lo, data.train_period)["soil_moisture"]
        s_hi = sm.simulate_legacy(data, idx, hi, data.train_period)["soil_moisture"]
        sens = np.sqrt(np.mean((s_hi - s_lo) ** 2, axis=0)) * (2 * step) / (hi[:, j] - lo[:, j])
        snr = sens * np.sqrt(n_obs) / np.asarray(noise_std, dtype=np.float64)
        rows[name] = {"sensitivity": float(np.median(sens)), "snr": float(np.median(snr)),
                      "share_identifiable": float(np.mean(snr >= snr_min))}
    return pd.DataFrame(rows).T.rename_axis("parameter")


def residual_noise(data: sm.Case1Data, idx, params: np.ndarray) -> np.ndarray:
    """Per cell ``[len(idx)]``: RMSE (m3/m3) of the VIC-style model with ``params [len(idx), 5]``
    against the observations over the training period: the noise level a calibrated fit leaves, the
    ``noise_std`` of :func:`identifiability` on real SMAP."""
    idx = np.asarray(idx, dtype=int)
    sim = sm.simulate_legacy(data, idx, params, data.train_period)["soil_moisture"]
    obs = data.obs[sm.period_slice(data, data.train_period)][:, idx]
    return np.sqrt(np.nanmean((sim - obs) ** 2, axis=0))


def bounds_by_parameter(params: np.ndarray, bound: float = 0.02) -> pd.Series:
    """Share of cells whose unit-cube value of each parameter lies within ``bound`` of 0 or 1."""
    p = np.asarray(params, dtype=np.float64)
    return pd.Series(((p <= bound) | (p >= 1 - bound)).mean(axis=0), index=list(sm.PARAM_NAMES))


def identifiability_table(cfg: sm.Case1Config, data: sm.Case1Data, runs: dict, density: str) -> pd.DataFrame:
    """:func:`identifiability` at ``density``'s training cells, with each method's share of cells at the
    bounds per parameter (``at_bounds_<method>``; ``runs``: method -> run at ``density``). The twin is
    probed at its true parameters with its observation noise; real SMAP at SCE-UA's calibrated
    parameters (``runs["sceua"]``) with the residual RMSE each cell's fit leaves as its noise."""
    idx = sm.training_cells(data, density, cfg, "sceua")
    if data.params_true is not None:
        table = identifiability(data, idx, cfg.twin_noise)
    else:
        p = runs["sceua"].params_at(idx, data)
        table = identifiability(data, idx, residual_noise(data, idx, p), params=p)
    for method, run in runs.items():
        table[f"at_bounds_{method}"] = bounds_by_parameter(run.params_at(idx, data))
    return table
