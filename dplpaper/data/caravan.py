"""Reader for the Caravan-derived CAMELS-US CSVs (``<gauge_id>.csv[.gz]``).

Format (see the data set's SOURCE.md): no header, no dates, comma-separated, 4 columns
P (ERA5-Land total precipitation, mm/day), T (ERA5-Land 2 m mean temperature, degC),
PET (ERA5-Land potential evaporation, mm/day), Q (observed streamflow, mm/day, Caravan
polygon area); ``NA`` marks missing Q. 12418 rows = daily 1981-01-01 .. 2014-12-31.
"""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import xarray as xr

from . import registry
from ._util import as_site_ids, parse_table, set_attrs
from .camels import load_camels_attributes, normalize_basin_id
from .errors import DataFormatError, DataNotFoundError

CARAVAN_START = "1981-01-01"
CARAVAN_END = "2014-12-31"
CARAVAN_DAYS = 12418
CARAVAN_VARS = (("precip", "mm/day", "precipitation (ERA5-Land total precipitation)"),
                ("temp", "degC", "daily mean 2 m air temperature (ERA5-Land)"),
                ("pet", "mm/day", "potential evaporation (ERA5-Land)"),
                ("streamflow", "mm/day", "observed streamflow (USGS via Caravan, polygon area)"))


def caravan_time() -> pd.DatetimeIndex:
    return pd.date_range(CARAVAN_START, CARAVAN_END, freq="D").as_unit("ns")


def read_caravan_file(path: Path) -> np.ndarray:
    """Parse one Caravan CSV (plain or gzipped) -> float array [12418, 4] (P, T, PET, Q); NA -> NaN.

    Raises DataFormatError for a wrong row count (truncated file), wrong field count, bad
    numbers, or missing values in P, T or PET (only Q may be NA).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError("file does not exist", file=path)
    raw = path.read_bytes()
    try:
        text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode()
    except (OSError, EOFError) as e:
        raise DataFormatError(f"corrupt gzip stream ({e}); truncated download?", file=path) from None
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
    return arr


def list_caravan_basins(quick: bool | None = None, root: Path | None = None) -> list[str]:
    root = Path(root) if root is not None else registry.resolve("caravan_camels_us", quick)
    files = sorted((root / "Caravan-CAMELS").glob("*.csv*"))
    return sorted({f.name.split(".")[0] for f in files if f.name.split(".")[0].isdigit()})


def load_caravan(basins: Iterable | None = None, quick: bool | None = None, root: Path | None = None,
                 attributes: xr.Dataset | None = None, use_cache: bool = False) -> xr.Dataset:
    """Caravan CAMELS-US series -> Dataset (site, time=1981-01-01..2014-12-31).

    Variables ``precip``, ``temp``, ``pet``, ``streamflow`` (see module docstring for units);
    coords ``lat``/``lon`` from the CAMELS attributes. ``basins=None``: every basin found.
    A requested basin without a file raises DataNotFoundError; one absent from the CAMELS
    attributes raises DataFormatError. ``use_cache=True`` reads/writes the NetCDF cache (float32).
    """
    root = Path(root) if root is not None else registry.resolve("caravan_camels_us", quick)
    ids = list_caravan_basins(root=root) if basins is None else [normalize_basin_id(b) for b in basins]
    if use_cache:
        from .cache import cached
        files = sorted((root / "Caravan-CAMELS").glob("*.csv*"))
        return cached("caravan", files, lambda: load_caravan(ids, root=root, attributes=attributes, quick=quick),
                      params={"basins": ids})
    if attributes is None:
        attributes = load_camels_attributes(quick=quick, groups=("topo",))
    attrs = _select(attributes, ids)
    data = np.empty((len(ids), CARAVAN_DAYS, 4), dtype=np.float32)
    for k, b in enumerate(ids):
        f = root / "Caravan-CAMELS" / f"{b}.csv.gz"
        if not f.is_file():
            f = root / "Caravan-CAMELS" / f"{b}.csv"
        if not f.is_file():
            raise DataNotFoundError(f"basin {b}: no Caravan file {b}.csv[.gz] in {root / 'Caravan-CAMELS'}")
        data[k] = read_caravan_file(f)
    ds = xr.Dataset(coords={"site": as_site_ids(ids), "time": caravan_time(),
                            "lat": ("site", attrs["gauge_lat"].values), "lon": ("site", attrs["gauge_lon"].values)})
    for j, (name, units, long) in enumerate(CARAVAN_VARS):
        ds[name] = (("site", "time"), data[:, :, j])
        set_attrs(ds[name], units, long)
    set_attrs(ds["lat"], "degrees_north", "gauge latitude")
    set_attrs(ds["lon"], "degrees_east", "gauge longitude")
    ds.attrs.update(source=str(root), title="Caravan CAMELS-US (ERA5-Land forcing, USGS Q)")
    return ds


def _select(attributes: xr.Dataset, ids: list[str]) -> xr.Dataset:
    have = set(attributes["site"].values.tolist())
    for b in ids:
        if b not in have:
            raise DataFormatError("basin is absent from the CAMELS attributes", site=b, field="gauge_id")
    return attributes.sel(site=ids)
