"""Soil-moisture data of Case 1: the 412 SMAP cells (real) or their twin, as arrays for the models.

:func:`load_case1` builds a :class:`Case1Data` from the hydroDL CONUSv4f1 cells
(:func:`dplpaper.data.load_smap`: NLDAS-2 forcing, SMAP L3 soil moisture, static attributes) on the
record 2015-04-01..2017-03-31; the ``"twin"`` variant replaces the observations by the VIC-style
model's soil moisture from a known parameter field (:func:`dplpaper.data.make_twin`) with SMAP's
gaps and Gaussian noise. Units: soil moisture m3/m3, ET mm/day, forcing mm/day and degC, texture %.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from dplpaper.data.smap import load_smap
from dplpaper.data.twin import make_twin
from dplpaper.models.vicwb import PARAMETER_TABLE, VICStyleModel

__all__ = ["ATTRIBUTES", "SOIL_VARS", "FORCING_VARS", "PARAM_NAMES", "RECORD", "CASE1_DATA_FIELDS", "Case1Data",
           "period_slice", "legacy_spunup", "load_case1"]

#: static attributes fed to gA / gZ (the hydroDL CONUSv4f1 constants)
ATTRIBUTES = ("Bulk", "Capa", "Clay", "NDVI", "Sand", "Silt", "flag_albedo", "flag_extraOrd",
              "flag_landcover", "flag_roughness", "flag_vegDense", "flag_waterbody")
#: soil texture (percent, renormalized to sum to 100) that sets the VIC-style model's soil
SOIL_VARS = ("sand", "clay", "silt")
FORCING_VARS = ("precip", "temp", "pet")
PARAM_NAMES = tuple(PARAMETER_TABLE.names)
RECORD = ("2015-04-01", "2017-03-31")
#: fields of the Case 1 config the data depend on (key of the in-memory cache)
CASE1_DATA_FIELDS = ("quick_data", "train_period", "test_period", "twin_noise", "twin_seed", "variant")


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


def legacy_spunup(forcing: np.ndarray, params: np.ndarray, soil: np.ndarray,
                   outputs=("soil_moisture", "et")) -> dict[str, np.ndarray]:
    """Run the VIC-style model on ``forcing [T, S, 3]`` after one spin-up pass over its first year."""
    n_spin = min(365, forcing.shape[0] - 1)
    f = np.concatenate([forcing[:n_spin], forcing], axis=0)
    soil_d = {k: soil[:, i] for i, k in enumerate(SOIL_VARS)}
    out = VICStyleModel().run(f, params, warmup=n_spin, soil_properties=soil_d)
    return {k: out[k] for k in outputs}


_DATA_CACHE: dict = {}


def load_case1(cfg, variant: str | None = None) -> Case1Data:
    """Build the real or twin data set of Case 1 (kept in memory per settings).

    ``cfg``: a :class:`dplpaper.experiments.configs.Case1Config` (its fields :data:`CASE1_DATA_FIELDS`,
    ``spinup_days`` and ``key`` are read; the data layer does not import the experiments)."""
    variant = variant or cfg.variant
    key = cfg.key(CASE1_DATA_FIELDS, variant=variant, spin=cfg.spinup_days)
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
        tw = make_twin(fds, lambda f, p: legacy_spunup(f, p, soil), att, len(PARAM_NAMES),
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
