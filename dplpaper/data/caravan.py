"""Reader for the Caravan-derived CAMELS-US CSVs (``<gauge_id>.csv[.gz]``).

Format (see the data set's SOURCE.md): no header, no dates, comma-separated, 4 columns
P (ERA5-Land total precipitation, mm/day), T (ERA5-Land 2 m mean temperature, degC),
PET (ERA5-Land potential evaporation, mm/day), Q (observed streamflow, mm/day, Caravan
polygon area); ``NA`` marks missing Q. 12418 rows = daily 1981-01-01 .. 2014-12-31.

Files are read through :func:`dplpaper.data._util.read_text` (gzip by magic number, not name).
Plausibility checks raise :class:`~dplpaper.data.errors.ImplausibleDataError`: ``"range"`` (P in
0..2000 mm/day, T in -80..65 degC (catches Kelvin), PET in :data:`PET_RANGE`, Q in 0..5000 mm/day;
all finite, only Q may be ``NA``; -999 or other foreign missing markers refused) and, in
:func:`load_caravan`, ``"q_mean"`` (mean Q over the water years 1990-2009 within
:data:`Q_MEAN_RATIO` x the CAMELS ``q_mean``; wider than for the NCAR files because Caravan
divides by its polygon area: real ratios 0.82-4.05). ``skip_checks`` turns checks off.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import xarray as xr

from . import registry
from ._util import CHECKS_VERSION, as_site_ids, check_q_mean, check_range, parse_table, read_text, set_attrs, skip_set
from .camels import load_camels_attributes, normalize_basin_id
from .errors import DataFormatError, DataNotFoundError, DataSetIncompleteError

CARAVAN_START = "1981-01-01"
CARAVAN_END = "2014-12-31"
CARAVAN_DAYS = 12418
CARAVAN_VARS = (("precip", "mm/day", "precipitation (ERA5-Land total precipitation)"),
                ("temp", "degC", "daily mean 2 m air temperature (ERA5-Land)"),
                ("pet", "mm/day", "potential evaporation (ERA5-Land)"),
                ("streamflow", "mm/day", "observed streamflow (USGS via Caravan, polygon area)"))


#: ERA5-Land potential evaporation is negative on condensation days (real files: -4.3 .. 80 mm/day)
PET_RANGE = (-20.0, 150.0)
#: mean Q / CAMELS q_mean accepted (real files 0.82-4.05: polygon vs GAGES-II area); a file
#: in ft3/s (a factor area/2.45 ~ 100s) or in m3/s is outside
Q_MEAN_RATIO = (0.1, 10.0)


def caravan_time() -> pd.DatetimeIndex:
    return pd.date_range(CARAVAN_START, CARAVAN_END, freq="D").as_unit("ns")


def read_caravan_file(path: Path, skip_checks=None) -> np.ndarray:
    """Parse one Caravan CSV (plain or gzipped) -> float array [12418, 4] (P, T, PET, Q); NA -> NaN.

    Raises DataFormatError for a wrong row count (truncated file), wrong field count, bad
    numbers, or missing values in P, T or PET (only Q may be NA); ImplausibleDataError for
    values outside the plausible ranges (module docstring; ``skip_checks={"range"}`` to load anyway).
    """
    path = Path(path)
    skip = skip_set(skip_checks)
    text = read_text(path)
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    names = ["P", "T", "PET", "Q"]
    try:
        arr = pd.read_csv(pd.io.common.StringIO(text), header=None, names=names, na_values=["NA"],
                          keep_default_na=False, dtype=float, engine="c").to_numpy()
        if arr.shape[1] != 4 or len(arr) != len(lines):
            raise ValueError
    except ValueError:
        arr = parse_table(lines, names, path, 1, sep=",").to_numpy()  # precise message
    if len(arr) != CARAVAN_DAYS:
        raise DataFormatError(f"{len(arr)} rows, expected {CARAVAN_DAYS} (daily {CARAVAN_START}..{CARAVAN_END}); "
                              "truncated file?", file=path, line=len(arr), field="row count")
    nan_forcing = np.isnan(arr[:, :3])
    if nan_forcing.any():
        i, j = np.argwhere(nan_forcing)[0]
        raise DataFormatError("missing forcing value (only Q may be NA)", file=path, line=int(i) + 1,
                              field=names[j])
    site = path.name.split(".")[0]
    when = caravan_time()
    for j, (name, lo_hi) in enumerate((("precip", None), ("temp", None), ("pet", PET_RANGE), ("streamflow", None))):
        check_range(arr[:, j], name, file=path, site=site, line_of=lambda i: i + 1, when_of=lambda i: when[i].date(),
                    field=names[j], lo_hi=lo_hi, allow_nan=(j == 3), skip=skip,
                    missing_marker="NA (Q only)")
    return arr


def list_caravan_basins(quick: bool | None = None, root: Path | None = None) -> list[str]:
    root = Path(root) if root is not None else registry.resolve("caravan_camels_us", quick)
    files = sorted((root / "Caravan-CAMELS").glob("*.csv*"))
    return sorted({f.name.split(".")[0] for f in files if f.name.split(".")[0].isdigit()})


def load_caravan(basins: Iterable | None = None, quick: bool | None = None, root: Path | None = None,
                 attributes: xr.Dataset | None = None, use_cache: bool = False, skip_checks=None) -> xr.Dataset:
    """Caravan CAMELS-US series -> Dataset (site, time=1981-01-01..2014-12-31).

    Variables ``precip``, ``temp``, ``pet``, ``streamflow`` (see module docstring for units);
    coords ``lat``/``lon`` from the CAMELS attributes. ``basins=None``: every basin found.
    A requested basin without a file raises DataNotFoundError; one absent from the CAMELS
    attributes raises DataFormatError. ``use_cache=True`` reads/writes the NetCDF cache (float32).
    ``skip_checks``: plausibility checks to turn off (module docstring).
    """
    skip = skip_set(skip_checks)
    root = Path(root) if root is not None else registry.resolve("caravan_camels_us", quick)
    ids = list_caravan_basins(root=root) if basins is None else [normalize_basin_id(b) for b in basins]
    if use_cache:
        from .cache import cached
        files = sorted((root / "Caravan-CAMELS").glob("*.csv*"))
        return cached("caravan", files, lambda: load_caravan(ids, root=root, attributes=attributes, quick=quick,
                                                             skip_checks=skip),
                      params={"basins": ids, "checks": CHECKS_VERSION, "skip_checks": sorted(skip)})
    if attributes is None:
        attributes = load_camels_attributes(quick=quick, groups=("topo",))
    attrs = _select(attributes, ids)
    q_means = None if "q_mean" in skip else _q_means(attributes, quick)
    data = np.empty((len(ids), CARAVAN_DAYS, 4), dtype=np.float32)
    for k, b in enumerate(ids):
        f = root / "Caravan-CAMELS" / f"{b}.csv.gz"
        if not f.is_file():
            f = root / "Caravan-CAMELS" / f"{b}.csv"
        if not f.is_file():
            raise DataNotFoundError(f"basin {b}: no Caravan file {b}.csv[.gz] in {root / 'Caravan-CAMELS'}")
        data[k] = read_caravan_file(f, skip_checks=skip)
        if q_means is not None and b in q_means:
            check_q_mean(data[k, :, 3], caravan_time(), q_means[b], file=f, site=b, skip=skip, bounds=Q_MEAN_RATIO)
    ds = xr.Dataset(coords={"site": as_site_ids(ids), "time": caravan_time(),
                            "lat": ("site", attrs["gauge_lat"].values), "lon": ("site", attrs["gauge_lon"].values)})
    for j, (name, units, long) in enumerate(CARAVAN_VARS):
        ds[name] = (("site", "time"), data[:, :, j])
        set_attrs(ds[name], units, long)
    set_attrs(ds["lat"], "degrees_north", "gauge latitude")
    set_attrs(ds["lon"], "degrees_east", "gauge longitude")
    ds.attrs.update(source=str(root), title="Caravan CAMELS-US (ERA5-Land forcing, USGS Q)")
    return ds


def _q_means(attributes: xr.Dataset, quick) -> dict | None:
    """{basin: CAMELS q_mean} from ``attributes`` or the registry's camels_hydro.txt (None if absent)."""
    if "q_mean" in attributes:
        a = attributes["q_mean"]
    else:
        from . import camels
        try:
            folder = registry.resolve("camels_us", quick) / "camels_attributes_v2.0"
        except DataSetIncompleteError:
            raise
        except DataNotFoundError:
            return None
        if not (folder / "camels_hydro.txt").is_file():
            return None
        a = camels.load_camels_attributes(quick=quick, groups=("hydro",))["q_mean"]
    return dict(zip(a["site"].values.tolist(), np.asarray(a.values, float).tolist()))


def _select(attributes: xr.Dataset, ids: list[str]) -> xr.Dataset:
    have = set(attributes["site"].values.tolist())
    for b in ids:
        if b not in have:
            raise DataFormatError("basin is absent from the CAMELS attributes", site=b, field="gauge_id")
    return attributes.sel(site=ids)
