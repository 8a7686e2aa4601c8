"""Streamflow data of Cases 2 and 3: CAMELS basins, forcing, observed flow, and model tensors.

Data. The CAMELS basins of the 531 list that also have Caravan's CAMELS-US files (426 in the full
set; the shipped quick subset has 40), with observed streamflow from the USGS record in Caravan's
files (mm/day, 1981-2014) and the CAMELS v2.0 static attributes. Forcing (``forcing=``):
``"daymet"`` (the default; the CAMELS basin-mean Daymet files, PET by Hargreaves from tmin/tmax and
latitude) or ``"era5land"`` (Caravan's ERA5-Land precipitation, temperature and PET).

Attributes. NaN attribute values (e.g. ``geol_porostiy`` of a few basins) are replaced by the mean
over the *training* basins; standardization (:class:`dplpaper.nets.Normalizer`, with a log
transform for ``area_gages2``) is fitted on the training basins only. Streamflow signatures
(``q_mean``, ``runoff_ratio``, ...) are never inputs: they are computed from the observed flow and
would leak held-out basins' data in PUB.

Every simulation runs ``warmup_days`` extra days before its period to spin up the states
(:func:`assemble`); those days are not scored.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
import xarray as xr

from dplpaper.calibrate.regionalization import BECK_ATTRIBUTES_CAMELS  # noqa: F401  (the 8-attribute set)
from dplpaper.data.camels import load_basin_list, load_camels_attributes
from dplpaper.data.caravan import list_caravan_basins, load_caravan
from dplpaper.nets import Normalizer
from dplpaper.train import TrainingData

__all__ = ["FORCING_VARS", "ATTRIBUTES_27", "BECK_ATTRIBUTES_CAMELS", "LOG_ATTRIBUTES", "FORCINGS",
           "camels_caravan_basins", "load_streamflow_data", "load_daymet_forcing", "attribute_matrix",
           "fit_attribute_normalizer", "forcing_array", "time_slice", "assemble", "period_index", "sim_array"]

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


def time_slice(ds: xr.Dataset, period: tuple[str, str], warmup_days: int) -> tuple[pd.Timestamp, pd.Timestamp]:
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
    start, end = time_slice(ds, period, warmup_days)
    sub = ds.sel(site=basins, time=slice(start, end))
    forcing = forcing_array(sub)
    target = sub["streamflow"].transpose("time", "site").values.astype(np.float32).copy()
    target[:warmup_days] = np.nan
    raw = attribute_matrix(attrs, basins, attribute_names,
                           fill_basins=basins if fill_basins is None else fill_basins)
    a = normalizer.transform(raw).astype(np.float32)
    return TrainingData(forcing=torch.from_numpy(np.ascontiguousarray(forcing)), attributes=torch.from_numpy(a),
                        target=torch.from_numpy(target), site_ids=basins)


def period_index(ds: xr.Dataset, period, warmup_days) -> pd.DatetimeIndex:
    start, end = time_slice(ds, period, warmup_days)
    t = pd.DatetimeIndex(ds["time"].sel(time=slice(start, end)).values)
    return t[warmup_days:]


def sim_array(sim: np.ndarray, basins, times, name: str) -> xr.DataArray:
    da = xr.DataArray(np.asarray(sim, dtype=np.float32), dims=("time", "site"),
                      coords={"time": times, "site": list(basins)}, name=name)
    da.attrs.update(units="mm/day", long_name=f"simulated streamflow ({name})")
    return da.transpose("site", "time")
