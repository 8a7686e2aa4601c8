"""The learned streamflow methods: dPL (gA or dynamic parameters + differentiable HBV) and the LSTM baseline.

Each ``run_*`` trains on ``train_basins`` over ``train_period`` and returns a :class:`DPLRun`
(per-basin test metrics, test simulation, learning curve, parameters, model, wall time) for
``test_basins`` over ``test_period`` — the same record for Case 2 (same basins, other years) and
Case 3 (other basins).
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
from dplpaper.data.streamflow import (FORCING_VARS, assemble, fit_attribute_normalizer, period_index, sim_array)
from dplpaper.experiments.configs import DPLSettings, LSTMSettings, TrainerSettings
from dplpaper.models.hbv import HBV
from dplpaper.nets import GA, DPLModel, GDynamic, Normalizer
from dplpaper.train import TrainingData, predict, predict_parameters, train_dpl

__all__ = ["DPLRun", "build_dpl_model", "forcing_normalizer", "with_forcing_series", "score", "run_dpl_hbv",
           "run_lstm"]


def score(sim: np.ndarray, obs: np.ndarray, basins: Sequence[str]) -> pd.DataFrame:
    """Per-basin NSE and KGE (2012 form) of ``sim``/``obs`` ``[time, site]`` -> DataFrame (site, nse, kge, n_obs)."""
    sim = np.asarray(sim, dtype=np.float64)
    obs = np.asarray(obs, dtype=np.float64)
    return pd.DataFrame({"site": list(basins), "nse": metrics.nse(sim, obs), "kge": metrics.kge(sim, obs, variant="2012"),
                         "n_obs": (~np.isnan(obs)).sum(0)})



def build_dpl_model(n_attributes: int, settings: DPLSettings, seed: int = 0, backend: str = "auto") -> DPLModel:
    """The dPL model of ``settings.net`` (seeded with ``torch.manual_seed(seed)``) feeding HBV(nmul, routing).

    ``"ga"``: :class:`GA` on the attributes, static parameters. ``"dynamic"``:
    :class:`dplpaper.nets.GDynamic` reading the normalized forcing (``len(FORCING_VARS)`` channels)
    and the attributes; ``settings.dynamic_params`` (names in HBV's table; BETAET switches HBV's
    ET shape parameter on) vary in time, the rest are static.
    """
    use_betaet = settings.use_betaet or (settings.net == "dynamic" and "BETAET" in settings.dynamic_params)
    pbm = HBV(nmul=settings.nmul, routing=settings.routing, use_betaet=use_betaet, backend=backend)
    torch.manual_seed(int(seed))
    if settings.net == "dynamic":
        table = pbm.parameter_table
        unknown = [n for n in settings.dynamic_params if n not in table.names]
        if unknown:
            raise ValueError(f"dynamic_params {unknown} are not HBV parameters {table.names}")
        # compact parameters (only the dynamic rows day by day) and no LSTM backward through the
        # training windows' warm-up, which gets no gradient from HBV anyway: ~2.5x faster training
        net = GDynamic(len(FORCING_VARS), n_attributes, pbm.n_params, pbm.nmul,
                       dynamic=[table.index(n) for n in settings.dynamic_params], hidden=settings.lstm_hidden,
                       static_hidden=settings.hidden, static_layers=settings.n_layers, dropout=settings.dropout,
                       compact=True, no_grad_days=settings.warmup_days)
    else:
        net = GA(n_attributes, pbm.n_params, pbm.nmul, hidden=settings.hidden, n_layers=settings.n_layers,
                 dropout=settings.dropout)
    return DPLModel(net, pbm)


def forcing_normalizer(train: TrainingData) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation ``[n_forcing]`` of the training forcing tensor
    (training basins and period only; used to normalize the LSTM inputs of every split)."""
    f = train.forcing.double()
    mean = f.mean(dim=(0, 1)).numpy()
    std = f.std(dim=(0, 1)).numpy()
    if not np.all(std > 0):
        raise ValueError(f"forcing channels {list(np.flatnonzero(~(std > 0)))} are constant over the training data")
    return mean, std


def with_forcing_series(data: TrainingData, mean: np.ndarray, std: np.ndarray) -> TrainingData:
    """``data`` with ``series`` = its forcing standardized by ``(mean, std)`` (the LSTM input)."""
    ser = ((data.forcing.double() - torch.from_numpy(mean)) / torch.from_numpy(std)).float()
    return TrainingData(data.forcing, data.attributes, data.target, ser, data.target_name, data.site_ids)


@dataclass
class DPLRun:
    """Outcome of :func:`run_dpl_hbv`.

    Attributes:
        metrics: per test basin ``site, nse, kge, n_obs`` (test period).
        simulation: test-period streamflow ``(site, time)`` mm/day.
        history: the trainer's learning curve (with ``test_median_nse`` when evaluated).
        parameters: unit-cube parameters of the test basins ``[site, n_params, nmul]``.
        model, normalizer: the trained model and the attribute normalizer (training basins).
        wall_time_s: training + prediction time.
    """

    metrics: pd.DataFrame
    simulation: xr.DataArray
    history: pd.DataFrame
    parameters: np.ndarray
    model: DPLModel
    normalizer: Normalizer
    wall_time_s: float


def _train_test_tensors(ds, attrs, train_basins, test_basins, train_period, test_period, attribute_names,
                        warmup_days, series: bool):
    """Training and test :class:`TrainingData` (attributes normalized on the training basins; with
    ``series``, the forcing standardized with the training data's statistics as the LSTM input)."""
    norm = fit_attribute_normalizer(attrs, train_basins, attribute_names)
    train = assemble(ds, attrs, train_basins, train_period, attribute_names, norm, warmup_days, fill_basins=train_basins)
    test = assemble(ds, attrs, test_basins, test_period, attribute_names, norm, warmup_days, fill_basins=train_basins)
    if series:
        mean, std = forcing_normalizer(train)
        train, test = with_forcing_series(train, mean, std), with_forcing_series(test, mean, std)
    return train, test, norm


def _fit_and_simulate(model, train: TrainingData, test: TrainingData, settings: TrainerSettings, seed: int,
                      warmup_days: int, progress: bool):
    """Train ``model`` (median test NSE every ``eval_every`` epochs when > 0); return the trainer's
    result, the test simulation ``[time, site]`` and the test observations."""
    obs_test = test.target[warmup_days:].numpy()

    def simulate(m):
        return predict(m, test, warmup_days=warmup_days, outputs=("streamflow",),
                       device=settings.device)["streamflow"].numpy()

    eval_fn = None
    if settings.eval_every > 0:
        def eval_fn(m):
            q = simulate(m)
            return {"test_median_nse": float(np.nanmedian(metrics.nse(q.astype(np.float64), obs_test)))}
    res = train_dpl(model, train, settings.train_config(seed, progress), eval_fn=eval_fn)
    return res, simulate(res.model), obs_test


def run_dpl_hbv(ds: xr.Dataset, attrs: xr.Dataset, train_basins: Sequence[str], test_basins: Sequence[str],
                train_period: tuple[str, str], test_period: tuple[str, str], attribute_names: Sequence[str],
                settings: DPLSettings, seed: int = 0, warmup_days: int = 365, progress: bool = False) -> DPLRun:
    """Train gA (or :class:`GDynamic`) + HBV on ``train_basins`` x ``train_period``; simulate
    ``test_basins`` x ``test_period``.

    The attribute normalizer is fitted on ``train_basins`` only; the training tensors span
    ``warmup_days`` before the training period (forcing only) plus the period. With
    ``settings.eval_every > 0`` the median test NSE is recorded during training.
    """
    t0 = time.perf_counter()
    train_basins, test_basins = [str(b) for b in train_basins], [str(b) for b in test_basins]
    model = build_dpl_model(len(attribute_names), settings, seed)
    if settings.net_device:
        model.pin_net(settings.net_device)
    train, test, norm = _train_test_tensors(ds, attrs, train_basins, test_basins, train_period, test_period,
                                            attribute_names, warmup_days, series="series" in model.inputs)
    res, sim, obs_test = _fit_and_simulate(model, train, test, settings, seed, warmup_days, progress)
    params = predict_parameters(res.model, test).numpy()
    if params.ndim == 4:  # dynamic: keep the time mean of every parameter (the series are in the simulation)
        params = params.mean(axis=0)
    times = period_index(ds, test_period, warmup_days)
    return DPLRun(metrics=score(sim, obs_test, test_basins), simulation=sim_array(sim, test_basins, times, "dPL"),
                  history=res.history, parameters=params, model=res.model, normalizer=norm,
                  wall_time_s=time.perf_counter() - t0)


def run_lstm(ds: xr.Dataset, attrs: xr.Dataset, train_basins: Sequence[str], test_basins: Sequence[str],
             train_period: tuple[str, str], test_period: tuple[str, str], attribute_names: Sequence[str],
             settings: LSTMSettings, seed: int = 0, warmup_days: int = 365, progress: bool = False) -> DPLRun:
    """Train the LSTM streamflow baseline on ``train_basins`` x ``train_period`` (same trainer, loss,
    windows and warm-up as dPL); simulate ``test_basins`` x ``test_period``. Inputs: the forcing
    standardized with the training data's statistics and the normalized attributes."""
    from dplpaper.models.lstm import LSTMStreamflow
    t0 = time.perf_counter()
    train_basins, test_basins = [str(b) for b in train_basins], [str(b) for b in test_basins]
    train, test, norm = _train_test_tensors(ds, attrs, train_basins, test_basins, train_period, test_period,
                                            attribute_names, warmup_days, series=True)
    q_scale = float(np.nanmean(train.target.numpy()))
    torch.manual_seed(int(seed))
    model = LSTMStreamflow(len(FORCING_VARS), len(attribute_names), hidden=settings.hidden,
                           dropout=settings.dropout, q_scale=q_scale)
    res, sim, obs_test = _fit_and_simulate(model, train, test, settings, seed, warmup_days, progress)
    times = period_index(ds, test_period, warmup_days)
    return DPLRun(metrics=score(sim, obs_test, test_basins), simulation=sim_array(sim, test_basins, times, "LSTM"),
                  history=res.history, parameters=np.zeros((len(test_basins), 0, 1), np.float32), model=res.model,
                  normalizer=norm, wall_time_s=time.perf_counter() - t0)
