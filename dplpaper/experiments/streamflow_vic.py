"""Case 2 in the paper's own configuration: gZ -> VIC-style model (through its LSTM surrogate) -> routing.

Tsai et al. (2021) learned VIC's parameters for the CAMELS basins with the gZ network (static
attributes plus forcing and streamflow series) through an LSTM *surrogate* of VIC, because VIC is a
legacy code that autograd cannot see, and reported a median test NSE of about 0.44 (Figure 5a).
Here the legacy model is the VIC-style NumPy model :class:`dplpaper.models.vicwb.VICStyleModel`
(five parameters: INFILT, Dsmax, Ds, Ws, EXPT) and the chain is

1. **surrogate training set**: the VIC-style model run on every basin's ERA5-Land forcing over
   the *training* period (one spin-up year before it) for ``sur_param_sets`` Latin-hypercube
   parameter sets, each basin's soil from its CAMELS texture (``sand_frac``, ``clay_frac``,
   ``silt_frac``, %); the total runoff (surface runoff + baseflow, mm/day) is kept. No
   streamflow observation enters, and the test period's forcing is never seen;
2. **surrogate**: an :class:`~dplpaper.models.surrogate.LSTMSurrogate` (forcing + texture +
   parameters -> runoff), frozen after training; its accuracy is measured against the legacy
   model on the *test* period with fresh parameter sets (:func:`surrogate_accuracy`);
3. **dPL**: ``params = gZ(series, attributes)``; runoff = surrogate(forcing, params[:5]);
   streamflow = gamma unit hydrograph (ROUTA, ROUTB, as in :mod:`dplpaper.models.hbv`) applied
   to the runoff — :class:`RoutedRunoffSurrogate`. gZ reads precipitation, temperature, PET and
   the observed streamflow (log-transformed, gaps masked) of the training period, plus the static
   attributes; the test period is simulated with the parameters gZ infers from the training
   period's series (never from test-period observations). The observations of the spin-up year
   before the training period are masked from gZ: that year belongs to the test period;
4. **check in the legacy model** (beyond the paper): the learned parameters are also run in the
   VIC-style NumPy model itself (with the same routing), so the reader sees whether a surrogate
   score is the legacy model's score;
5. **classical reference on the same model** (beyond the paper): SCE-UA per basin calibrating the
   VIC-style NumPy model directly (no surrogate, :func:`run_sceua_vic`), which shows what the
   model structure reaches when calibrated basin by basin.

Caching: the trained surrogate is saved under ``results/case2/`` keyed by a hash of its
settings and basins (:func:`get_surrogate`); delete the file to retrain.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import xarray as xr

from dplpaper import metrics
from dplpaper.calibrate.sceua import pairwise_objective, sceua
from dplpaper.data.streamflow import (assemble, fit_attribute_normalizer, forcing_array, period_index, sim_array,
                                      time_slice)
from dplpaper.experiments.configs import VICSettings
from dplpaper.experiments.hbv_baselines import BaselineRun
from dplpaper.experiments.streamflow_dpl import DPLRun, score
from dplpaper.models.base import ParameterTable, ProcessModel
from dplpaper.models.hbv import hbv_parameter_table, route, routing_unit_hydrograph
from dplpaper.models.surrogate import LSTMSurrogate, evaluate_surrogate, latin_hypercube, make_surrogate_training_set, train_surrogate
from dplpaper.models.vicwb import PARAMETER_TABLE as VIC_TABLE
from dplpaper.models.vicwb import VICStyleModel
from dplpaper.nets import GA, GZ, DPLModel, Normalizer
from dplpaper.results import results_dir
from dplpaper.train import TrainingData, predict, predict_parameters, train_dpl

__all__ = ["TEXTURE_ATTRIBUTES", "ROUTED_VIC_TABLE", "VICSettings", "RoutedRunoffSurrogate", "texture",
           "surrogate_training_set", "get_surrogate", "surrogate_accuracy", "legacy_streamflow", "run_dpl_vic",
           "run_sceua_vic"]

#: CAMELS columns (percent) that set the VIC-style soil: model key -> CAMELS attribute.
TEXTURE_ATTRIBUTES = {"sand": "sand_frac", "clay": "clay_frac", "silt": "silt_frac"}

#: The five VIC parameters, then the two routing parameters of HBV's table (ROUTA, ROUTB).
ROUTED_VIC_TABLE = ParameterTable(list(VIC_TABLE) + [s for s in hbv_parameter_table(True, False) if s.name in ("ROUTA", "ROUTB")])
N_VIC = len(VIC_TABLE)


class RoutedRunoffSurrogate(ProcessModel):
    """The frozen runoff surrogate plus gamma unit-hydrograph routing, as a :class:`ProcessModel`.

    Forcing ``[time, site, 6]``: ``precip`` (mm/d), ``temp`` (degC), ``pet`` (mm/d) and the soil
    texture ``sand``, ``clay``, ``silt`` (%, constant in time: the surrogate needs each basin's
    texture, and :class:`~dplpaper.nets.DPLModel` passes only forcing and parameters).
    Parameters: unit cube ``[site, 7(, 1)]`` in the order of :data:`ROUTED_VIC_TABLE`.
    Outputs ``[time - warmup, site]`` mm/day: ``runoff`` (surrogate, clipped at 0) and
    ``streamflow`` (routed runoff; routing runs over the warm-up days too).
    """

    nmul = 1
    parameter_table = ROUTED_VIC_TABLE
    forcing_names = ("precip", "temp", "pet", "sand", "clay", "silt")

    def __init__(self, surrogate: LSTMSurrogate):
        super().__init__()
        if tuple(surrogate.outputs) != ("runoff",):
            raise ValueError(f"RoutedRunoffSurrogate needs a surrogate of ('runoff',), got {surrogate.outputs}")
        if surrogate.n_attr != 3:
            raise ValueError(f"the surrogate must take the 3 texture attributes (sand, clay, silt), has {surrogate.n_attr}")
        self.surrogate = surrogate

    def forward(self, forcing: torch.Tensor, params: torch.Tensor, warmup: int = 0) -> dict[str, torch.Tensor]:
        if params.ndim == 3:
            if params.shape[-1] != 1:
                raise ValueError(f"RoutedRunoffSurrogate has nmul=1; got params of shape {tuple(params.shape)}")
            params = params[..., 0]
        if params.ndim != 2 or params.shape[1] != self.n_params:
            raise ValueError(f"params must be [site, {self.n_params}(, 1)], got {tuple(params.shape)}")
        runoff = self.surrogate(forcing[..., :3], params[:, :N_VIC], warmup=0, attributes=forcing[0, :, 3:])["runoff"]
        runoff = torch.clamp(runoff, min=0.0)
        phys = self.parameter_table.to_physical(params, dim=-1)
        uh = routing_unit_hydrograph(phys[:, N_VIC], phys[:, N_VIC + 1])
        q = route(runoff, uh.to(runoff.dtype))
        return {"streamflow": q[warmup:], "runoff": runoff[warmup:]}


# ============================================================================ data
def texture(attrs: xr.Dataset, basins: Sequence[str]) -> dict[str, np.ndarray]:
    """Soil texture of ``basins`` for the VIC-style model: ``{"sand", "clay", "silt"}`` -> ``[site]`` (%).
    Raises naming the basin and attribute when a value is missing or outside 0-100."""
    out = {}
    for key, col in TEXTURE_ATTRIBUTES.items():
        if col not in attrs:
            raise KeyError(f"CAMELS attributes lack {col!r} (soil texture of the VIC-style model)")
        v = attrs[col].sel(site=list(basins)).values.astype(np.float64)
        bad = ~np.isfinite(v) | (v < 0) | (v > 100)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"basin {basins[i]}: attribute {col} = {v[i]} is missing or outside 0-100 %")
        out[key] = v
    return out


def _forcing_with_texture(forcing: np.ndarray | torch.Tensor, tex: dict[str, np.ndarray]) -> torch.Tensor:
    """``[time, site, 3]`` forcing + texture channels -> ``[time, site, 6]`` float32 tensor."""
    f = torch.as_tensor(forcing, dtype=torch.float32)
    t = torch.as_tensor(np.stack([tex["sand"], tex["clay"], tex["silt"]], 1), dtype=torch.float32)
    return torch.cat([f, t.unsqueeze(0).expand(f.shape[0], -1, -1)], dim=-1).contiguous()


def surrogate_training_set(ds: xr.Dataset, attrs: xr.Dataset, basins: Sequence[str], period: tuple[str, str],
                           settings: VICSettings, spinup_days: int = 365) -> dict:
    """Legacy (VIC-style) runoff for LHS parameter sets x ``basins`` over ``period``, the model
    spun up over the ``spinup_days`` before it (dropped). See
    :func:`dplpaper.models.surrogate.make_surrogate_training_set` for the returned dict."""
    basins = [str(b) for b in basins]
    start, end = time_slice(ds, period, spinup_days)
    f = forcing_array(ds.sel(site=basins, time=slice(start, end))).astype(np.float64)
    tex = texture(attrs, basins)
    P = latin_hypercube(settings.sur_param_sets, N_VIC, seed=settings.sur_seed)
    return make_surrogate_training_set(VICStyleModel(), f, tex, params=P, outputs=("runoff",), spinup=spinup_days,
                                       sets_per_run=4)


def surrogate_path(settings: VICSettings, basins: Sequence[str], period: tuple[str, str], mode: str) -> Path:
    return results_dir("case2") / f"vic_runoff_surrogate_{mode}_{settings.surrogate_key(basins, period)}.pt"


def get_surrogate(ds: xr.Dataset, attrs: xr.Dataset, basins: Sequence[str], period: tuple[str, str],
                  settings: VICSettings, mode: str = "quick", progress: bool = False) -> LSTMSurrogate:
    """The trained runoff surrogate (cached under ``results/case2``; trained when absent)."""
    path = surrogate_path(settings, basins, period, mode)
    if settings.use_cache and path.exists():
        return LSTMSurrogate.load(path)
    dset = surrogate_training_set(ds, attrs, basins, period, settings)
    sur = train_surrogate(dset, outputs=("runoff",), hidden=settings.sur_hidden, epochs=1,
                          iters_per_epoch=settings.sur_iters, batch=settings.sur_batch,
                          seq_len=settings.sur_seq_len, warmup=settings.sur_warmup, lr=settings.sur_lr,
                          seed=settings.sur_seed, progress=progress)
    sur.save(path)
    return sur


def surrogate_accuracy(surrogate: LSTMSurrogate, ds: xr.Dataset, attrs: xr.Dataset, basins: Sequence[str],
                       period: tuple[str, str], settings: VICSettings, spinup_days: int = 365) -> pd.DataFrame:
    """Surrogate vs legacy runoff over ``period`` (use the *test* period: unseen in training) for
    ``settings.sur_eval_sets`` fresh LHS parameter sets. The legacy model is spun up over the
    ``spinup_days`` before the period, the surrogate's LSTM over the same days; both are compared
    on the period itself. Returns one row per (set, basin): ``site, set, corr, nse, rmse``."""
    basins = [str(b) for b in basins]
    start, end = time_slice(ds, period, spinup_days)
    f = forcing_array(ds.sel(site=basins, time=slice(start, end))).astype(np.float64)
    tex = texture(attrs, basins)
    P = latin_hypercube(settings.sur_eval_sets, N_VIC, seed=settings.sur_seed + 1000)
    params = np.broadcast_to(P[:, None, :], (len(P), len(basins), N_VIC))
    res = evaluate_surrogate(surrogate, VICStyleModel(), f, tex, params, warmup=spinup_days)["runoff"]
    leg = res["legacy"].transpose(1, 0, 2).reshape(res["legacy"].shape[1], -1)       # [time, set*site]
    sur = res["surrogate"].transpose(1, 0, 2).reshape(leg.shape[0], -1)
    n_set = len(P)
    return pd.DataFrame({"site": np.tile(basins, n_set), "set": np.repeat(np.arange(n_set), len(basins)),
                         "corr": res["corr"], "nse": metrics.nse(sur, leg), "rmse": res["rmse"]})


def legacy_streamflow(forcing: np.ndarray, tex: dict[str, np.ndarray], params_unit: np.ndarray,
                      warmup: int = 0) -> np.ndarray:
    """The VIC-style NumPy model itself plus the same routing: forcing ``[time, site, 3]``,
    unit-cube ``params_unit [site, 7]`` (:data:`ROUTED_VIC_TABLE`) -> streamflow ``[time - warmup, site]``."""
    p = np.clip(np.asarray(params_unit, dtype=np.float64), 0.0, 1.0)
    runoff = VICStyleModel().run(np.asarray(forcing, dtype=np.float64), p[:, :N_VIC], warmup=0, soil_properties=tex)["runoff"]
    phys = ROUTED_VIC_TABLE.to_physical(p, dim=-1)
    uh = routing_unit_hydrograph(torch.from_numpy(phys[:, N_VIC]), torch.from_numpy(phys[:, N_VIC + 1]))
    q = route(torch.from_numpy(runoff), uh).numpy()
    return q[warmup:]


# ============================================================================ dPL through the surrogate
def _series(data: TrainingData, normalizer: Normalizer | None = None) -> tuple[torch.Tensor, Normalizer]:
    """gZ input ``[time, site, 4]``: precip, temp, pet, observed streamflow (NaN = gap / masked),
    standardized (log for precip and flow) with ``normalizer`` (fitted here when None)."""
    raw = torch.cat([data.forcing[..., :3], data.target.unsqueeze(-1)], dim=-1).double().numpy()
    if normalizer is None:
        normalizer = Normalizer(log_features=[0, 3], names=["precip", "temp", "pet", "streamflow"]).fit(raw)
    return torch.as_tensor(normalizer.transform(raw), dtype=torch.float32), normalizer


def run_dpl_vic(ds: xr.Dataset, attrs: xr.Dataset, basins: Sequence[str], train_period: tuple[str, str],
                test_period: tuple[str, str], settings: VICSettings, surrogate: LSTMSurrogate, seed: int = 0,
                warmup_days: int = 365, progress: bool = False) -> tuple[DPLRun, pd.DataFrame]:
    """Train gZ (or gA, ``settings.net``) through :class:`RoutedRunoffSurrogate` on ``basins`` x
    ``train_period``; simulate the same basins over ``test_period`` (temporal generalization).

    Returns ``(run, legacy_metrics)``: ``run`` holds the surrogate's test metrics, simulation,
    learning curve (median test NSE every ``eval_every`` epochs) and the unit-cube parameters
    ``[site, 7, 1]``; ``legacy_metrics`` scores the same parameters run in the VIC-style model
    itself (``site, nse, kge, n_obs``).
    """
    if settings.net not in ("gz", "ga"):
        raise ValueError(f"VICSettings.net must be 'gz' or 'ga', got {settings.net!r}")
    t0 = time.perf_counter()
    basins = [str(b) for b in basins]
    names = list(settings.attributes)
    norm = fit_attribute_normalizer(attrs, basins, names)
    tr = assemble(ds, attrs, basins, train_period, names, norm, warmup_days)
    te = assemble(ds, attrs, basins, test_period, names, norm, warmup_days)
    tex = texture(attrs, basins)
    series_tr, s_norm = _series(tr)  # the spin-up year's flow is NaN (it belongs to the test period)
    train = TrainingData(forcing=_forcing_with_texture(tr.forcing, tex), attributes=tr.attributes, target=tr.target,
                         series=series_tr if settings.net == "gz" else None, site_ids=basins)
    test = TrainingData(forcing=_forcing_with_texture(te.forcing, tex), attributes=te.attributes, target=te.target,
                        series=None, site_ids=basins)
    pbm = RoutedRunoffSurrogate(surrogate)
    torch.manual_seed(int(seed))
    if settings.net == "gz":
        net = GZ(n_series=4, n_attributes=len(names), n_params=pbm.n_params, hidden=settings.hidden,
                 masked_series=[3], readout="mean")
    else:
        net = GA(len(names), pbm.n_params, hidden=settings.hidden)
    model = DPLModel(net, pbm)
    obs_test = te.target[warmup_days:].numpy()
    gz_series = series_tr if settings.net == "gz" else None

    def _simulate(m) -> np.ndarray:
        return predict(m, test, warmup_days=warmup_days, outputs=("streamflow",), series=gz_series)["streamflow"].numpy()

    def eval_fn(m) -> dict:
        return {"test_median_nse": float(np.nanmedian(metrics.nse(_simulate(m).astype(np.float64), obs_test)))}

    res = train_dpl(model, train, settings.train_config(seed, progress), eval_fn=eval_fn if settings.eval_every > 0 else None)
    sim = _simulate(res.model)
    params = predict_parameters(res.model, test, series=gz_series).numpy()
    times = period_index(ds, test_period, warmup_days)
    label = f"dPL {settings.net}+VIC surrogate"
    run = DPLRun(metrics=score(sim, obs_test, basins), simulation=sim_array(sim, basins, times, label),
                 history=res.history, parameters=params, model=res.model, normalizer=norm,
                 wall_time_s=time.perf_counter() - t0)
    q_legacy = legacy_streamflow(te.forcing.numpy(), tex, params[..., 0], warmup=warmup_days)
    return run, score(q_legacy, obs_test, basins)


# ============================================================================ classical reference
def run_sceua_vic(ds: xr.Dataset, attrs: xr.Dataset, basins: Sequence[str], train_period: tuple[str, str],
                  test_period: tuple[str, str], max_evals: int = 1000, n_complexes: int = 7, seed: int = 0,
                  warmup_days: int = 365, max_batch: int = 32, progress: bool = False) -> BaselineRun:
    """Per-basin SCE-UA of the VIC-style NumPy model itself (five VIC parameters plus routing, 1 - NSE
    on ``train_period``), all basins in lockstep (:func:`dplpaper.calibrate.sceua.sceua`), then run on
    ``test_period``. Each objective call simulates every (basin, candidate) pair as one column of
    one legacy run (memory: forcing tiled up to ``max_batch`` times)."""
    t0 = time.perf_counter()
    basins = [str(b) for b in basins]
    tex = texture(attrs, basins)
    start, end = time_slice(ds, train_period, warmup_days)
    sub = ds.sel(site=basins, time=slice(start, end))
    f_tr = forcing_array(sub)
    obs_tr = sub["streamflow"].transpose("time", "site").values[warmup_days:].astype(np.float64)

    def cost(rep: np.ndarray, u: np.ndarray) -> np.ndarray:  # (basin, candidate) pairs -> 1 - NSE
        q = legacy_streamflow(f_tr[:, rep], {k: v[rep] for k, v in tex.items()}, u, warmup_days)
        return 1.0 - metrics.nse(q, obs_tr[:, rep])

    res = sceua(pairwise_objective(cost), len(ROUTED_VIC_TABLE), n_sites=len(basins), n_complexes=n_complexes, max_evals=max_evals,
                seed=seed, progress=progress, max_batch=max_batch, keep_param_history=False)
    s2, e2 = time_slice(ds, test_period, warmup_days)
    te = ds.sel(site=basins, time=slice(s2, e2))
    sim = legacy_streamflow(forcing_array(te), tex, res.best_params, warmup_days)
    obs = te["streamflow"].transpose("time", "site").values[warmup_days:]
    times = period_index(ds, test_period, warmup_days)
    return BaselineRun(metrics=score(sim, obs, basins), simulation=sim_array(sim, basins, times, "SCE-UA VIC-style"),
                       parameters=res.best_params, transfer_functions=None, learning_curve=res.learning_curve(),
                       wall_time_s=time.perf_counter() - t0)
