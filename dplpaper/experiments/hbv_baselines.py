"""The calibrated HBV baselines of Cases 2 and 3: per-basin SCE-UA and transfer-function regionalization.

Both run HBV with one component through NumPy (the fused C kernel) and share
:class:`CandidateRunner`, which evaluates many parameter sets of many basins in one call (and,
differentiably, :meth:`CandidateRunner.torch_costs` for the regionalization's gradient stage).
Each returns a :class:`BaselineRun` (metrics, simulation, parameters, learning curve, wall time).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import xarray as xr

from dplpaper import metrics
from dplpaper.calibrate.regionalization import TransferFunctions, fit_regionalization, refine_regionalization
from dplpaper.calibrate.sceua import sceua
from dplpaper.data.streamflow import (assemble, attribute_matrix, forcing_array, period_index, sim_array,
                                      time_slice)
from dplpaper.experiments.streamflow_dpl import score
from dplpaper.models.hbv import HBV
from dplpaper.nets import Normalizer

__all__ = ["BaselineRun", "CandidateRunner", "hbv_unit_table", "hbv_numpy", "baseline_cost", "run_regionalization",
           "sceua_hbv_search", "run_sceua_hbv"]


def hbv_unit_table(routing: bool = True):
    return HBV(nmul=1, routing=routing, backend="torch").parameter_table


def hbv_numpy(forcing: np.ndarray, params_unit: np.ndarray, warmup: int, routing: bool = True) -> np.ndarray:
    """HBV (one component) forward on NumPy: forcing ``[time, site, 3]``, params ``[site, n]`` unit cube
    -> streamflow ``[time - warmup, site]``. Uses the fused C kernel when available, else the torch loop."""
    table = hbv_unit_table(routing)
    phys = table.to_physical(np.clip(params_unit, 0.0, 1.0), dim=-1)[:, :, None]
    from dplpaper.models import hbv_fused
    if hbv_fused.available():
        return hbv_fused.hbv_forward_numpy(np.ascontiguousarray(forcing, dtype=np.float32), phys, warmup=warmup)
    m = HBV(nmul=1, routing=routing, backend="torch")
    with torch.no_grad():
        return m(torch.from_numpy(np.ascontiguousarray(forcing, dtype=np.float32)),
                 torch.from_numpy(np.clip(params_unit, 0, 1)[:, :, None].astype(np.float32)), warmup=warmup
                 )["streamflow"].numpy()


def baseline_cost(sim: np.ndarray, obs: np.ndarray, objective: str) -> np.ndarray:
    """1 - NSE or 1 - KGE(2012) per column of ``[time, n]`` (reference implementation, :mod:`dplpaper.metrics`)."""
    if objective == "nse":
        return 1.0 - metrics.nse(sim.astype(np.float64), obs.astype(np.float64))
    if objective == "kge":
        return 1.0 - metrics.kge(sim.astype(np.float64), obs.astype(np.float64), variant="2012")
    raise ValueError(f"objective must be 'nse' or 'kge', got {objective!r}")


class CandidateRunner:
    """Fast evaluation of many HBV (one component) parameter sets on fixed basins: the cost
    function of both baselines.

    ``forcing [time, S, 3]`` (with ``warmup`` spin-up days first), ``obs [time - warmup, S]``.
    ``costs(theta [K, S, n_params] unit cube) -> [K, S]`` runs ``chunk`` candidates per C call on a
    forcing tiled once (a last, partial chunk is padded with copies of its last candidate),
    routes with a float32 grouped convolution and computes 1 - NSE or 1 - KGE(2012) with the
    observation statistics precomputed (same definitions as :mod:`dplpaper.metrics`; a basin
    with fewer than 2 observations or zero observed variance gets NaN).
    """

    def __init__(self, forcing: np.ndarray, obs: np.ndarray, warmup: int, objective: str = "nse",
                 routing: bool = True, chunk: int = 8):
        if objective not in ("nse", "kge"):
            raise ValueError(f"objective must be 'nse' or 'kge', got {objective!r}")
        self.T, self.S, _ = forcing.shape
        self.warmup, self.objective, self.routing, self.chunk = int(warmup), objective, routing, int(chunk)
        self.table = hbv_unit_table(routing)
        self.forcing = np.ascontiguousarray(forcing, dtype=np.float32)
        self.tiled = np.ascontiguousarray(np.tile(self.forcing, (1, self.chunk, 1)))  # [T, chunk*S, 3]
        o = np.asarray(obs, dtype=np.float64)
        self.m = ~np.isnan(o)
        self.n = self.m.sum(0)
        self.o = np.where(self.m, o, 0.0)
        with np.errstate(all="ignore"):
            self.mo = self.o.sum(0) / self.n
            self.oc = np.where(self.m, self.o - self.mo, 0.0)
            self.var_o = (self.oc ** 2).sum(0) / self.n
        self.ok = (self.n >= 2) & (self.var_o > 0)

    def simulate(self, theta: np.ndarray) -> np.ndarray:
        """``theta [k, S, n]`` (k <= chunk) -> streamflow ``[time - warmup, k, S]`` (float32)."""
        from dplpaper.models import hbv_fused
        from dplpaper.models.hbv import route, routing_unit_hydrograph
        k = theta.shape[0]
        if k < self.chunk:
            theta = np.concatenate([theta, np.repeat(theta[-1:], self.chunk - k, axis=0)])
        flat = np.clip(theta.reshape(self.chunk * self.S, -1), 0.0, 1.0)
        phys = self.table.to_physical(flat, dim=-1)
        if not hbv_fused.available():
            q = hbv_numpy(self.tiled, flat, self.warmup, self.routing)
        else:
            q = hbv_fused.hbv_forward_numpy(self.tiled, phys[:, :, None], warmup=0,
                                            return_unrouted=True)
            if self.routing:
                uh = routing_unit_hydrograph(torch.from_numpy(phys[:, -2]), torch.from_numpy(phys[:, -1])).float()
                q = route(torch.from_numpy(q), uh).numpy()
            q = q[self.warmup:]
        return q.reshape(q.shape[0], self.chunk, self.S)[:, :k]

    def costs(self, theta: np.ndarray) -> np.ndarray:
        K = theta.shape[0]
        out = np.empty((K, self.S))
        for lo in range(0, K, self.chunk):
            sim = self.simulate(theta[lo:lo + self.chunk]).astype(np.float64)  # [T, k, S]
            out[lo:lo + sim.shape[1]] = self.baseline_cost(sim)
        return out

    def baseline_cost(self, sim: np.ndarray) -> np.ndarray:
        m = self.m[:, None, :]
        with np.errstate(all="ignore"):
            if self.objective == "nse":
                sse = (np.where(m, sim - self.o[:, None, :], 0.0) ** 2).sum(0)
                c = sse / (self.n * self.var_o)
            else:
                ms = np.where(m, sim, 0.0).sum(0) / self.n
                sc = np.where(m, sim - ms, 0.0)
                var_s = (sc ** 2).sum(0) / self.n
                cov = (sc * self.oc[:, None, :]).sum(0) / self.n
                sd_s, sd_o = np.sqrt(var_s), np.sqrt(self.var_o)
                r = cov / (sd_s * sd_o)
                beta = ms / self.mo
                gamma = (sd_s / ms) / (sd_o / self.mo)
                c = np.sqrt((r - 1) ** 2 + (beta - 1) ** 2 + (gamma - 1) ** 2)
        return np.where(self.ok[None, :] & np.isfinite(c), c, np.nan)

    def torch_costs(self, theta: torch.Tensor) -> torch.Tensor:
        """Differentiable :meth:`costs` of one candidate: ``theta [S, n_params]`` (unit cube, any float
        dtype) -> ``[S]`` float64, NaN where :meth:`costs` gives NaN. HBV runs on its fused kernel
        (float32), the cost in float64 with the same definitions; the denominators of basins without
        usable observations are made safe so that their (masked) gradient is zero, not NaN. As in
        dPL training, the warm-up runs without gradient: the gradient leaves out the parameters'
        effect on the initial states."""
        if not hasattr(self, "_torch"):  # built once: the refinement calls this every gradient step
            self._torch = {"model": HBV(nmul=1, routing=self.routing), "forcing": torch.from_numpy(self.forcing),
                           "ok": torch.from_numpy(self.ok), "m": torch.from_numpy(self.m),
                           "n": torch.from_numpy(np.where(self.ok, self.n, 1).astype(np.float64)),
                           "o": torch.from_numpy(self.o), "oc": torch.from_numpy(self.oc),
                           "var_o": torch.from_numpy(np.where(self.ok, self.var_o, 1.0)),
                           "mo": torch.from_numpy(np.where(self.ok, self.mo, 1.0))}
        tt = self._torch
        sim = tt["model"](tt["forcing"], theta.to(torch.float32)[:, :, None],
                          warmup=self.warmup)["streamflow"].to(torch.float64)  # [T - warmup, S]
        ok, m, n, o, var_o = tt["ok"], tt["m"], tt["n"], tt["o"], tt["var_o"]
        zero = sim.new_zeros(())
        if self.objective == "nse":
            c = (torch.where(m, sim - o, zero) ** 2).sum(0) / (n * var_o)
        else:
            mo = tt["mo"]
            ms = torch.where(m, sim, zero).sum(0) / n
            sc = torch.where(m, sim - ms, zero)
            sd_s = ((sc ** 2).sum(0) / n + 1e-20).sqrt()  # + 1e-20: a flat simulation has a finite gradient
            cov = (sc * tt["oc"]).sum(0) / n
            sd_o = var_o.sqrt()
            r = cov / (sd_s * sd_o)
            c = ((r - 1) ** 2 + (ms / mo - 1) ** 2 + ((sd_s / ms.clamp_min(1e-10)) / (sd_o / mo) - 1) ** 2).sqrt()
        return torch.where(ok & torch.isfinite(c), c, torch.full_like(c, float("nan")))


@dataclass
class BaselineRun:
    """Outcome of :func:`run_regionalization` / :func:`run_sceua_hbv`: per-basin test metrics,
    test-period simulation, the calibrated unit-cube parameters ``[site, n_params]``, the fitted
    transfer functions (regionalization only), the SCE-UA learning curve, wall time."""

    metrics: pd.DataFrame
    simulation: xr.DataArray
    parameters: np.ndarray
    transfer_functions: TransferFunctions | None
    learning_curve: pd.DataFrame
    wall_time_s: float


def run_regionalization(ds: xr.Dataset, attrs: xr.Dataset, train_basins: Sequence[str], test_basins: Sequence[str],
                        train_period: tuple[str, str], test_period: tuple[str, str], attribute_names: Sequence[str],
                        max_evals: int = 5000, n_complexes: int = 7, objective: str = "nse", seed: int = 0,
                        warmup_days: int = 365, routing: bool = True, chunk: int = 8,
                        progress: bool = False, refine_steps: int = 0, refine_lr: float = 0.05,
                        refine_max_steps: int | None = None) -> BaselineRun:
    """Transfer-function regionalization of HBV (one component): coefficients shared by all
    training basins, fitted with SCE-UA on the mean over training basins of ``1 - NSE`` (or
    ``1 - KGE``) over ``train_period``; then applied to ``test_basins`` over ``test_period``.
    Attributes with NaN are filled with the training basins' mean. ``chunk`` candidate
    coefficient sets run in one model call.

    ``refine_steps > 0``: the SCE-UA result is then refined by ``refine_steps`` full-batch gradient
    steps on the same objective (:func:`~dplpaper.calibrate.regionalization.refine_regionalization`,
    Adam, step ``refine_lr``). The learning curve then has a ``stage`` column (``"sceua"``, then
    ``"gradient"``, whose ``epoch`` counts on from the SCE-UA evaluations, one per step) and the
    convergence check (:func:`~dplpaper.calibrate.sceua.budget_convergence`) judges the last stage.
    ``refine_max_steps``: refine to convergence, up to this many steps (see ``max_steps`` of
    :func:`~dplpaper.calibrate.regionalization.refine_regionalization`)."""
    t0 = time.perf_counter()
    train_basins, test_basins = [str(b) for b in train_basins], [str(b) for b in test_basins]
    table = hbv_unit_table(routing)
    n_par = len(table)
    norm = Normalizer(names=list(attribute_names))  # only for assemble's shape; TF standardizes itself
    a_train = attribute_matrix(attrs, train_basins, attribute_names, fill_basins=train_basins)
    a_test = attribute_matrix(attrs, test_basins, attribute_names, fill_basins=train_basins)
    norm.mean, norm.std = np.zeros(len(attribute_names)), np.ones(len(attribute_names))
    tr = assemble(ds, attrs, train_basins, train_period, attribute_names, norm, warmup_days, fill_basins=train_basins)
    f_tr = tr.forcing.numpy()
    obs_tr = tr.target[warmup_days:].numpy()
    runner = CandidateRunner(f_tr, obs_tr, warmup_days, objective, routing, chunk)

    def site_objective(theta: np.ndarray) -> np.ndarray:  # [K, S, n] -> [K, S]
        c = runner.costs(theta)
        return np.where(np.isnan(c), 0.0, c)  # basins without usable training data do not count

    tf = fit_regionalization(a_train, site_objective, n_par, seed=seed, max_evals=max_evals,
                             candidates_batched=True, n_complexes=n_complexes, progress=progress,
                             attribute_names=list(attribute_names), param_names=table.names)
    lc = tf.fit_result.learning_curve()
    if refine_steps > 0:
        def site_loss(theta: torch.Tensor) -> torch.Tensor:  # the SCE-UA objective's site costs, differentiable
            return torch.nan_to_num(runner.torch_costs(theta), nan=0.0)

        refine_regionalization(tf, a_train, site_loss, steps=refine_steps, lr=refine_lr, progress=progress,
                               max_steps=refine_max_steps)
        rc = tf.refine_curve
        lc = pd.concat([lc.assign(stage="sceua"), pd.DataFrame({"loop": rc["step"] + len(lc), "epoch": lc["epoch"].iloc[-1] + rc["step"],
                                          "best_cost_mean": rc["best_cost"], "best_cost_median": rc["best_cost"],
                                          "n_active": 1, "stage": "gradient"})], ignore_index=True)
    theta_test = tf.predict(a_test)
    te = assemble(ds, attrs, test_basins, test_period, attribute_names, norm, warmup_days, fill_basins=train_basins)
    sim = hbv_numpy(te.forcing.numpy(), theta_test, warmup_days, routing)
    obs = te.target[warmup_days:].numpy()
    times = period_index(ds, test_period, warmup_days)
    return BaselineRun(metrics=score(sim, obs, test_basins), simulation=sim_array(sim, test_basins, times, "regionalization"),
                       parameters=theta_test, transfer_functions=tf, learning_curve=lc,
                       wall_time_s=time.perf_counter() - t0)


def sceua_hbv_search(ds: xr.Dataset, basins: Sequence[str], train_period: tuple[str, str], max_evals: int,
                     n_complexes: int = 7, objective: str = "nse", seed: int = 0, warmup_days: int = 365,
                     routing: bool = True, chunk: int = 8, max_batch: int = 64, keep_param_history: bool = False,
                     x0: np.ndarray | None = None, progress: bool = False):
    """The per-basin SCE-UA search of HBV (one component) on ``train_period``, all basins in lockstep
    (:func:`dplpaper.calibrate.sceua.sceua`): the one search behind :func:`run_sceua_hbv` and the
    learning curve of :func:`dplpaper.experiments.methods.sceua_curve`. The objective runs ``chunk``
    candidates of every basin per model call through :class:`CandidateRunner` (memory: the training
    forcing tiled ``chunk`` times); NaN costs count as infinite. Returns the ``SCEUAResult``."""
    basins = [str(b) for b in basins]
    start, end = time_slice(ds, train_period, warmup_days)
    sub = ds.sel(site=basins, time=slice(start, end))
    runner = CandidateRunner(forcing_array(sub), sub["streamflow"].transpose("time", "site").values[warmup_days:],
                             warmup_days, objective, routing, chunk)

    def objective_fn(u: np.ndarray) -> np.ndarray:  # [S, K, n] -> [S, K]
        c = runner.costs(np.ascontiguousarray(u.transpose(1, 0, 2))).T
        return np.where(np.isnan(c), np.inf, c)

    return sceua(objective_fn, len(hbv_unit_table(routing)), n_sites=len(basins), n_complexes=n_complexes,
                 max_evals=max_evals, seed=seed, progress=progress, max_batch=max_batch,
                 keep_param_history=keep_param_history, x0=x0)


def run_sceua_hbv(ds: xr.Dataset, basins: Sequence[str], train_period: tuple[str, str], test_period: tuple[str, str],
                  max_evals: int = 10000, n_complexes: int = 7, objective: str = "nse", seed: int = 0,
                  warmup_days: int = 365, routing: bool = True, chunk: int = 8, max_batch: int = 64,
                  progress: bool = False) -> BaselineRun:
    """Per-basin SCE-UA calibration of HBV (one component) on ``train_period``
    (:func:`sceua_hbv_search`); evaluated on ``test_period``."""
    t0 = time.perf_counter()
    basins = [str(b) for b in basins]
    res = sceua_hbv_search(ds, basins, train_period, max_evals, n_complexes, objective, seed, warmup_days, routing,
                           chunk, max_batch, progress=progress)
    s2, e2 = time_slice(ds, test_period, warmup_days)
    te = ds.sel(site=basins, time=slice(s2, e2))
    f_te = forcing_array(te)
    sim = hbv_numpy(f_te, res.best_params, warmup_days, routing)
    obs = te["streamflow"].transpose("time", "site").values[warmup_days:]
    times = period_index(ds, test_period, warmup_days)
    return BaselineRun(metrics=score(sim, obs, basins), simulation=sim_array(sim, basins, times, "SCE-UA"),
                       parameters=res.best_params, transfer_functions=None, learning_curve=res.learning_curve(),
                       wall_time_s=time.perf_counter() - t0)
