r"""Case 1 of Tsai et al. (2021): soil moisture (SMAP) — dPL (gA, gZ) vs SCE-UA through an LSTM surrogate.

The paper calibrated five VIC parameters (INFILT, Dsmax, Ds, Ws, EXPT) against SMAP surface soil
moisture over CONUS through an LSTM surrogate of VIC, by dPL (networks gA and gZ, one domain-wide
loss) and by SCE-UA (site by site), at three sampling densities. Here the process model is the
VIC-style NumPy model :class:`dplpaper.models.vicwb.VICStyleModel` and its LSTM surrogate
(:mod:`dplpaper.models.surrogate`); every computation of the chapter lives in this module and the
notebooks ``notebooks/1x_case1_*.ipynb`` only call it and plot.

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

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import xarray as xr

from dplpaper.data import density_sample, load_smap, make_twin, neighbour_cells
from dplpaper.data.twin import haversine_km
from dplpaper.metrics import metrics_table
from dplpaper.models.base import ProcessModel
from dplpaper.models.surrogate import (LSTMSurrogate, evaluate_surrogate, latin_hypercube,
                                       make_surrogate_training_set, train_surrogate)
from dplpaper.models.vicwb import PARAMETER_TABLE, VICStyleModel
from dplpaper.nets import GA, GZ, DPLModel, Normalizer
from dplpaper.results import results_dir
from dplpaper.train import TrainConfig, TrainingData, train_dpl

__all__ = [
    "ATTRIBUTES", "SOIL_VARS", "PARAM_NAMES", "PARAMETER_TABLE", "METHOD_LABELS", "Case1Config", "Case1Data", "MethodRun",
    "SoilSurrogate", "load_case1", "get_surrogate", "surrogate_accuracy", "run_dpl", "run_sceua", "get_run",
    "default_run", "simulate_surrogate", "simulate_legacy", "site_metrics", "generalization",
    "et_comparison", "parameter_recovery", "morans_i", "mean_neighbour_difference", "spatial_coherence",
    "epochs_to_threshold", "learning_curve_runs", "scaling_table", "seed_ensemble", "ensemble_summary",
    "neighbour_test_cells", "period_slice", "write_table",
]

#: static attributes fed to gA / gZ (the hydroDL CONUSv4f1 constants)
ATTRIBUTES = ("Bulk", "Capa", "Clay", "NDVI", "Sand", "Silt", "flag_albedo", "flag_extraOrd",
              "flag_landcover", "flag_roughness", "flag_vegDense", "flag_waterbody")
#: soil texture (percent, renormalized to sum to 100) that sets the VIC-style model's soil
SOIL_VARS = ("sand", "clay", "silt")
FORCING_VARS = ("precip", "temp", "pet")
PARAM_NAMES = tuple(PARAMETER_TABLE.names)
METHOD_LABELS = {"default": "default", "sceua": "SCE-UA", "gz": "dPL gZ", "ga": "dPL gA"}
RECORD = ("2015-04-01", "2017-03-31")


# ============================================================================== configuration
@dataclass
class Case1Config:
    """Settings of the Case 1 experiments (``Case1Config.quick()`` / ``.full()``).

    Attributes:
        mode: ``"quick"`` (shipped data subset, small budgets) or ``"full"``.
        variant: ``"twin"`` or ``"real"``.
        seed: seed of single-seed runs; seeds: the seed ensemble (Table S1).
        quick_data: passed to :func:`dplpaper.data.load_smap` (True: the shipped compact copy).
        train_period, test_period: inclusive date ranges; spinup_days: surrogate spin-up (days).
        sur_*: surrogate: hidden size, LHS parameter sets, fraction of cells used for training
            (the rest, with fresh parameter sets, measure its accuracy), iterations, batch, lr,
            held-out parameter sets for the accuracy test.
        twin_noise: std of the additive observation noise of the twin (m3/m3); twin_seed: its seed
            (true parameter field and noise).
        densities: sampling densities for the learning / scaling curves.
        dpl_epochs: epochs per density; dpl_batch: cells per mini-batch; dpl_lr: Adam learning rate;
            gz_hidden / ga_hidden: network widths.
        sce_complexes, sce_max_evals: SCE-UA complexes and budget (evaluations per cell);
            sce_site_cap: at most this many (random, seeded) training cells for SCE-UA learning
            curves (SCE-UA calibrates each cell on its own, so a subsample gives the same
            per-cell curve); ``None``: all. Never applied at s8, where the generalization tests
            need every training cell.
        threshold: test RMSE (m3/m3) defining a "functional model" (paper: 0.05); ``None``: 0.05 for
            the real variant, ``1.25 * twin_noise`` for the twin (see :attr:`rmse_threshold`).
        density_main: the density of the generalization tests, maps and Table S1 (paper: s8).
        sur_chunk: columns per surrogate call in SCE-UA and evaluation.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (cuda when available).
        use_cache: reuse cached surrogate / runs under ``results/case1``.
    """

    mode: str = "quick"
    variant: str = "twin"
    seed: int = 0
    seeds: tuple = (0, 1)
    quick_data: bool | None = True
    train_period: tuple = ("2015-04-01", "2016-03-31")
    test_period: tuple = ("2016-04-01", "2017-03-31")
    spinup_days: int = 90
    sur_hidden: int = 32
    sur_param_sets: int = 16
    sur_train_frac: float = 0.75
    sur_iters: int = 500
    sur_batch: int = 128
    sur_lr: float = 5e-3
    sur_eval_sets: int = 4
    twin_noise: float = 0.02
    twin_seed: int = 2021
    densities: tuple = ("s16", "s8", "s4")
    dpl_epochs: dict = field(default_factory=lambda: {"s16": 12, "s8": 6, "s4": 3})
    dpl_batch: int = 64
    dpl_lr: float = 1e-2
    gz_hidden: int = 32
    ga_hidden: int = 64
    sce_complexes: int = 2
    sce_max_evals: int = 150
    sce_site_cap: int | None = 128
    threshold: float | None = None
    density_main: str = "s8"
    sur_chunk: int = 4096
    device: str = "cpu"
    use_cache: bool = True

    @classmethod
    def quick(cls, **kw) -> "Case1Config":
        """Small budgets for a 2-core laptop (the notebooks' default)."""
        return cls(**kw)

    @classmethod
    def full(cls, **kw) -> "Case1Config":
        """Paper-like budgets: full data when found, larger networks, 7 complexes, 5 seeds, GPU if present."""
        base = dict(mode="full", quick_data=None, seeds=(0, 1, 2, 3, 4), sur_hidden=64, sur_param_sets=32,
                    sur_iters=6000, sur_batch=256, dpl_epochs={"s16": 300, "s8": 100, "s4": 40},
                    dpl_batch=32, dpl_lr=5e-3, gz_hidden=64, ga_hidden=128, sce_complexes=7, sce_max_evals=2000,
                    sce_site_cap=None, device="auto")
        base.update(kw)
        return cls(**base)

    @classmethod
    def for_mode(cls, mode: str, **kw) -> "Case1Config":
        if mode not in ("quick", "full"):
            raise ValueError(f"mode must be 'quick' or 'full', got {mode!r}")
        return cls.full(**kw) if mode == "full" else cls.quick(**kw)

    def __post_init__(self) -> None:
        if self.variant not in ("twin", "real"):
            raise ValueError(f"variant must be 'twin' or 'real', got {self.variant!r}")
        if self.density_main not in self.dpl_epochs:
            raise ValueError(f"density_main {self.density_main!r} has no entry in dpl_epochs")

    @property
    def rmse_threshold(self) -> float:
        """The threshold RMSE of the learning curves. Real data: the paper's 0.05 m3/m3. Twin: the
        observations are truth + N(0, twin_noise) so even poor parameters sit near the noise floor
        (0.05 is crossed before training starts); the twin threshold is 1.25 x the noise std,
        i.e. the same ratio as 0.05 to the paper's ending RMSEs (~0.04)."""
        if self.threshold is not None:
            return float(self.threshold)
        return 0.05 if self.variant == "real" else round(1.25 * self.twin_noise, 4)

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def key(self, fields: Sequence[str], **extra) -> str:
        """Short hash of the named settings plus ``extra`` (cache file names)."""
        d = asdict(self)
        payload = {k: d[k] for k in fields}
        payload.update(extra)
        payload["device"] = str(self.torch_device().type)
        return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


_SUR_FIELDS = ("quick_data", "spinup_days", "sur_hidden", "sur_param_sets", "sur_train_frac", "sur_iters",
               "sur_batch", "sur_lr", "train_period", "test_period")
_DATA_FIELDS = ("quick_data", "train_period", "test_period", "twin_noise", "twin_seed", "variant")
_RUN_FIELDS = _SUR_FIELDS + _DATA_FIELDS + ("dpl_epochs", "dpl_batch", "dpl_lr", "gz_hidden", "ga_hidden",
                                            "sce_complexes", "sce_max_evals", "sce_site_cap")


# ============================================================================== data
@dataclass
class Case1Data:
    """One variant's data on the record 2015-04-01..2017-03-31 (``T`` days, ``S`` = 412 cells).

    Attributes:
        variant: ``"real"`` or ``"twin"``.
        time: ``[T]`` dates; site: ``[S]`` ids; lat, lon, row, col: ``[S]``.
        forcing: ``[T, S, 3]`` precip (mm/d), temp (degC), pet (mm/d), float64.
        soil: ``[S, 3]`` sand, clay, silt (%), summing to 100 (the one cell without texture gets
            the median texture).
        attributes: ``[S, A]`` raw static attributes :data:`ATTRIBUTES` (NaN -> median).
        obs: ``[T, S]`` soil moisture observations (m3/m3, NaN gaps): SMAP, or the twin's.
        params_true: ``[S, 5]`` unit cube (twin) or None; sm_true, et_true: ``[T, S]`` noise-free
            twin soil moisture (m3/m3) and ET (mm/d), or None.
        train_period, test_period, spinup_days: as in the config.
    """

    variant: str
    time: pd.DatetimeIndex
    site: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    row: np.ndarray
    col: np.ndarray
    forcing: np.ndarray
    soil: np.ndarray
    attributes: np.ndarray
    obs: np.ndarray
    params_true: np.ndarray | None
    sm_true: np.ndarray | None
    et_true: np.ndarray | None
    train_period: tuple
    test_period: tuple
    spinup_days: int

    @property
    def n_sites(self) -> int:
        return len(self.site)

    def period_index(self, period) -> np.ndarray:
        """Day indices (into ``time``) of an inclusive (start, end) period."""
        a, b = pd.Timestamp(period[0]), pd.Timestamp(period[1])
        idx = np.flatnonzero((self.time >= a) & (self.time <= b))
        if idx.size == 0 or self.time[idx[0]] != a or self.time[idx[-1]] != b:
            raise ValueError(f"period {period} not covered by the record {self.time[0].date()}..{self.time[-1].date()}")
        return idx

    def extended_index(self, period) -> tuple[np.ndarray, int]:
        """Day indices of ``spinup_days`` spin-up days followed by the period, and the spin-up length.

        The spin-up uses the real preceding days when the record has them, else the last
        ``spinup_days`` days of the period itself (cyclic spin-up of the first year)."""
        idx = self.period_index(period)
        s = int(self.spinup_days)
        if idx[0] >= s:
            pre = np.arange(idx[0] - s, idx[0])
        else:
            if s > idx.size:
                raise ValueError(f"spinup_days ({s}) longer than the period ({idx.size} days)")
            pre = idx[-s:]
        return np.concatenate([pre, idx]), s

    def model_inputs(self, period, sites=None) -> tuple[np.ndarray, np.ndarray]:
        """Surrogate forcing ``[spin + n, k, 6]`` (precip, temp, pet, sand, clay, silt) and target
        ``[spin + n, k]`` (NaN over the spin-up) for a period and site indices (float32)."""
        sites = np.arange(self.n_sites) if sites is None else np.asarray(sites, dtype=int)
        ext, s = self.extended_index(period)
        f = self.forcing[ext][:, sites]
        soil = np.broadcast_to(self.soil[sites][None], (len(ext), len(sites), 3))
        y = self.obs[ext][:, sites].copy()
        y[:s] = np.nan
        return np.concatenate([f, soil], axis=-1).astype(np.float32), y.astype(np.float32)


def period_slice(data: Case1Data, period) -> slice:
    idx = data.period_index(period)
    return slice(int(idx[0]), int(idx[-1]) + 1)


def _fill_median(x: np.ndarray) -> np.ndarray:
    x = np.array(x, dtype=np.float64)
    med = np.nanmedian(x, axis=0)
    bad = np.isnan(x)
    x[bad] = np.broadcast_to(med, x.shape)[bad]
    return x


def _legacy_spunup(forcing: np.ndarray, params: np.ndarray, soil: np.ndarray,
                   outputs=("soil_moisture", "et")) -> dict[str, np.ndarray]:
    """Run the VIC-style model on ``forcing [T, S, 3]`` after one spin-up pass over its first year."""
    n_spin = min(365, forcing.shape[0] - 1)
    f = np.concatenate([forcing[:n_spin], forcing], axis=0)
    soil_d = {k: soil[:, i] for i, k in enumerate(SOIL_VARS)}
    out = VICStyleModel().run(f, params, warmup=n_spin, soil_properties=soil_d)
    return {k: out[k] for k in outputs}


_DATA_CACHE: dict = {}


def load_case1(cfg: Case1Config, variant: str | None = None) -> Case1Data:
    """Build the real or twin data set of Case 1 (kept in memory per settings)."""
    variant = variant or cfg.variant
    key = cfg.key(_DATA_FIELDS, variant=variant, spin=cfg.spinup_days)
    if key in _DATA_CACHE:
        return _DATA_CACHE[key]
    ds = load_smap(quick=cfg.quick_data).sel(time=slice(*RECORD))
    t = pd.DatetimeIndex(ds["time"].values)
    forcing = np.stack([ds[v].transpose("time", "site").values.astype(np.float64) for v in FORCING_VARS], -1)
    tex = _fill_median(np.stack([ds[k].values for k in ("Sand", "Clay", "Silt")], 1))
    soil = tex * 100.0 / tex.sum(1, keepdims=True)
    attrs = _fill_median(np.stack([ds[k].values for k in ATTRIBUTES], 1))
    obs = ds["soil_moisture"].transpose("time", "site").values.astype(np.float64)
    p_true = sm_true = et_true = None
    if variant == "twin":
        fds = xr.Dataset({v: (("site", "time"), forcing[:, :, i].T) for i, v in enumerate(FORCING_VARS)},
                         coords={"site": ds["site"].values, "time": t, "lat": ("site", ds["lat"].values),
                                 "lon": ("site", ds["lon"].values)})
        att = xr.Dataset({k: ("site", attrs[:, i]) for i, k in enumerate(ATTRIBUTES)},
                         coords={"site": ds["site"].values})
        tw = make_twin(fds, lambda f, p: _legacy_spunup(f, p, soil), att, len(PARAM_NAMES),
                       observed={"soil_moisture": ds["soil_moisture"]}, noise_std={"soil_moisture": cfg.twin_noise},
                       seed=cfg.twin_seed, param_names=PARAM_NAMES, units={"soil_moisture": "m3/m3", "et": "mm/day"})
        p_true = tw["params_true"].values
        sm_true = tw["soil_moisture_true"].transpose("time", "site").values
        et_true = tw["et_true"].transpose("time", "site").values
        obs = np.clip(tw["soil_moisture"].transpose("time", "site").values, 0.0, None)
    data = Case1Data(variant=variant, time=t, site=ds["site"].values.astype(str), lat=ds["lat"].values.astype(float),
                     lon=ds["lon"].values.astype(float), row=ds["row"].values.astype(int),
                     col=ds["col"].values.astype(int), forcing=forcing, soil=soil, attributes=attrs, obs=obs,
                     params_true=p_true, sm_true=sm_true, et_true=et_true, train_period=tuple(cfg.train_period),
                     test_period=tuple(cfg.test_period), spinup_days=int(cfg.spinup_days))
    data.period_index(cfg.train_period)
    data.period_index(cfg.test_period)
    _DATA_CACHE[key] = data
    return data


# ============================================================================== surrogate
class SoilSurrogate(ProcessModel):
    """The frozen LSTM surrogate as a :class:`ProcessModel` whose forcing carries the soil texture.

    :class:`dplpaper.nets.DPLModel` calls ``pbm(forcing, params, warmup)`` without attributes, but
    the surrogate needs each cell's texture (it sets the VIC-style soil). So the forcing has six
    channels, ``(precip, temp, pet, sand, clay, silt)``, the last three constant in time; they
    are split off and passed as the surrogate's attributes. Outputs: ``soil_moisture`` (m3/m3)
    and ``et`` (mm/d), ``[time - warmup, site]``.
    """

    nmul = 1

    def __init__(self, surrogate: LSTMSurrogate):
        super().__init__()
        self.surrogate = surrogate
        self.parameter_table = surrogate.parameter_table
        self.forcing_names = tuple(surrogate.forcing_names) + SOIL_VARS
        self._nf = len(surrogate.forcing_names)

    def forward(self, forcing: torch.Tensor, params: torch.Tensor, warmup: int = 0) -> dict[str, torch.Tensor]:
        nf = self._nf
        return self.surrogate(forcing[..., :nf], params, warmup=warmup, attributes=forcing[0, :, nf:])


def surrogate_split(cfg: Case1Config, n_sites: int) -> tuple[np.ndarray, np.ndarray]:
    """(cells whose forcing trains the surrogate, held-out cells), seeded by ``cfg.twin_seed``."""
    perm = np.random.default_rng([cfg.twin_seed, 7]).permutation(n_sites)
    k = int(round(cfg.sur_train_frac * n_sites))
    return np.sort(perm[:k]), np.sort(perm[k:])


def _surrogate_training_set(cfg: Case1Config, data: Case1Data, sites: np.ndarray) -> dict:
    """LHS parameter sets x cells simulated by the (spun-up) VIC-style model over the record."""
    P = latin_hypercube(cfg.sur_param_sets, len(PARAM_NAMES), seed=cfg.twin_seed)
    f = data.forcing[:, sites]
    n_spin = 365
    f_ext = np.concatenate([f[:n_spin], f], axis=0)
    attrs = {k: data.soil[sites, i] for i, k in enumerate(SOIL_VARS)}
    return make_surrogate_training_set(VICStyleModel(), f_ext, attrs, params=P, outputs=("soil_moisture", "et"),
                                       spinup=n_spin, sets_per_run=4)


def surrogate_path(cfg: Case1Config) -> Path:
    return results_dir("case1") / f"surrogate_{cfg.mode}_{cfg.key(_SUR_FIELDS)}.pt"


def get_surrogate(cfg: Case1Config, data: Case1Data | None = None, progress: bool = False) -> LSTMSurrogate:
    """The trained surrogate: loaded from ``results/case1`` when cached, else trained and cached."""
    path = surrogate_path(cfg)
    if cfg.use_cache and path.exists():
        return LSTMSurrogate.load(path)
    data = data or load_case1(cfg, "real")
    tr, _ = surrogate_split(cfg, data.n_sites)
    dset = _surrogate_training_set(cfg, data, tr)
    sur = train_surrogate(dset, outputs=("soil_moisture", "et"), hidden=cfg.sur_hidden, epochs=1,
                          iters_per_epoch=cfg.sur_iters, batch=cfg.sur_batch, seq_len=240,
                          warmup=cfg.spinup_days, lr=cfg.sur_lr, seed=cfg.twin_seed, progress=progress)
    sur.save(path)
    return sur


def surrogate_accuracy(cfg: Case1Config, surrogate: LSTMSurrogate, data: Case1Data | None = None) -> dict:
    """Surrogate vs VIC-style model on held-out cells and fresh parameter sets (Figure S2 analogue).

    Returns dict with ``table`` (DataFrame: one row per (set, held-out cell): site, set, lat, lon,
    corr_sm, rmse_sm, corr_et, rmse_et), ``median`` (dict of medians), and ``example`` (the
    legacy / surrogate series of one cell, over the test period) for plotting. Writes
    ``results/case1/surrogate_accuracy_<mode>.csv``. Compared over the record after 90 days.
    """
    data = data or load_case1(cfg, "real")
    surrogate = surrogate.cpu()
    _, held = surrogate_split(cfg, data.n_sites)
    P = latin_hypercube(cfg.sur_eval_sets, len(PARAM_NAMES), seed=cfg.twin_seed + 1000)
    params = np.broadcast_to(P[:, None, :], (len(P), len(held), len(PARAM_NAMES)))
    attrs = {k: data.soil[held, i] for i, k in enumerate(SOIL_VARS)}
    # the legacy runs start from a spun-up state: prepend one year, compare after the surrogate warm-up
    f = data.forcing[:, held]
    f_ext = np.concatenate([f[:365], f], 0)
    res = evaluate_surrogate(surrogate, VICStyleModel(), f_ext, attrs, params, warmup=365 + 90)
    n_set, n_h = len(P), len(held)
    tab = pd.DataFrame({"site": np.tile(data.site[held], n_set), "set": np.repeat(np.arange(n_set), n_h),
                        "lat": np.tile(data.lat[held], n_set), "lon": np.tile(data.lon[held], n_set),
                        "corr_sm": res["soil_moisture"]["corr"], "rmse_sm": res["soil_moisture"]["rmse"],
                        "corr_et": res["et"]["corr"], "rmse_et": res["et"]["rmse"]})
    tab.to_csv(results_dir("case1") / f"surrogate_accuracy_{cfg.mode}.csv", index=False)
    med = {k: float(np.nanmedian(tab[k])) for k in ("corr_sm", "rmse_sm", "corr_et", "rmse_et")}
    j = int(np.argsort(tab["corr_sm"].values[:n_h])[n_h // 2])       # the median cell of set 0
    example = {"time": data.time[90:], "site": data.site[held][j],
               "sm_legacy": res["soil_moisture"]["legacy"][0, :, j], "sm_surrogate": res["soil_moisture"]["surrogate"][0, :, j],
               "et_legacy": res["et"]["legacy"][0, :, j], "et_surrogate": res["et"]["surrogate"][0, :, j]}
    return {"table": tab, "median": med, "example": example, "n_heldout_cells": n_h, "n_sets": n_set}


# ============================================================================== runs
@dataclass
class MethodRun:
    """Outcome of one calibration (or the default parameters).

    Attributes:
        method: ``"default"``, ``"sceua"``, ``"gz"`` or ``"ga"``; density: e.g. ``"s8"``; seed.
        train_idx: ``[n]`` training cell indices.
        params: ``[S, 5]`` unit-cube parameters for every cell: for dPL inferred by the network
            (gA from the cell's attributes, gZ from its attributes and training-period forcing and
            observations); for SCE-UA NaN outside the calibrated cells (use :meth:`params_at`).
        history: learning curve, columns ``epoch``, ``wall_time_s``, ``test_rmse``.
        info: settings and timings.
    """

    method: str
    density: str
    seed: int
    train_idx: np.ndarray
    params: np.ndarray
    history: pd.DataFrame
    info: dict = field(default_factory=dict)

    def params_at(self, idx, data: Case1Data) -> np.ndarray:
        """Parameters at cells ``idx``; SCE-UA cells without a calibration take those of the
        nearest calibrated cell (great-circle distance), as in the paper's spatial test."""
        idx = np.asarray(idx, dtype=int)
        p = self.params[idx].copy()
        miss = np.isnan(p).any(1)
        if miss.any():
            cal = np.flatnonzero(~np.isnan(self.params).any(1))
            d = haversine_km(np.r_[data.lat[idx[miss]], data.lat[cal]], np.r_[data.lon[idx[miss]], data.lon[cal]])
            d = d[:miss.sum(), miss.sum():]
            p[miss] = self.params[cal[np.argmin(d, axis=1)]]
        return p

    def to_netcdf(self, path: Path) -> None:
        ds = xr.Dataset({"params": (("site", "param"), self.params),
                         "train": ("site", np.isin(np.arange(len(self.params)), self.train_idx).astype(np.int8))},
                        coords={"param": list(PARAM_NAMES)})
        for c in self.history.columns:
            ds[f"history_{c}"] = ("row", self.history[c].values.astype(float))
        ds["train_idx"] = ("n_train", np.asarray(self.train_idx, dtype=np.int64))
        ds.attrs.update(method=self.method, density=self.density, seed=int(self.seed), info=json.dumps(self.info, default=str))
        tmp = path.with_suffix(".tmp.nc")
        ds.to_netcdf(tmp)
        tmp.replace(path)

    @classmethod
    def from_netcdf(cls, path: Path) -> "MethodRun":
        with xr.open_dataset(path) as ds:
            ds = ds.load()
        hist = pd.DataFrame({k[len("history_"):]: ds[k].values for k in ds.data_vars if k.startswith("history_")})
        return cls(method=ds.attrs["method"], density=ds.attrs["density"], seed=int(ds.attrs["seed"]),
                   train_idx=ds["train_idx"].values.astype(int), params=ds["params"].values,
                   history=hist, info=json.loads(ds.attrs["info"]))


class _Inputs:
    """Normalized network inputs for all cells (normalizers fitted on the training cells)."""

    def __init__(self, data: Case1Data, train_idx: np.ndarray):
        self.a_norm = Normalizer(names=list(ATTRIBUTES)).fit(data.attributes[train_idx])
        self.attributes = torch.as_tensor(self.a_norm.transform(data.attributes), dtype=torch.float32)
        f_tr, y_tr = data.model_inputs(data.train_period)
        series = np.concatenate([f_tr[..., :3], y_tr[..., None]], -1)            # [spin+n, S, 4]
        self.s_norm = Normalizer(log_features=[0], names=list(FORCING_VARS) + ["soil_moisture"]).fit(series[:, train_idx])
        self.series = torch.as_tensor(self.s_norm.transform(series), dtype=torch.float32)
        self.f_train, self.y_train = torch.as_tensor(f_tr), torch.as_tensor(y_tr)
        f_te, y_te = data.model_inputs(data.test_period)
        self.f_test, self.y_test = torch.as_tensor(f_te), torch.as_tensor(y_te)
        self.spin = data.spinup_days


def _median_rmse(sim: torch.Tensor, obs: torch.Tensor) -> float:
    """Median over cells of the per-cell RMSE (NaN obs ignored); ``[time, site]``."""
    m = ~torch.isnan(obs)
    err = torch.where(m, sim.double() - torch.nan_to_num(obs.double()), torch.zeros((), dtype=torch.float64))
    n = m.sum(0)
    r = torch.sqrt((err ** 2).sum(0) / n.clamp(min=1))
    r = r[n >= 2]
    return float(r.median()) if r.numel() else float("nan")


def _cells_rmse(sim: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
    m = ~torch.isnan(obs)
    err = torch.where(m, sim - torch.nan_to_num(obs), torch.zeros((), dtype=sim.dtype))
    n = m.sum(0)
    return torch.where(n >= 2, torch.sqrt((err ** 2).sum(0) / n.clamp(min=1)), torch.full_like(err[0], float("inf")))


def _surrogate_chunks(pbm: SoilSurrogate, forcing: torch.Tensor, params: torch.Tensor, warmup: int, chunk: int,
                      device: torch.device, outputs=("soil_moisture",)) -> dict[str, torch.Tensor]:
    parts: dict[str, list] = {o: [] for o in outputs}
    with torch.no_grad():
        for lo in range(0, forcing.shape[1], chunk):
            hi = min(lo + chunk, forcing.shape[1])
            out = pbm(forcing[:, lo:hi].to(device), params[lo:hi].to(device), warmup=warmup)
            for o in outputs:
                parts[o].append(out[o].cpu())
    return {o: torch.cat(v, 1) for o, v in parts.items()}


def run_dpl(data: Case1Data, surrogate: LSTMSurrogate, train_idx, cfg: Case1Config, net: str = "gz",
            seed: int = 0, epochs: int | None = None, density: str = "custom", progress: bool = False) -> MethodRun:
    """Train gZ (``net="gz"``) or gA (``"ga"``) through the frozen surrogate on the training cells.

    One domain-wide RMSE loss over mini-batches of ``cfg.dpl_batch`` cells, each over the whole
    training year after the spin-up; Adam (``cfg.dpl_lr``). The learning curve records, after
    every epoch, the median test-period RMSE at the training cells. Returns a :class:`MethodRun`
    whose ``params`` hold the network's parameters for every cell.
    """
    if net not in ("gz", "ga"):
        raise ValueError(f"net must be 'gz' or 'ga', got {net!r}")
    train_idx = np.asarray(train_idx, dtype=int)
    dev = cfg.torch_device()
    inp = _Inputs(data, train_idx)
    n_attr = inp.attributes.shape[1]
    torch.manual_seed(int(seed))
    if net == "gz":
        network = GZ(n_series=4, n_attributes=n_attr, n_params=len(PARAM_NAMES), hidden=cfg.gz_hidden,
                     masked_series=[3])
    else:
        network = GA(n_attr, len(PARAM_NAMES), hidden=cfg.ga_hidden)
    pbm = SoilSurrogate(surrogate)
    model = DPLModel(network, pbm)
    ti = torch.as_tensor(train_idx)
    td = TrainingData(forcing=inp.f_train[:, ti], attributes=inp.attributes[ti], target=inp.y_train[:, ti],
                      series=inp.series[:, ti] if net == "gz" else None, target_name="soil_moisture",
                      site_ids=list(data.site[train_idx]))
    f_test = inp.f_test[:, ti].to(dev)
    y_test = inp.y_test[inp.spin:, ti]
    net_in = [inp.series[:, ti].to(dev), inp.attributes[ti].to(dev)] if net == "gz" else [inp.attributes[ti].to(dev)]

    def eval_fn(m) -> dict:
        p = m.net(*net_in)
        sim = m.pbm(f_test, p, warmup=inp.spin)["soil_moisture"].cpu()
        return {"test_rmse": _median_rmse(sim, y_test)}

    n_days = len(data.period_index(data.train_period))
    tc = TrainConfig(epochs=int(epochs or cfg.dpl_epochs.get(density, 20)), batch_sites=min(cfg.dpl_batch, len(train_idx)),
                     window_days=n_days, warmup_days=inp.spin, loss="rmse", lr=cfg.dpl_lr, seed=int(seed),
                     device=str(dev), progress=progress)
    t0 = time.perf_counter()
    res = train_dpl(model, td, tc, eval_fn=eval_fn)
    total = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        all_in = [inp.series.to(dev), inp.attributes.to(dev)] if net == "gz" else [inp.attributes.to(dev)]
        params = model.net(*all_in)[..., 0].cpu().double().numpy()
    hist = res.history[["epoch", "wall_time_s", "test_rmse"]].copy()
    info = dict(net=net, epochs=tc.epochs, batch=tc.batch_sites, iterations_per_epoch=res.iterations_per_epoch,
                n_train=len(train_idx), total_seconds=total, device=str(dev))
    return MethodRun(net, density, int(seed), train_idx, params, hist, info)


def run_sceua(data: Case1Data, surrogate: LSTMSurrogate, train_idx, cfg: Case1Config, seed: int = 0,
              max_evals: int | None = None, density: str = "custom", progress: bool = False) -> MethodRun:
    """Calibrate each training cell by SCE-UA (:func:`dplpaper.calibrate.sceua.sceua`, all cells in
    lockstep) against its training-year RMSE, through the frozen surrogate.

    Every batch of candidates ``[cells, n_cand, 5]`` is evaluated in one no-grad surrogate call
    (cells x candidates flattened into the site axis, in chunks of ``cfg.sur_chunk``). After
    the initial population and every shuffling loop the median test-period RMSE of the current
    best parameters is recorded (its time is not counted in ``wall_time_s``).
    """
    from dplpaper.calibrate.sceua import sceua

    train_idx = np.asarray(train_idx, dtype=int)
    dev = cfg.torch_device()
    pbm = SoilSurrogate(surrogate).to(dev)
    f_tr, y_tr = data.model_inputs(data.train_period, train_idx)
    f_te, y_te = data.model_inputs(data.test_period, train_idx)
    f_tr, f_te = torch.as_tensor(f_tr), torch.as_tensor(f_te)
    y_tr, y_te = torch.as_tensor(y_tr), torch.as_tensor(y_te)
    spin = data.spinup_days
    n = len(train_idx)

    def objective(params_unit: np.ndarray) -> np.ndarray:
        S, C, _ = params_unit.shape
        rep = np.repeat(np.arange(S), C)
        p = torch.as_tensor(params_unit.reshape(S * C, -1), dtype=torch.float32)
        sim = _surrogate_chunks(pbm, f_tr[:, rep], p, spin, cfg.sur_chunk, dev)["soil_moisture"]
        return _cells_rmse(sim.double(), y_tr[spin:, rep].double()).numpy().reshape(S, C)

    cb_time = [0.0]
    cb_log = []

    def callback(epoch: float, best: np.ndarray):
        t = time.perf_counter()
        sim = _surrogate_chunks(pbm, f_te, torch.as_tensor(best, dtype=torch.float32), spin, cfg.sur_chunk,
                                dev)["soil_moisture"]
        val = _median_rmse(sim, y_te[spin:])
        cb_log.append(cb_time[0])               # callback time spent before this record
        cb_time[0] += time.perf_counter() - t
        return val

    res = sceua(objective, len(PARAM_NAMES), n, n_complexes=cfg.sce_complexes,
                max_evals=int(max_evals or cfg.sce_max_evals), seed=int(seed), progress=progress, callback=callback)
    wall = res.wall_time_history.max(axis=1) - np.asarray(cb_log[:res.wall_time_history.shape[0]])
    hist = pd.DataFrame({"epoch": res.epoch_history.mean(axis=1), "wall_time_s": wall,
                         "test_rmse": [v for (_, _, v) in res.callback_values]})
    params = np.full((data.n_sites, len(PARAM_NAMES)), np.nan)
    params[train_idx] = res.best_params
    info = dict(n_complexes=cfg.sce_complexes, max_evals=int(max_evals or cfg.sce_max_evals), n_train=n,
                total_seconds=float(res.wall_time_s), n_candidates=int(res.n_candidates),
                mean_evals=float(res.n_evals.mean()), reasons=dict(pd.Series(res.reason).value_counts()), device=str(dev))
    return MethodRun("sceua", density, int(seed), train_idx, params, hist, info)


def default_run(data: Case1Data) -> MethodRun:
    """The default parameters (:class:`ParameterTable` defaults, VIC's usual values) at every cell:
    the analogue of the paper's NLDAS-2 parameters."""
    p = np.broadcast_to(PARAMETER_TABLE.defaults_unit(), (data.n_sites, len(PARAM_NAMES))).copy()
    return MethodRun("default", "-", 0, np.arange(data.n_sites), p, pd.DataFrame(columns=["epoch", "wall_time_s", "test_rmse"]))


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
    key = cfg.key(_RUN_FIELDS, variant=data.variant, method=method, density=density, seed=seed,
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
    out = _surrogate_chunks(SoilSurrogate(surrogate).to(dev), torch.as_tensor(f), torch.as_tensor(params, dtype=torch.float32),
                            data.spinup_days, chunk, dev, outputs=("soil_moisture", "et"))
    return {k: v.double().numpy() for k, v in out.items()}


def simulate_legacy(data: Case1Data, idx, params: np.ndarray, period) -> dict[str, np.ndarray]:
    """The VIC-style model itself (spun up over the first year, run over the whole record) at cells
    ``idx`` with ``params [k, 5]``; ``soil_moisture`` and ``et`` over ``period``, ``[n_days, k]``."""
    idx = np.asarray(idx, dtype=int)
    out = _legacy_spunup(data.forcing[:, idx], params, data.soil[idx])
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


def _knn_weights(lat, lon, k: int) -> np.ndarray:
    d = haversine_km(lat, lon)
    np.fill_diagonal(d, np.inf)
    nn = np.argsort(d, axis=1, kind="stable")[:, :k]
    w = np.zeros_like(d)
    np.put_along_axis(w, nn, 1.0 / k, axis=1)
    return w


def morans_i(values, lat, lon, k: int = 4) -> float:
    """Moran's I of ``values [site]`` with row-standardized k-nearest-neighbour weights
    (great-circle distance). About 0 for a random field (expectation -1/(n-1)), near 1 for a
    smooth one."""
    x = np.asarray(values, float)
    z = x - x.mean()
    w = _knn_weights(lat, lon, k)
    den = (z ** 2).sum()
    if den == 0:
        return float("nan")
    return float(len(x) / w.sum() * (z @ w @ z) / den)


def mean_neighbour_difference(values, lat, lon, k: int = 4) -> float:
    """Mean absolute difference between each cell's value and its k nearest neighbours'."""
    x = np.asarray(values, float)
    w = _knn_weights(lat, lon, k)
    return float((w * np.abs(x[:, None] - x[None, :])).sum() / len(x))


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
