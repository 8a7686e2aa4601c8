"""Cases 2 and 3 of Tsai et al. (2021): streamflow on real CAMELS basins (Caravan ERA5-Land + USGS Q).

Data. The CAMELS basins of the 531 list that Caravan's CAMELS-US files cover (426 in the full
set; the shipped quick subset has 40), with ERA5-Land precipitation, temperature and potential
evaporation and USGS streamflow (mm/day, :func:`dplpaper.data.load_caravan`, 1981-2014), and
the CAMELS v2.0 static attributes. The paper used Daymet/NLDAS forcing (Case 2, Mizukami et al.'s
setup) and Beck et al. (2020)'s global data set (Case 3); every number here is from these real
CAMELS/Caravan data, never from a twin.

Case 2 — temporal generalization (Figure 5a): train 1999-10-01..2008-09-30, test
1989-10-01..1999-09-30 on the same basins. Methods: dPL = gA (attributes -> HBV parameters) +
the differentiable HBV (no surrogate: HBV is written in PyTorch, with a fused C kernel);
transfer-function regionalization (:mod:`dplpaper.calibrate.regionalization`, the MPR-like
baseline, fitted on the training period with the same attributes); SCE-UA per basin
(:mod:`dplpaper.calibrate.sceua`, all basins in lockstep, the model HBV with one component).

Case 3 — prediction in ungauged basins (Figures 5b, 6b): k-fold cross-validation over basins
(:func:`dplpaper.data.random_pub_folds`); gA + HBV trained on k-1 folds and run on the held-out
fold over the same period (:data:`PUB_PERIOD`, see below); held-out basins pooled over folds.
Two attribute sets: :data:`BECK_ATTRIBUTES_CAMELS` (8, Beck et al.'s choice as far as CAMELS
allows) and :data:`ATTRIBUTES_27` (the 27 CAMELS attributes of the dPL code line). Baseline:
regionalization on the same folds and attributes. Scaling curve: nested subsets of the
training folds (:func:`dplpaper.data.basin_fractions`), median held-out KGE per share.

Periods. ``PUB_PERIOD`` = 1999-10-01..2008-09-30: the paper trained and tested Case 3 on
2000-2016 (Beck20's period), which the Caravan record (ending 2014-12-31) does not cover;
the nine water years 1999-2008 are the Case 2 training window, start the same autumn as the
paper's period and leave a spin-up year before. Every simulation (training windows aside,
which the trainer spins up itself) runs ``warmup_days`` (default 365) extra days before the
period to spin up the states; those days are not scored.

Attributes. NaN attribute values (e.g. ``geol_porostiy`` of a few basins) are replaced by the
mean over the *training* basins; standardization (:class:`dplpaper.nets.Normalizer`, with a
log transform for ``area_gages2``) is fitted on the training basins only. Streamflow
signatures (``q_mean``, ``runoff_ratio``, ...) are never inputs: they are computed from the
observed flow and would leak held-out basins' data in PUB.

Metrics: NSE and KGE per basin on the test period (KGE in the 2012 form, the paper's eq. 15;
:func:`dplpaper.metrics.kge` with ``variant="2012"``). Results are written under
``results/case2/`` and ``results/case3/`` (:func:`dplpaper.results.results_dir`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import xarray as xr

from dplpaper import metrics
from dplpaper.calibrate.regionalization import (BECK_ATTRIBUTES_CAMELS, TransferFunctions, fit_regionalization,
                                                refine_regionalization)
from dplpaper.calibrate.sceua import budget_convergence, sceua
from dplpaper.data import (TEST_PERIOD, TRAIN_PERIOD, basin_fractions, load_basin_list, load_camels_attributes,
                           list_caravan_basins, load_caravan, random_pub_folds)
from dplpaper.models.hbv import HBV
from dplpaper.nets import GA, DPLModel, GDynamic, Normalizer
from dplpaper.results import results_dir
from dplpaper.train import TrainConfig, TrainingData, predict, predict_parameters, train_dpl

__all__ = [
    "ATTRIBUTES_27", "BECK_ATTRIBUTES_CAMELS", "PUB_PERIOD", "FORCING_VARS", "LOG_ATTRIBUTES",
    "TrainerSettings", "DPLSettings", "Case2Config", "Case3Config", "DPLRun", "BaselineRun",
    "FORCINGS", "camels_caravan_basins", "load_streamflow_data", "load_daymet_forcing", "forcing_array", "attribute_matrix", "fit_attribute_normalizer",
    "assemble", "build_dpl_model", "case3_method_labels", "forcing_normalizer", "with_forcing_series", "run_lstm", "LSTMSettings", "DPL_NETS", "score", "run_dpl_hbv", "run_regionalization", "run_sceua_hbv",
    "pub_folds_for", "run_pub_folds", "scaling_curve", "scaling_summary", "matching_share", "pub_medians",
    "scaling_phases",
    "median_table", "run_case2", "forcing_comparison", "forcing_table", "case2_method_labels", "basin_medians",
]

#: HBV forcing channels, in the model's order.
FORCING_VARS = ("precip", "temp", "pet")

#: The 27 CAMELS attributes of the dPL/hydroDL code line (topography, land cover, soil, geology,
#: climate) - the analogue of the paper's 27-feature setup. Left out on purpose: streamflow
#: signatures (computed from observed Q: leakage in PUB), categorical columns (geology classes,
#: dominant land cover, precipitation timing, HUC), gauge coordinates, the duplicate area
#: (``area_geospa_fabric``), and ``root_depth_*`` (missing for 24 of the 671 basins).
ATTRIBUTES_27: tuple[str, ...] = (
    "elev_mean", "slope_mean", "area_gages2", "frac_forest", "lai_max", "lai_diff", "gvf_max", "gvf_diff",
    "soil_depth_pelletier", "soil_depth_statsgo", "soil_porosity", "soil_conductivity", "max_water_content",
    "sand_frac", "silt_frac", "clay_frac", "geol_porostiy", "geol_permeability",
    "p_mean", "pet_mean", "p_seasonality", "frac_snow", "aridity", "high_prec_freq", "high_prec_dur",
    "low_prec_freq", "low_prec_dur",
)

#: Skewed, non-negative attributes that the normalizer log-transforms first.
LOG_ATTRIBUTES = ("area_gages2",)

#: Case 3 training and test period (see the module docstring for why not the paper's 2000-2016).
PUB_PERIOD = ("1999-10-01", "2008-09-30")


# ============================================================================ configuration
@dataclass
class TrainerSettings:
    """Trainer settings of a dPL configuration (see :class:`dplpaper.train.TrainConfig`).

    Attributes:
        epochs, batch_sites, window_days, warmup_days, lr: trainer settings (an epoch is one
            forward run per training basin over the training period).
        loss, loss_kwargs: training loss (default NSE*: squared error scaled by each basin's
            flow variance, so that wet basins do not dominate).
        eval_every: evaluate the median test NSE every this many epochs (0: never); gives a
            learning curve in ``DPLRun.history``.
        device: where the model and mini-batches live (``"cuda"`` on a GPU machine).
        net_device: dPL only: keep the parameter network there (e.g. ``"cuda"``) while the process
            model runs on ``device`` (e.g. HBV's fused C kernel on the CPU); see
            :meth:`dplpaper.nets.DPLModel.pin_net`.
    """

    epochs: int = 100
    batch_sites: int = 100
    window_days: int = 365
    warmup_days: int = 365
    lr: float = 1e-3
    loss: str = "nse"
    loss_kwargs: dict = field(default_factory=lambda: {"variant": "nse_star"})
    eval_every: int = 0
    device: str = "cpu"
    net_device: str | None = None

    def train_config(self, seed: int, progress: bool = False) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_sites=self.batch_sites, window_days=self.window_days,
                           warmup_days=self.warmup_days, loss=self.loss, loss_kwargs=dict(self.loss_kwargs),
                           lr=self.lr, seed=int(seed), eval_every=max(1, self.eval_every), progress=progress,
                           device=self.device)


@dataclass
class DPLSettings(TrainerSettings):
    """gA + HBV settings: the trainer's (:class:`TrainerSettings`) plus the model's.

    Attributes:
        nmul: HBV parameter components per basin (fluxes averaged).
        routing: gamma unit-hydrograph routing (adds ROUTA, ROUTB).
        hidden, n_layers, dropout: the gA MLP.
    """

    nmul: int = 16
    routing: bool = True
    hidden: int = 256
    n_layers: int = 2
    dropout: float = 0.0
    net: str = "ga"
    dynamic_params: tuple = ("BETA", "BETAET")
    use_betaet: bool = False
    lstm_hidden: int = 64

    def __post_init__(self) -> None:
        if self.net not in DPL_NETS:
            raise ValueError(f"DPLSettings.net must be one of {DPL_NETS}, got {self.net!r}")


#: dPL parameter networks of Cases 2/3: ``"ga"`` (static, attributes -> parameters, :class:`GA`)
#: and ``"dynamic"`` (:class:`dplpaper.nets.GDynamic`: LSTM over forcing + attributes ->
#: time-varying ``dynamic_params``, MLP on attributes -> the static rest).
DPL_NETS = ("ga", "dynamic")


@dataclass
class LSTMSettings(TrainerSettings):
    """The LSTM streamflow baseline (:class:`dplpaper.models.lstm.LSTMStreamflow`): the trainer's
    settings plus the network's (hidden size, dropout)."""

    hidden: int = 256
    dropout: float = 0.4


@dataclass
class Case2Config:
    """Case 2 (temporal generalization) settings; :meth:`quick` and :meth:`full` are the two modes.

    Attributes:
        mode: ``"quick"`` or ``"full"``.
        quick_data: passed to the loaders (True: the shipped subset; None: full set when found).
        basins: basin ids (None: every CAMELS-531 basin with Caravan data).
        attributes: attributes of the like-for-like comparison (dPL gA and regionalization).
        extra_attributes: a second dPL variant with more attributes (None: skip).
        dpl: gA + HBV settings.
        forcing: ``"daymet"`` (default) or ``"era5land"`` (:func:`load_streamflow_data`).
        dynamic: dPL with dynamic parameters (``net="dynamic"``; method ``dpl_dynamic``, 27 attributes).
        lstm: the LSTM streamflow baseline (method ``lstm``, 27 attributes).
        seeds: one dPL run per seed; the reported median is the mean over seeds of the median
            over basins (the baselines run once, with the first seed).
        regionalization_max_evals, regionalization_complexes: SCE-UA budget of the transfer
            functions (evaluations = model runs per training basin).
        regionalization_refine_steps, regionalization_refine_lr: gradient refinement of the SCE-UA
            result (:func:`run_regionalization`; 0: SCE-UA only).
        regionalization_refine_max_steps: refine *to convergence*: after ``regionalization_refine_steps``
            go on in half-budget increments while the last 20 % of the curve still gains more than
            0.005, up to this many steps (``None``: exactly ``regionalization_refine_steps``).
        sceua_max_evals, sceua_complexes: per-basin SCE-UA budget (7 complexes in the paper).
        objective: cost of the baselines, ``"nse"`` (1 - NSE) or ``"kge"`` (1 - KGE).
        vic: the paper's configuration, gZ through an LSTM surrogate of the VIC-style model
            (:class:`dplpaper.experiments.streamflow_vic.VICSettings`); ``None``: not run.
    """

    mode: str = "quick"
    quick_data: bool | None = True
    basins: tuple | None = None
    train_period: tuple = TRAIN_PERIOD
    test_period: tuple = TEST_PERIOD
    warmup_days: int = 365
    attributes: tuple = tuple(BECK_ATTRIBUTES_CAMELS)
    extra_attributes: tuple | None = ATTRIBUTES_27
    dpl: DPLSettings = field(default_factory=DPLSettings)
    seeds: tuple = (0,)
    regionalization_max_evals: int = 20000
    regionalization_complexes: int = 7
    regionalization_refine_steps: int = 0
    regionalization_refine_max_steps: int | None = None
    regionalization_refine_lr: float = 0.05
    sceua_max_evals: int = 10000
    sceua_complexes: int = 7
    objective: str = "nse"
    vic: object | None = None
    forcing: str = "daymet"
    dynamic: DPLSettings | None = None
    lstm: LSTMSettings | None = None

    @classmethod
    def quick(cls, seed: int = 0) -> "Case2Config":
        """The shipped 40 basins; short budgets so that the notebook runs in a few minutes on 2 cores."""
        from dplpaper.experiments.streamflow_vic import VICSettings
        return cls(mode="quick", quick_data=True, seeds=(seed,),
                   dpl=DPLSettings(nmul=16, epochs=50, batch_sites=40, eval_every=10, lr=3e-3),
                   regionalization_max_evals=4000, regionalization_complexes=2, regionalization_refine_steps=300,
                   sceua_max_evals=3000, sceua_complexes=7, vic=VICSettings.quick(),
                   dynamic=DPLSettings(net="dynamic", nmul=16, epochs=10, batch_sites=40, eval_every=5, lr=3e-3,
                                       lstm_hidden=32),
                   lstm=LSTMSettings(epochs=20, batch_sites=40, eval_every=5, lr=1e-2, hidden=32, dropout=0.0))

    @classmethod
    def full(cls, seed: int = 0) -> "Case2Config":
        """All 426 basins, 100 epochs, 3 seeds, SCE-UA budgets of 20,000 (regionalization, then 1,500
        gradient steps to convergence) and 10,000 (per basin)."""
        from dplpaper.experiments.streamflow_vic import VICSettings
        return cls(mode="full", quick_data=None, seeds=(seed, seed + 1, seed + 2),
                   dpl=DPLSettings(nmul=16, epochs=100, batch_sites=100, eval_every=10, lr=1e-3),
                   regionalization_max_evals=20000, regionalization_complexes=7,
                   regionalization_refine_steps=1500, regionalization_refine_max_steps=6000,
                   sceua_max_evals=10000, sceua_complexes=7, vic=VICSettings.full(),
                   # sized for 2 CPU cores (about 40 min per seed): LSTM 64, 30 epochs; the dPL papers used 256
                   dynamic=DPLSettings(net="dynamic", nmul=16, epochs=30, batch_sites=100, eval_every=10, lr=3e-3,
                                       lstm_hidden=64),
                   lstm=LSTMSettings(epochs=100, batch_sites=100, eval_every=10, lr=1e-3, hidden=256, dropout=0.4))


@dataclass
class Case3Config:
    """Case 3 (PUB) settings; :meth:`quick` and :meth:`full` are the two modes.

    Attributes:
        period: training and test period (same for both; :data:`PUB_PERIOD`).
        k_folds, fold_seed: random PUB folds over the basins.
        attribute_sets: label -> attribute names (dPL is run with each).
        regionalization_sets: labels of ``attribute_sets`` the regionalization baseline uses.
        fractions, scaling_seeds, scaling_attributes: the scaling curve (nested subsets of the
            training folds; one subset draw per seed).
        scaling_regionalization: also fit the regionalization at every share (else only at 100 %).
        regionalization_max_evals, regionalization_complexes, regionalization_refine_steps,
        regionalization_refine_max_steps, regionalization_refine_lr: as in :class:`Case2Config`.
    """

    mode: str = "quick"
    quick_data: bool | None = True
    basins: tuple | None = None
    period: tuple = PUB_PERIOD
    warmup_days: int = 365
    k_folds: int = 10
    fold_seed: int = 0
    attribute_sets: dict = field(default_factory=lambda: {"8": tuple(BECK_ATTRIBUTES_CAMELS), "27": ATTRIBUTES_27})
    regionalization_sets: tuple = ("8",)
    dpl: DPLSettings = field(default_factory=DPLSettings)
    seeds: tuple = (0,)
    regionalization_max_evals: int = 20000
    regionalization_complexes: int = 7
    regionalization_refine_steps: int = 0
    regionalization_refine_max_steps: int | None = None
    regionalization_refine_lr: float = 0.05
    objective: str = "kge"
    fractions: tuple = (0.02, 0.05, 0.125, 0.25, 0.5, 0.75, 1.0)
    scaling_seeds: tuple = (0, 1, 2)
    scaling_attributes: str = "8"
    scaling_regionalization: bool = False
    forcing: str = "daymet"

    @classmethod
    def quick(cls, seed: int = 0) -> "Case3Config":
        """The shipped 40 basins in 4 folds (10 held out each), short budgets."""
        return cls(mode="quick", quick_data=True, k_folds=4, fold_seed=seed, seeds=(seed,),
                   dpl=DPLSettings(nmul=16, epochs=30, batch_sites=40, lr=3e-3),
                   regionalization_max_evals=2000, regionalization_complexes=2, regionalization_refine_steps=300,
                   fractions=(0.125, 0.25, 0.5, 1.0), scaling_seeds=(seed,))

    @classmethod
    def full(cls, seed: int = 0) -> "Case3Config":
        """All 426 basins in 10 folds; 100 epochs; 3 seeds for the scaling curve. The regionalization
        of every fold: SCE-UA over its initial population and a first loop (2,000 evaluations), then
        1,500 gradient steps to convergence (ten folds of 20,000 evaluations would take ten hours)."""
        return cls(mode="full", quick_data=None, k_folds=10, fold_seed=seed, seeds=(seed,),
                   dpl=DPLSettings(nmul=16, epochs=100, batch_sites=100, lr=1e-3),
                   regionalization_max_evals=2000, regionalization_complexes=7,
                   regionalization_refine_steps=1500, regionalization_refine_max_steps=6000,
                   fractions=(0.02, 0.05, 0.125, 0.25, 0.5, 0.75, 1.0), scaling_seeds=(seed, seed + 1, seed + 2))


# ============================================================================ data assembly
def camels_caravan_basins(quick: bool | None = None) -> list[str]:
    """Basins of the CAMELS 531 list that have Caravan files (426 full; the quick subset's 40)."""
    b531 = set(load_basin_list("531", quick=quick))
    return [b for b in list_caravan_basins(quick=quick) if b in b531]


#: forcing products of Cases 2 and 3 (``forcing=`` of :func:`load_streamflow_data` and the configs)
FORCINGS = ("daymet", "era5land")


def load_streamflow_data(basins: Sequence[str] | None = None, quick: bool | None = None,
                         pet_correction: bool = True, forcing: str = "daymet") -> tuple[xr.Dataset, xr.Dataset]:
    """(series, attributes) for ``basins`` (default :func:`camels_caravan_basins`), sites aligned.

    series: ``precip``, ``temp``, ``pet``, ``streamflow`` (mm/day, degC), dims (site, time);
    attributes: every CAMELS attribute, dim site, same site order. Streamflow is always the USGS
    record in Caravan's CAMELS-US files (mm/day); the forcing depends on ``forcing``:

    * ``"daymet"`` (default; the forcing of the dPL papers and of the field's published CAMELS
      benchmarks): NCAR's original CAMELS Daymet basin means, precipitation ``prcp``, mean
      temperature (tmax+tmin)/2, and PET by Hargreaves (1985) from tmin/tmax and the file's
      latitude (:func:`dplpaper.data.load_camels_daymet`). The record is cut to the days both
      Daymet and Caravan cover (1981-01-01..2014-12-31).
    * ``"era5land"``: Caravan's ERA5-Land P, T and PET. ``pet_correction`` (default True):
      ERA5-Land's potential evaporation is several times too high over CONUS (median 13 mm/day
      over the quick basins against CAMELS' 2.8 mm/day Priestley-Taylor PET). Each basin's PET
      series is therefore scaled by ``pet_mean`` (CAMELS attribute, mm/day) / its ERA5-Land mean
      over the whole Caravan record (1981-2014): ERA5-Land keeps the day-to-day and seasonal
      shape, CAMELS sets the long-term level. Only forcing and a static attribute enter (no
      streamflow), so nothing leaks between periods or basins. The factor is kept in
      ``series["pet_scale"]``. ERA5-Land days are UTC days, Daymet's are local days: in 213 of
      the 298 basins of HUC 01-11 ERA5-Land precipitation lines up better with Daymet one day
      earlier, a timing error a daily model cannot undo (see ``book/case2.md``).
    """
    if forcing not in FORCINGS:
        raise ValueError(f"forcing must be one of {FORCINGS}, got {forcing!r}")
    ids = camels_caravan_basins(quick) if basins is None else [str(b) for b in basins]
    attrs = load_camels_attributes(ids, quick=quick)
    ds = load_caravan(ids, quick=quick, attributes=attrs)
    if forcing == "daymet":
        ds = _with_daymet_forcing(ds, ids, quick)
        ds.attrs["forcing"] = "daymet"
        return ds, attrs
    if pet_correction:
        era = ds["pet"].where(ds["pet"] > 0, 0.0).mean("time")
        scale = (attrs["pet_mean"] / era).astype(np.float32)
        if not bool(np.isfinite(scale).all()):
            bad = str(ds["site"].values[np.flatnonzero(~np.isfinite(scale.values))[0]])
            raise ValueError(f"PET correction undefined for basin {bad} (pet_mean or ERA5-Land PET missing/zero)")
        pet_attrs = dict(ds["pet"].attrs)
        ds["pet"] = (ds["pet"] * scale).astype(np.float32)
        pet_attrs["long_name"] = ("potential evaporation (ERA5-Land, scaled per basin to the CAMELS pet_mean "
                                  "long-term mean)")
        ds["pet"].attrs.update(pet_attrs)
        ds["pet_scale"] = scale.assign_attrs(units="1", long_name="CAMELS pet_mean / ERA5-Land mean PET 1981-2014")
    ds.attrs["forcing"] = "era5land"
    return ds, attrs


def load_daymet_forcing(basins: Sequence[str], quick: bool | None = None) -> xr.Dataset:
    """Daymet ``precip``, ``temp``, ``pet`` (Hargreaves), ``tmin``, ``tmax`` (site, time) of ``basins``,
    read from the CAMELS files once and cached as NetCDF (:mod:`dplpaper.data.cache`)."""
    from dplpaper.data import cache, load_camels_daymet, registry
    from dplpaper.data.camels import find_forcing_file
    ids = [str(b) for b in basins]
    root = registry.resolve("camels_us", quick)
    files = [find_forcing_file(root, b, "daymet") for b in ids]
    keep = ["precip", "temp", "pet", "tmin", "tmax"]

    def build() -> xr.Dataset:
        return load_camels_daymet(ids, quick=quick)[keep]

    return cache.cached("daymet_forcing", files, build, params={"basins": ids, "vars": keep})


def _with_daymet_forcing(ds: xr.Dataset, ids: list[str], quick: bool | None) -> xr.Dataset:
    """Caravan's streamflow with Daymet's forcing, on the days both cover."""
    dm = load_daymet_forcing(ids, quick=quick)
    t0 = max(pd.Timestamp(ds["time"].values[0]), pd.Timestamp(dm["time"].values[0]))
    t1 = min(pd.Timestamp(ds["time"].values[-1]), pd.Timestamp(dm["time"].values[-1]))
    q = ds["streamflow"].sel(time=slice(t0, t1))
    dm = dm.sel(time=slice(t0, t1), site=ids)
    if dm.sizes["time"] != q.sizes["time"]:
        raise ValueError(f"Daymet and Caravan calendars differ over {t0.date()}..{t1.date()} "
                         f"({dm.sizes['time']} vs {q.sizes['time']} days)")
    out = xr.Dataset({v: dm[v].astype(np.float32).assign_attrs(dm[v].attrs) for v in dm.data_vars},
                     coords={"site": ids, "time": q["time"].values})
    out["streamflow"] = q.astype(np.float32).assign_attrs(q.attrs)
    for c in ("lat", "lon"):
        if c in ds.coords:
            out = out.assign_coords({c: ("site", ds[c].values)})
    return out


def attribute_matrix(attrs: xr.Dataset, basins: Sequence[str], names: Sequence[str],
                     fill_basins: Sequence[str] | None = None) -> np.ndarray:
    """Raw attributes ``[site, n_attr]`` (float64) of ``basins``; NaN replaced by the mean over
    ``fill_basins`` (the training basins; default ``basins``). Raises if a column is missing or
    all-NaN over ``fill_basins``."""
    missing = [n for n in names if n not in attrs]
    if missing:
        raise KeyError(f"CAMELS attributes lack {missing}")
    fill_basins = list(basins) if fill_basins is None else list(fill_basins)
    a = np.stack([attrs[n].sel(site=list(basins)).values.astype(np.float64) for n in names], axis=1)
    f = np.stack([attrs[n].sel(site=fill_basins).values.astype(np.float64) for n in names], axis=1)
    with np.errstate(all="ignore"):
        mean = np.nanmean(f, axis=0) if len(f) else np.full(len(names), np.nan)
    bad = [names[j] for j in range(len(names)) if not np.isfinite(mean[j])]
    if bad:
        raise ValueError(f"attributes {bad} have no finite value over the training basins")
    nan = np.isnan(a)
    if nan.any():
        a = np.where(nan, mean[None, :], a)
    return a


def fit_attribute_normalizer(attrs: xr.Dataset, train_basins: Sequence[str], names: Sequence[str]) -> Normalizer:
    """A :class:`Normalizer` fitted on the training basins' attributes only (log for :data:`LOG_ATTRIBUTES`)."""
    x = attribute_matrix(attrs, train_basins, names, fill_basins=train_basins)
    logf = [j for j, n in enumerate(names) if n in LOG_ATTRIBUTES]
    return Normalizer(log_features=logf, names=list(names)).fit(x)


def forcing_array(sub: xr.Dataset) -> np.ndarray:
    """``[time, site, 3]`` float32 HBV forcing (precip, temp, pet) of a (site, time) Dataset.

    ERA5-Land potential evaporation is slightly negative on some days (condensation, dew); HBV
    needs PET >= 0, so negative PET (and precipitation) is set to 0 here."""
    f = np.stack([sub[v].transpose("time", "site").values for v in FORCING_VARS], axis=-1).astype(np.float32)
    f[..., 0] = np.maximum(f[..., 0], 0.0)
    f[..., 2] = np.maximum(f[..., 2], 0.0)
    return np.ascontiguousarray(f)


def _time_slice(ds: xr.Dataset, period: tuple[str, str], warmup_days: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = pd.Timestamp(period[0]) - pd.Timedelta(days=int(warmup_days))
    end = pd.Timestamp(period[1])
    t = pd.DatetimeIndex(ds["time"].values)
    if start < t[0] or end > t[-1]:
        raise ValueError(f"period {period} with {warmup_days} warm-up days needs {start.date()}..{end.date()}, "
                         f"but the data cover {t[0].date()}..{t[-1].date()}")
    return start, end


def assemble(ds: xr.Dataset, attrs: xr.Dataset, basins: Sequence[str], period: tuple[str, str],
             attribute_names: Sequence[str], normalizer: Normalizer, warmup_days: int = 0,
             fill_basins: Sequence[str] | None = None) -> TrainingData:
    """Tensors of ``basins`` over ``warmup_days`` before ``period`` plus the period.

    Returns :class:`TrainingData` with ``forcing [time, site, 3]`` (precip, temp, pet; float32),
    ``attributes [site, n_attr]`` (normalized with ``normalizer``; NaN filled with the mean over
    ``fill_basins``, i.e. 0 after standardization when those are the normalizer's basins) and
    ``target [time, site]`` = observed streamflow (mm/day), NaN over the warm-up days (never scored).
    """
    basins = [str(b) for b in basins]
    start, end = _time_slice(ds, period, warmup_days)
    sub = ds.sel(site=basins, time=slice(start, end))
    forcing = forcing_array(sub)
    target = sub["streamflow"].transpose("time", "site").values.astype(np.float32).copy()
    target[:warmup_days] = np.nan
    raw = attribute_matrix(attrs, basins, attribute_names,
                           fill_basins=basins if fill_basins is None else fill_basins)
    a = normalizer.transform(raw).astype(np.float32)
    return TrainingData(forcing=torch.from_numpy(np.ascontiguousarray(forcing)), attributes=torch.from_numpy(a),
                        target=torch.from_numpy(target), site_ids=basins)


def _period_index(ds: xr.Dataset, period, warmup_days) -> pd.DatetimeIndex:
    start, end = _time_slice(ds, period, warmup_days)
    t = pd.DatetimeIndex(ds["time"].sel(time=slice(start, end)).values)
    return t[warmup_days:]


def score(sim: np.ndarray, obs: np.ndarray, basins: Sequence[str]) -> pd.DataFrame:
    """Per-basin NSE and KGE (2012 form) of ``sim``/``obs`` ``[time, site]`` -> DataFrame (site, nse, kge, n_obs)."""
    sim = np.asarray(sim, dtype=np.float64)
    obs = np.asarray(obs, dtype=np.float64)
    return pd.DataFrame({"site": list(basins), "nse": metrics.nse(sim, obs), "kge": metrics.kge(sim, obs, variant="2012"),
                         "n_obs": (~np.isnan(obs)).sum(0)})


def _sim_array(sim: np.ndarray, basins, times, name: str) -> xr.DataArray:
    da = xr.DataArray(np.asarray(sim, dtype=np.float32), dims=("time", "site"),
                      coords={"time": times, "site": list(basins)}, name=name)
    da.attrs.update(units="mm/day", long_name=f"simulated streamflow ({name})")
    return da.transpose("site", "time")


# ============================================================================ dPL
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
    times = _period_index(ds, test_period, warmup_days)
    return DPLRun(metrics=score(sim, obs_test, test_basins), simulation=_sim_array(sim, test_basins, times, "dPL"),
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
    times = _period_index(ds, test_period, warmup_days)
    return DPLRun(metrics=score(sim, obs_test, test_basins), simulation=_sim_array(sim, test_basins, times, "LSTM"),
                  history=res.history, parameters=np.zeros((len(test_basins), 0, 1), np.float32), model=res.model,
                  normalizer=norm, wall_time_s=time.perf_counter() - t0)


# ============================================================================ baselines (numpy HBV)
def _hbv_table(routing: bool = True):
    return HBV(nmul=1, routing=routing, backend="torch").parameter_table


def _hbv_numpy(forcing: np.ndarray, params_unit: np.ndarray, warmup: int, routing: bool = True) -> np.ndarray:
    """HBV (one component) forward on NumPy: forcing ``[time, site, 3]``, params ``[site, n]`` unit cube
    -> streamflow ``[time - warmup, site]``. Uses the fused C kernel when available, else the torch loop."""
    table = _hbv_table(routing)
    phys = table.to_physical(np.clip(params_unit, 0.0, 1.0), dim=-1)[:, :, None]
    from dplpaper.models import hbv_fused
    if hbv_fused.available():
        return hbv_fused.hbv_forward_numpy(np.ascontiguousarray(forcing, dtype=np.float32), phys, warmup=warmup)
    m = HBV(nmul=1, routing=routing, backend="torch")
    with torch.no_grad():
        return m(torch.from_numpy(np.ascontiguousarray(forcing, dtype=np.float32)),
                 torch.from_numpy(np.clip(params_unit, 0, 1)[:, :, None].astype(np.float32)), warmup=warmup
                 )["streamflow"].numpy()


def _cost(sim: np.ndarray, obs: np.ndarray, objective: str) -> np.ndarray:
    """1 - NSE or 1 - KGE(2012) per column of ``[time, n]`` (reference implementation, :mod:`dplpaper.metrics`)."""
    if objective == "nse":
        return 1.0 - metrics.nse(sim.astype(np.float64), obs.astype(np.float64))
    if objective == "kge":
        return 1.0 - metrics.kge(sim.astype(np.float64), obs.astype(np.float64), variant="2012")
    raise ValueError(f"objective must be 'nse' or 'kge', got {objective!r}")


class _CandidateRunner:
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
        self.table = _hbv_table(routing)
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
            q = _hbv_numpy(self.tiled, flat, self.warmup, self.routing)
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
            out[lo:lo + sim.shape[1]] = self._cost(sim)
        return out

    def _cost(self, sim: np.ndarray) -> np.ndarray:
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
    table = _hbv_table(routing)
    n_par = len(table)
    norm = Normalizer(names=list(attribute_names))  # only for assemble's shape; TF standardizes itself
    a_train = attribute_matrix(attrs, train_basins, attribute_names, fill_basins=train_basins)
    a_test = attribute_matrix(attrs, test_basins, attribute_names, fill_basins=train_basins)
    norm.mean, norm.std = np.zeros(len(attribute_names)), np.ones(len(attribute_names))
    tr = assemble(ds, attrs, train_basins, train_period, attribute_names, norm, warmup_days, fill_basins=train_basins)
    f_tr = tr.forcing.numpy()
    obs_tr = tr.target[warmup_days:].numpy()
    S = len(train_basins)

    runner = _CandidateRunner(f_tr, obs_tr, warmup_days, objective, routing, chunk)

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
    sim = _hbv_numpy(te.forcing.numpy(), theta_test, warmup_days, routing)
    obs = te.target[warmup_days:].numpy()
    times = _period_index(ds, test_period, warmup_days)
    return BaselineRun(metrics=score(sim, obs, test_basins), simulation=_sim_array(sim, test_basins, times, "regionalization"),
                       parameters=theta_test, transfer_functions=tf, learning_curve=lc,
                       wall_time_s=time.perf_counter() - t0)


def run_sceua_hbv(ds: xr.Dataset, basins: Sequence[str], train_period: tuple[str, str], test_period: tuple[str, str],
                  max_evals: int = 10000, n_complexes: int = 7, objective: str = "nse", seed: int = 0,
                  warmup_days: int = 365, routing: bool = True, chunk: int = 8, max_batch: int = 64,
                  progress: bool = False) -> BaselineRun:
    """Per-basin SCE-UA calibration of HBV (one component) on ``train_period``, all basins in
    lockstep (:func:`dplpaper.calibrate.sceua.sceua`); evaluated on ``test_period``. The
    objective runs ``chunk`` candidates of every basin per model call (memory: the training
    forcing tiled ``chunk`` times)."""
    t0 = time.perf_counter()
    basins = [str(b) for b in basins]
    table = _hbv_table(routing)
    n_par = len(table)
    start, end = _time_slice(ds, train_period, warmup_days)
    sub = ds.sel(site=basins, time=slice(start, end))
    f_tr = forcing_array(sub)
    obs_tr = sub["streamflow"].transpose("time", "site").values[warmup_days:]

    runner = _CandidateRunner(f_tr, obs_tr, warmup_days, objective, routing, chunk)

    def objective_fn(u: np.ndarray) -> np.ndarray:  # [S, K, n] -> [S, K]
        c = runner.costs(np.ascontiguousarray(u.transpose(1, 0, 2))).T
        return np.where(np.isnan(c), np.inf, c)

    res = sceua(objective_fn, n_par, n_sites=len(basins), n_complexes=n_complexes, max_evals=max_evals,
                seed=seed, progress=progress, max_batch=max_batch, keep_param_history=False)
    s2, e2 = _time_slice(ds, test_period, warmup_days)
    te = ds.sel(site=basins, time=slice(s2, e2))
    f_te = forcing_array(te)
    sim = _hbv_numpy(f_te, res.best_params, warmup_days, routing)
    obs = te["streamflow"].transpose("time", "site").values[warmup_days:]
    times = _period_index(ds, test_period, warmup_days)
    return BaselineRun(metrics=score(sim, obs, basins), simulation=_sim_array(sim, basins, times, "SCE-UA"),
                       parameters=res.best_params, transfer_functions=None, learning_curve=res.learning_curve(),
                       wall_time_s=time.perf_counter() - t0)


# ============================================================================ Case 2 driver
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
              write: bool = True, tag: str = "", progress: bool = False) -> dict:
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
        from dplpaper.experiments import streamflow_vic as sv
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
        from dplpaper.experiments import streamflow_vic as sv
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
    if write:
        out = results_dir("case2")
        table.to_csv(out / f"metrics_{config.mode}{tag}.csv", index=False)
        med.to_csv(out / f"medians_{config.mode}{tag}.csv")
        _write_simulations(simds, out / f"simulations_{config.mode}{tag}.nc")
        if "surrogate_accuracy" in extra:
            extra["surrogate_accuracy"].to_csv(out / f"vic_surrogate_accuracy_{config.mode}{tag}.csv", index=False)
    return {"metrics": table, "medians": med, "simulations": simds, "histories": hist, "wall_time_s": wall,
            "basins": basins, **extra}


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
        out.to_csv(results_dir("case2") / f"forcing_comparison_{config.mode}{tag}.csv", index=False)
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
                  fold_indices: Sequence[int] | None = None) -> pd.DataFrame:
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
        table.to_csv(results_dir("case3") / f"pub_metrics_{config.mode}{tag}.csv", index=False)
    return table


def scaling_curve(ds: xr.Dataset, attrs: xr.Dataset, folds: list[list[str]], config: Case3Config,
                  write: bool = True, pub_table: pd.DataFrame | None = None, tag: str = "",
                  progress: bool = False, regionalization: bool = True,
                  fold_indices: Sequence[int] | None = None) -> pd.DataFrame:
    """PUB scaling curve: for every fold, seed and share ``f`` of ``config.fractions``, train gA +
    HBV on the nested subset of the training folds (:func:`dplpaper.data.basin_fractions`, one
    permutation per seed and fold) and test on the held-out fold. Regionalization is fitted at
    share 1 (and at every share if ``config.scaling_regionalization``); at share 1 it is the very
    fit of :func:`run_pub_folds` (same folds, attributes and seed), so with ``pub_table`` (that
    function's table) its rows are taken from there instead of being fitted again. Returns the
    per-basin long table ``fraction, seed, fold, n_train, site, method, nse, kge`` (and
    ``budget_converged`` on the regionalization's rows where known); writes
    ``results/case3/scaling_<mode><tag>.csv`` (summaries: :func:`scaling_summary`).
    ``regionalization=False``: dPL rows only (e.g. when the PUB run, made apart, holds the baseline).
    ``fold_indices``: test only these folds (default all)."""
    names = config.attribute_sets[config.scaling_attributes]
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
                r = run_dpl_hbv(ds, attrs, sub, test, config.period, config.period, names, config.dpl, s,
                                config.warmup_days)
                rows.append(r.metrics.assign(fraction=frac, seed=s, fold=i, n_train=len(sub), method="dPL"))
                if regionalization and (config.scaling_regionalization or frac == 1.0):
                    if frac == 1.0 and s != config.scaling_seeds[0] and not config.scaling_regionalization:
                        continue
                    reused = None
                    if pub_table is not None and frac == 1.0:
                        sel = pub_table[(pub_table["fold"] == i) & (pub_table["attributes"] == config.scaling_attributes)
                                        & pub_table["method"].str.startswith("regionalization")
                                        & (pub_table["seed"] == int(s))]
                        if len(sel) == len(test):
                            keep = [c for c in ("site", "nse", "kge", "n_obs", "budget_converged") if c in sel]
                            reused = sel[keep].reset_index(drop=True)
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
        table.to_csv(results_dir("case3") / f"scaling_{config.mode}{tag}.csv", index=False)
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
