"""Readers for the original CAMELS-US (NCAR) file formats -> ``xarray.Dataset``.

- attributes ``camels_{clim,geol,hydro,name,soil,topo,vege}.txt`` (``;``-separated, ``NA`` missing)
- basin-mean forcing ``<id>_lump_{cida,maurer,nldas}_forcing_leap.txt`` (Daymet, Maurer,
  Maurer-extended, NLDAS; four header lines: latitude, elevation m, area m2, column names)
- USGS streamflow ``<id>_streamflow_qc.txt`` (ft3/s; ``-999`` = missing, flag ``M``)
- basin lists (531 list, MHPI PUB folds)
- Leaf River NWIS daily CSV (``leaf_river_near_collins_data.csv``)

Files are read through :func:`dplpaper.data._util.read_text` (gzip found by its magic number,
UTF-8 or a clear error). Plausibility checks run at load time and raise
:class:`~dplpaper.data.errors.ImplausibleDataError` naming file, line/site, field and value:
``"range"`` (every forcing variable and the discharge finite and within
:data:`~dplpaper.data._util.PLAUSIBLE_RANGE`, e.g. temperature -80..65 degC, which catches Kelvin;
no missing marker other than the format's own, -999 in streamflow files), ``"tmin_tmax"``
(tmax < tmin on more than 20 % of days), ``"latitude"`` (header latitude in [-90, 90] and within
:data:`MAX_HEADER_LAT_OFFSET` degrees of ``gauge_lat``), ``"area"`` (``area_gages2`` plausible in
km2; the header area within a factor :data:`MAX_HEADER_AREA_RATIO` of it), ``"q_mean"`` (mean
observed flow 0.5..2 x the CAMELS ``q_mean``). ``skip_checks={"<name>", ...}`` (or ``"all"``)
turns checks off for the rare real case.

Every series dataset has dims ``(site, time)``, string site ids, ``lat``/``lon`` coordinates
(gauge location from ``camels_topo``), and ``units``/``long_name`` on each variable.
"""
from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from . import registry
from ._util import (as_site_ids, check_area_km2, check_daily, check_latitude, check_q_mean, check_range,
                    check_tmin_tmax, implausible, make_dates, parse_table, read_text, set_attrs, skip_set)
from .errors import DataFormatError, DataNotFoundError, DataSetIncompleteError
from .pet import hargreaves

CFS_TO_M3S = 0.0283168  # 1 ft3/s in m3/s

ATTRIBUTE_GROUPS = ("clim", "geol", "hydro", "name", "soil", "topo", "vege")
TEXT_ATTRIBUTES = {"high_prec_timing", "low_prec_timing", "geol_1st_class", "geol_2nd_class",
                   "dom_land_cover", "huc_02", "gauge_name"}

# units of the CAMELS v2.0 attributes (Addor et al. 2017, Table 1-3); "1" = dimensionless fraction
ATTRIBUTE_UNITS = {
    "p_mean": "mm/day", "pet_mean": "mm/day", "p_seasonality": "1", "frac_snow": "1", "aridity": "1",
    "high_prec_freq": "days/yr", "high_prec_dur": "days", "high_prec_timing": "season",
    "low_prec_freq": "days/yr", "low_prec_dur": "days", "low_prec_timing": "season",
    "geol_1st_class": "class", "glim_1st_class_frac": "1", "geol_2nd_class": "class",
    "glim_2nd_class_frac": "1", "carbonate_rocks_frac": "1", "geol_porostiy": "1",
    "geol_permeability": "log10(m2)",
    "q_mean": "mm/day", "runoff_ratio": "1", "slope_fdc": "1", "baseflow_index": "1", "stream_elas": "1",
    "q5": "mm/day", "q95": "mm/day", "high_q_freq": "days/yr", "high_q_dur": "days", "low_q_freq": "days/yr",
    "low_q_dur": "days", "zero_q_freq": "percent", "hfd_mean": "day of water year",
    "huc_02": "code", "gauge_name": "name",
    "soil_depth_pelletier": "m", "soil_depth_statsgo": "m", "soil_porosity": "1", "soil_conductivity": "cm/h",
    "max_water_content": "m", "sand_frac": "percent", "silt_frac": "percent", "clay_frac": "percent",
    "water_frac": "percent", "organic_frac": "percent", "other_frac": "percent",
    "gauge_lat": "degrees_north", "gauge_lon": "degrees_east", "elev_mean": "m", "slope_mean": "m/km",
    "area_gages2": "km2", "area_geospa_fabric": "km2",
    "frac_forest": "1", "lai_max": "m2/m2", "lai_diff": "m2/m2", "gvf_max": "1", "gvf_diff": "1",
    "dom_land_cover_frac": "1", "dom_land_cover": "class", "root_depth_50": "m", "root_depth_99": "m",
}

# forcing header name (lower-case) -> (standard name, units, long name)
FORCING_COLUMNS = {
    "dayl(s)": ("dayl", "s", "day length"),
    "prcp(mm/day)": ("precip", "mm/day", "precipitation"),
    "srad(w/m2)": ("srad", "W/m2", "incident shortwave radiation (daylight mean)"),
    "swe(mm)": ("swe", "mm", "snow water equivalent"),
    "tmax(c)": ("tmax", "degC", "daily maximum 2 m air temperature"),
    "tmin(c)": ("tmin", "degC", "daily minimum 2 m air temperature"),
    "vp(pa)": ("vp", "Pa", "water vapour pressure"),
}
#: header latitude minus ``gauge_lat`` beyond this (degrees) is refused (real files: |d| <= 0.62)
MAX_HEADER_LAT_OFFSET = 2.0
#: header area / ``area_gages2`` outside [1/x, x] is refused (real files: 0.25..2.51)
MAX_HEADER_AREA_RATIO = 10.0
FORCING_FILE_PATTERN = {"daymet": "{}_lump_cida_forcing_leap.txt", "maurer": "{}_lump_maurer_forcing_leap.txt",
                        "maurer_extended": "{}_lump_maurer_forcing_leap.txt",
                        "nldas": "{}_lump_nldas_forcing_leap.txt"}


def _check_gauge_id(gid: str, file, line: int, field: str = "gauge_id") -> str:
    if len(gid) != 8 or not gid.isdigit():
        raise DataFormatError(f"gauge id {gid!r} is not an 8-digit string", file=file, line=line, field=field)
    return gid


def normalize_basin_id(b) -> str:
    """Gauge id as the 8-character string (ints such as 1022500 get their leading zero back)."""
    s = str(b).strip()
    if s.isdigit() and len(s) < 8:
        s = s.zfill(8)
    if len(s) != 8 or not s.isdigit():
        raise DataFormatError(f"basin id {b!r} is not an 8-digit USGS gauge id", site=b, field="gauge_id")
    return s


# ------------------------------------------------------------------------------- attributes
def read_attribute_file(path: Path) -> pd.DataFrame:
    """Parse one ``camels_<group>.txt`` into a DataFrame indexed by the 8-char gauge id."""
    path = Path(path)
    text = read_text(path)
    lines = text.splitlines()
    if not lines:
        raise DataFormatError("empty file", file=path, line=1)
    header = lines[0].split(";")
    if header[0] != "gauge_id":
        raise DataFormatError(f"first column must be 'gauge_id', found {header[0]!r}", file=path, line=1,
                              field=header[0])
    body = [ln for ln in lines[1:]]
    while body and not body[-1].strip():
        body.pop()
    str_cols = tuple(c for c in header if c in TEXT_ATTRIBUTES or c == "gauge_id")
    df = parse_table(body, header, path, 2, sep=";", str_cols=str_cols)
    for i, gid in enumerate(df["gauge_id"]):
        _check_gauge_id(gid, path, i + 2)
    dup = df["gauge_id"].duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataFormatError(f"duplicate gauge id {df['gauge_id'].iat[i]}", file=path, line=i + 2, field="gauge_id")
    for c in str_cols:
        if c != "gauge_id":
            df[c] = df[c].str.strip().replace({"NA": ""})
    return df.set_index("gauge_id")


def read_camels_attributes(folder: Path, groups: Sequence[str] = ATTRIBUTE_GROUPS) -> xr.Dataset:
    """Read ``camels_<group>.txt`` files in ``folder`` into one Dataset on dim ``site``.

    Numeric attributes are float64 (``NA`` -> NaN, which is CAMELS' own missing marker),
    text attributes are strings. Every group must list the same gauges, else DataFormatError.
    """
    folder = Path(folder)
    frames = []
    ref_ids = None
    for g in groups:
        f = folder / f"camels_{g}.txt"
        df = read_attribute_file(f)
        if ref_ids is None:
            ref_ids, ref_file = df.index, f
        elif not df.index.equals(ref_ids):
            missing = ref_ids.difference(df.index)
            extra = df.index.difference(ref_ids)
            site = (list(missing) or list(extra) or [None])[0]
            raise DataFormatError(f"gauge ids differ from {ref_file.name} "
                                  f"({len(missing)} missing, {len(extra)} extra)", file=f, site=site,
                                  field="gauge_id")
        frames.append(df)
    df = pd.concat(frames, axis=1)
    ds = xr.Dataset(coords={"site": as_site_ids(df.index)})
    for c in df.columns:
        vals = df[c].to_numpy()
        if c in TEXT_ATTRIBUTES:
            vals = vals.astype(str).astype(object)
        ds[c] = ("site", vals)
        set_attrs(ds[c], ATTRIBUTE_UNITS.get(c, "1"), c.replace("_", " "))
    if "gauge_lat" in ds:
        ds = ds.assign_coords(lat=("site", ds["gauge_lat"].values), lon=("site", ds["gauge_lon"].values))
        set_attrs(ds["lat"], "degrees_north", "gauge latitude")
        set_attrs(ds["lon"], "degrees_east", "gauge longitude")
    ds.attrs.update(source=str(folder), title="CAMELS-US attributes v2.0")
    return ds


@functools.lru_cache(maxsize=8)
def _attributes_cached(folder: str, groups: tuple) -> xr.Dataset:
    return read_camels_attributes(Path(folder), groups)


def load_camels_attributes(basins: Iterable | None = None, groups: Sequence[str] = ATTRIBUTE_GROUPS,
                           quick: bool | None = None, root: Path | None = None) -> xr.Dataset:
    """CAMELS attributes (dim ``site``); ``basins`` selects and orders sites (error if one is absent)."""
    root = Path(root) if root is not None else registry.resolve("camels_us", quick)
    ds = _attributes_cached(str(root / "camels_attributes_v2.0"), tuple(groups))
    if basins is not None:
        ids = [normalize_basin_id(b) for b in basins]
        have = set(ds["site"].values.tolist())
        for b in ids:
            if b not in have:
                raise DataFormatError("basin is absent from the CAMELS attributes", file=root / "camels_attributes_v2.0",
                                      site=b, field="gauge_id")
        ds = ds.sel(site=ids)
    return ds.copy()


def _gauge_location(basin: str, attributes: xr.Dataset | None) -> tuple[float, float, float]:
    """(lat, lon, area_gages2 km2) of a basin from the attributes."""
    if attributes is None:
        attributes = load_camels_attributes()
    if basin not in set(attributes["site"].values.tolist()):
        raise DataFormatError("basin is absent from the CAMELS attributes", file=_attribute_file(attributes, "topo"),
                              site=basin, field="gauge_id")
    a = attributes.sel(site=basin)
    return float(a["gauge_lat"]), float(a["gauge_lon"]), float(a["area_gages2"])


# ------------------------------------------------------------------------------- basin lists
def read_basin_list(path: Path) -> list[str]:
    """One gauge id per line (``531_basin_list.txt``) -> list of 8-char strings."""
    ids = []
    for i, ln in enumerate(read_text(path).splitlines(), start=1):
        s = ln.strip()
        if s:
            ids.append(_check_gauge_id(s.zfill(8) if s.isdigit() else s, path, i))
    return ids


def read_python_list(path: Path):
    """MHPI lists (``Sub531ID.txt``, ``PUBsplitLst.txt``): a Python literal of ints -> 8-char strings."""
    text = read_text(path)
    try:
        obj = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError) as e:
        raise DataFormatError(f"not a Python list literal ({e})", file=path, line=getattr(e, "lineno", 1)) from None

    def conv(x):
        if isinstance(x, list):
            return [conv(v) for v in x]
        if not isinstance(x, int):
            raise DataFormatError(f"list item {x!r} is not an int gauge id", file=path, field="gauge_id")
        return normalize_basin_id(x)
    return conv(obj)


def load_basin_list(name: str = "531", quick: bool | None = None) -> list[str]:
    """``"531"``: the 531-basin list (Newman et al. 2017); ``"671"``: all CAMELS attribute basins."""
    root = registry.resolve("camels_us", quick)
    if name == "531":
        return read_basin_list(root / "basin_lists" / "531_basin_list.txt")
    if name == "671":
        return load_camels_attributes(quick=quick, groups=("topo",))["site"].values.tolist()
    raise ValueError(f"unknown basin list {name!r}; use '531' or '671'")


def load_mhpi_pub_folds(quick: bool | None = None) -> list[list[str]]:
    """MHPI's 10 PUB folds (dPLHBV release), 671 basins, as lists of 8-char ids."""
    root = registry.resolve("camels_us", quick)
    folds = read_python_list(root / "basin_lists" / "mhpi_dPLHBV" / "PUBsplitLst.txt")
    return folds


# ------------------------------------------------------------------------------- forcing
def read_camels_forcing_file(path: Path, basin: str | None = None,
                             skip_checks=None) -> tuple[pd.DataFrame, dict]:
    """Parse a CAMELS basin-mean forcing file (any of the four products; plain or gzipped).

    Returns (frame indexed by date with standard names, header dict with ``lat`` (deg),
    ``elevation`` (m), ``area_m2``). Header units must be the documented ones. Plausibility
    checks ``"range"``, ``"tmin_tmax"`` and ``"latitude"`` (module docstring) raise
    ImplausibleDataError unless named in ``skip_checks``.
    """
    path = Path(path)
    skip = skip_set(skip_checks)
    lines = read_text(path).splitlines()
    if len(lines) < 5:
        raise DataFormatError(f"only {len(lines)} lines; need 4 header lines and data (truncated?)", file=path,
                              line=len(lines))
    header = {}
    for i, key in enumerate(("lat", "elevation", "area_m2")):
        try:
            header[key] = float(lines[i].strip())
        except ValueError:
            raise DataFormatError(f"cannot parse header value {lines[i].strip()!r}", file=path, line=i + 1,
                                  field=key) from None
    cols = lines[3].replace("\t", " ").split()
    if [c.lower() for c in cols[:4]] != ["year", "mnth", "day", "hr"]:
        raise DataFormatError(f"expected 'Year Mnth Day Hr' first, found {cols[:4]}", file=path, line=4,
                              field="header")
    names = ["year", "month", "day", "hour"]
    for c in cols[4:]:
        key = c.lower()
        if key not in FORCING_COLUMNS:
            raise DataFormatError(f"unknown column or wrong units {c!r}; expected one of "
                                  f"{list(FORCING_COLUMNS)} (case-insensitive)", file=path, line=4, field=c)
        names.append(FORCING_COLUMNS[key][0])
    body = lines[4:]
    while body and not body[-1].strip():
        body.pop()
    df = parse_table(body, names, path, 5)
    dates = make_dates(df["year"], df["month"], df["day"], path, 5)
    check_daily(dates, path, 5)
    df.index = dates
    df = df.drop(columns=["year", "month", "day", "hour"])
    check_latitude(header["lat"], file=path, site=basin, line=1, skip=skip)
    line_of, when_of = (lambda i: i + 5), (lambda i: dates[i].date())
    for c in df.columns:
        check_range(df[c].to_numpy(), c, file=path, site=basin, line_of=line_of, when_of=when_of, skip=skip)
    if "tmin" in df and "tmax" in df:
        check_tmin_tmax(df["tmin"].to_numpy(), df["tmax"].to_numpy(), file=path, site=basin, line_of=line_of,
                        skip=skip)
    if basin is not None:
        header["basin"] = basin
    return df, header


def find_forcing_file(root: Path, basin: str, product: str = "daymet") -> Path:
    """``root/basin_mean_forcing/<product>/[<huc>/]<id>_lump_*_forcing_leap.txt`` (or ``.txt.gz``;
    the plain file is preferred when both exist)."""
    if product not in FORCING_FILE_PATTERN:
        raise ValueError(f"unknown forcing product {product!r}; one of {list(FORCING_FILE_PATTERN)}")
    base = Path(root) / "basin_mean_forcing" / product
    name = FORCING_FILE_PATTERN[product].format(basin)
    # plain ``.txt`` first, then a gzipped ``.txt.gz`` (read_text detects gzip by its magic number)
    for cand in (name, name + ".gz"):
        hits = sorted(base.glob(cand)) + sorted(base.glob(f"*/{cand}"))
        if hits:
            return hits[0]
    raise DataNotFoundError(f"no {product} forcing file {name} (or {name}.gz) under {base}")


def _basins_root_attributes(basins, quick, root, attributes):
    """Normalized basin ids, the CAMELS root folder and its attributes (read when not given)."""
    ids = [normalize_basin_id(b) for b in ([basins] if isinstance(basins, (str, int)) else basins)]
    root = Path(root) if root is not None else registry.resolve("camels_us", quick)
    if attributes is None:
        attributes = _attrs_for_root(root, quick)
    return ids, root, attributes


def load_camels_forcing(basins, product: str = "daymet", quick: bool | None = None, root: Path | None = None,
                        attributes: xr.Dataset | None = None, pet: bool = True, skip_checks=None) -> xr.Dataset:
    """Basin-mean forcing for one or more basins -> Dataset (site, time).

    Variables: ``precip`` mm/day, ``tmax``/``tmin``/``temp`` degC (temp = (tmax+tmin)/2),
    ``srad`` W/m2, ``vp`` Pa, ``swe`` mm, ``dayl`` s, and (``pet=True``) ``pet`` mm/day from
    Hargreaves (1985) with the header latitude. Basins with different periods are joined on
    the union of dates (NaN outside a basin's record).

    Plausibility checks (module docstring; ``skip_checks`` turns them off): those of
    :func:`read_camels_forcing_file`, plus header latitude vs ``gauge_lat`` (``"latitude"``) and
    header area vs ``area_gages2`` (``"area"``).
    """
    skip = skip_set(skip_checks)
    ids, root, attributes = _basins_root_attributes(basins, quick, root, attributes)
    per_site = []
    for b in ids:
        lat, lon, area = _gauge_location(b, attributes)
        f = find_forcing_file(root, b, product)
        df, hdr = read_camels_forcing_file(f, b, skip_checks=skip)
        _check_header_vs_attributes(hdr, lat, area, f, b, skip)
        ds = xr.Dataset({c: (("site", "time"), df[c].to_numpy()[None, :]) for c in df.columns},
                        coords={"site": [b], "time": df.index.values})
        ds["temp"] = (ds["tmax"] + ds["tmin"]) / 2
        if pet:
            doy = df.index.day_of_year.to_numpy()
            ds["pet"] = (("site", "time"), hargreaves(df["tmin"].to_numpy(), df["tmax"].to_numpy(),
                                                       hdr["lat"], doy)[None, :])
        ds = ds.assign_coords(lat=("site", [lat]), lon=("site", [lon]),
                              forcing_lat=("site", [hdr["lat"]]), elevation=("site", [hdr["elevation"]]),
                              forcing_area=("site", [hdr["area_m2"]]))
        per_site.append(ds)
    out = xr.concat(per_site, dim="site", join="outer") if len(per_site) > 1 else per_site[0]
    out["site"] = as_site_ids(out["site"].values)
    for name, (std, units, long) in FORCING_COLUMNS.items():
        if std in out:
            set_attrs(out[std], units, f"{long} ({product})")
    set_attrs(out["temp"], "degC", "daily mean 2 m air temperature, (tmax+tmin)/2")
    if pet:
        set_attrs(out["pet"], "mm/day", "potential evapotranspiration, Hargreaves (1985) from tmin/tmax/latitude")
    set_attrs(out["lat"], "degrees_north", "gauge latitude")
    set_attrs(out["lon"], "degrees_east", "gauge longitude")
    set_attrs(out["forcing_lat"], "degrees_north", "latitude in the forcing file header")
    set_attrs(out["elevation"], "m", "elevation in the forcing file header")
    set_attrs(out["forcing_area"], "m2", "basin area in the forcing file header")
    out.attrs.update(product=product, source=str(root))
    return out


def _check_header_vs_attributes(hdr: dict, gauge_lat: float, area_km2: float, file, basin, skip) -> None:
    """Header latitude within MAX_HEADER_LAT_OFFSET of gauge_lat; header area (m2) within a
    factor MAX_HEADER_AREA_RATIO of area_gages2 (km2). Skipped where the attribute is NaN."""
    if "latitude" not in skip and np.isfinite(gauge_lat) and abs(hdr["lat"] - gauge_lat) > MAX_HEADER_LAT_OFFSET:
        raise implausible(f"header latitude {hdr['lat']} is {abs(hdr['lat'] - gauge_lat):.2f} degrees from the "
                          f"gauge latitude {gauge_lat} (camels_topo gauge_lat; real files differ by <= 0.62)",
                          "latitude", file=file, line=1, site=basin, field="lat")
    if "area" not in skip and np.isfinite(area_km2) and area_km2 > 0:
        r = hdr["area_m2"] / 1e6 / area_km2
        if not (1 / MAX_HEADER_AREA_RATIO <= r <= MAX_HEADER_AREA_RATIO):
            raise implausible(f"header area {hdr['area_m2']:g} m2 is {r:.3g} x area_gages2 {area_km2:g} km2 "
                              f"(outside [{1 / MAX_HEADER_AREA_RATIO:g}, {MAX_HEADER_AREA_RATIO:g}]; area in km2 "
                              "instead of m2?)", "area", file=file, line=3, site=basin, field="area_m2")


def _attrs_for_root(root: Path, quick):
    """Attributes that belong with a forcing root: its own when it has them, else the registry's."""
    own = Path(root) / "camels_attributes_v2.0"
    if (own / "camels_topo.txt").is_file():
        return load_camels_attributes(root=Path(root), groups=("topo",))
    return load_camels_attributes(quick=quick, groups=("topo",))


def load_camels_daymet(basins, quick: bool | None = None, root: Path | None = None, pet: bool = True,
                       skip_checks=None) -> xr.Dataset:
    """Daymet basin-mean forcing (see :func:`load_camels_forcing`)."""
    return load_camels_forcing(basins, "daymet", quick=quick, root=root, pet=pet, skip_checks=skip_checks)


# ------------------------------------------------------------------------------- streamflow
def cfs_to_mm_per_day(q_cfs, area_km2, *, site=None, file=None):
    """ft3/s -> mm/day over a basin of ``area_km2``: q * 0.0283168 * 86400 / (area*1e6) * 1000.

    ``site`` and ``file`` (where the area comes from) name the basin in the error raised for
    an area that is not a finite number > 0."""
    area_km2 = np.asarray(area_km2, dtype=float)
    if np.any(~(area_km2 > 0)) or not np.isfinite(area_km2).all():
        raise DataFormatError(f"basin area must be a finite number > 0 km2, got {area_km2}", file=file, site=site,
                              field="area_gages2")
    return np.asarray(q_cfs, dtype=float) * CFS_TO_M3S * 86400.0 / (area_km2 * 1e6) * 1000.0


def read_camels_streamflow_file(path: Path, basin: str | None = None, skip_checks=None) -> pd.DataFrame:
    """Parse ``<id>_streamflow_qc.txt`` -> frame (date index; ``q_cfs`` with NaN for -999, ``flag``).

    -999 is the format's missing marker (-> NaN). Any other negative value raises
    DataFormatError; ``NA``/``NaN``, inf and values above 1e7 ft3/s raise ImplausibleDataError
    (check ``"range"``, which ``skip_checks`` can turn off)."""
    path = Path(path)
    skip = skip_set(skip_checks)
    lines = read_text(path).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    df = parse_table(lines, ["gauge_id", "year", "month", "day", "q_cfs", "flag"], path, 1,
                     str_cols=("gauge_id", "flag"))
    for i, gid in enumerate(df["gauge_id"]):
        if gid != df["gauge_id"].iat[0] or (basin is not None and gid != basin):
            raise DataFormatError(f"gauge id {gid!r} differs from the file's basin "
                                  f"{basin or df['gauge_id'].iat[0]!r}", file=path, line=i + 1, field="gauge_id")
    dates = make_dates(df["year"], df["month"], df["day"], path, 1)
    check_daily(dates, path, 1)
    q = df["q_cfs"].to_numpy()
    miss = q == -999.0
    neg = (q < 0) & ~miss
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        raise DataFormatError(f"negative discharge {q[i]} (only -999 marks missing)", file=path, line=i + 1,
                              site=basin, field="Q_cfs")
    check_range(q[~miss], "streamflow_cfs", file=path, site=basin,
                line_of=lambda i: int(np.flatnonzero(~miss)[i]) + 1,
                when_of=lambda i: dates[int(np.flatnonzero(~miss)[i])].date(), field="Q_cfs", skip=skip,
                missing_marker="-999 (flag M)")
    q = np.where(miss, np.nan, q)
    return pd.DataFrame({"q_cfs": q, "flag": df["flag"].to_numpy()}, index=dates)


def _attribute_file(attributes: xr.Dataset, group: str):
    """``<folder>/camels_<group>.txt`` of an attributes Dataset (for messages), or a label."""
    src = attributes.attrs.get("source")
    return Path(src) / f"camels_{group}.txt" if src else f"CAMELS attributes (camels_{group})"


def _q_means(root: Path, quick, attributes: xr.Dataset) -> dict | None:
    """{basin: q_mean mm/day} from ``attributes`` or the ``camels_hydro.txt`` that goes with
    ``root`` (its own, else the registry's); None when no hydro attributes exist."""
    if "q_mean" in attributes:
        a = attributes["q_mean"]
    else:
        own = Path(root) / "camels_attributes_v2.0"
        try:
            if (own / "camels_hydro.txt").is_file():
                a = load_camels_attributes(root=Path(root), groups=("hydro",))["q_mean"]
            else:
                base = registry.resolve("camels_us", quick) / "camels_attributes_v2.0"
                if not (base / "camels_hydro.txt").is_file():
                    return None
                a = load_camels_attributes(quick=quick, groups=("hydro",))["q_mean"]
        except DataSetIncompleteError:
            raise
        except DataNotFoundError:
            return None
    return dict(zip(a["site"].values.tolist(), np.asarray(a.values, float).tolist()))


def find_streamflow_file(root: Path, basin: str) -> Path:
    base = Path(root) / "usgs_streamflow"
    name = f"{basin}_streamflow_qc.txt"
    hits = sorted(base.glob(name)) + sorted(base.glob(f"*/{name}"))
    if not hits:
        raise DataNotFoundError(f"no streamflow file {name} under {base}")
    return hits[0]


def load_camels_streamflow(basins, quick: bool | None = None, root: Path | None = None,
                           attributes: xr.Dataset | None = None, skip_checks=None) -> xr.Dataset:
    """USGS daily streamflow -> Dataset (site, time) with ``streamflow`` (mm/day, converted with
    ``area_gages2``), ``streamflow_cfs`` (ft3/s) and the QC ``flag`` (A, A:e, M). Missing = NaN.

    Plausibility checks (module docstring; ``skip_checks`` turns them off): those of
    :func:`read_camels_streamflow_file`, ``"area"`` (``area_gages2`` in a plausible km2 range) and
    ``"q_mean"`` (mean flow over the water years 1990-2009 against the CAMELS ``q_mean``, read
    from the attributes' ``camels_hydro.txt`` when ``attributes`` lacks it; skipped when unknown
    or when fewer than two years overlap)."""
    skip = skip_set(skip_checks)
    ids, root, attributes = _basins_root_attributes(basins, quick, root, attributes)
    attr_file = _attribute_file(attributes, "topo")
    q_means = None if "q_mean" in skip else _q_means(root, quick, attributes)
    per_site = []
    for b in ids:
        lat, lon, area = _gauge_location(b, attributes)
        check_area_km2(area, file=attr_file, site=b, skip=skip)
        f = find_streamflow_file(root, b)
        df = read_camels_streamflow_file(f, b, skip_checks=skip)
        q_mm = cfs_to_mm_per_day(df["q_cfs"].to_numpy(), area, site=b, file=attr_file)
        if q_means is not None and b in q_means:
            check_q_mean(q_mm, df.index, q_means[b], file=f, site=b, skip=skip,
                         what="streamflow (ft3/s converted with area_gages2)")
        per_site.append(xr.Dataset(
            {"streamflow": (("site", "time"), q_mm[None]),
             "streamflow_cfs": (("site", "time"), df["q_cfs"].to_numpy()[None]),
             "flag": (("site", "time"), df["flag"].to_numpy().astype(object)[None])},
            coords={"site": [b], "time": df.index.values, "lat": ("site", [lat]), "lon": ("site", [lon]),
                    "area_gages2": ("site", [area])}))
    out = xr.concat(per_site, dim="site", join="outer", fill_value={"flag": "M"}) if len(per_site) > 1 \
        else per_site[0]
    out["site"] = as_site_ids(out["site"].values)
    set_attrs(out["streamflow"], "mm/day", "observed streamflow (USGS), converted with area_gages2")
    set_attrs(out["streamflow_cfs"], "ft3/s", "observed streamflow (USGS)")
    set_attrs(out["flag"], "1", "USGS QC flag: A approved, A:e estimated, M missing")
    set_attrs(out["area_gages2"], "km2", "basin area (GAGES-II)")
    set_attrs(out["lat"], "degrees_north", "gauge latitude")
    set_attrs(out["lon"], "degrees_east", "gauge longitude")
    out.attrs.update(source=str(root))
    return out


# ------------------------------------------------------------------------------- Leaf River
LEAF_RIVER_ID = "02472000"


def read_nwis_leaf_river(path: Path, skip_checks=None) -> pd.DataFrame:
    """Leaf River NWIS CSV (``Date,leaf_river_outflow_[ft^3/s],leaf_river_level_[ft]``) -> daily frame.

    The file repeats 7 dates with identical rows (dropped) and lacks 183 days (reindexed to NaN):
    this is the real record. Repeated dates with *different* values raise DataFormatError;
    negative, missing or non-finite discharge raises ImplausibleDataError (check ``"range"``).
    """
    path = Path(path)
    lines = read_text(path).splitlines()
    head = lines[0].split(",")
    want = ["Date", "leaf_river_outflow_[ft^3/s]", "leaf_river_level_[ft]"]
    if head != want:
        raise DataFormatError(f"header {head} != {want} (wrong columns or units)", file=path, line=1, field="header")
    body = [ln for ln in lines[1:] if ln.strip()]
    df = parse_table(body, ["date", "q_cfs", "level_ft"], path, 2, sep=",", str_cols=("date",))
    try:
        dates = pd.DatetimeIndex(pd.to_datetime(df["date"], format="%Y-%m-%d")).as_unit("ns")
    except ValueError as e:
        raise DataFormatError(str(e), file=path, field="Date") from None
    df.index = dates
    df = df.drop(columns="date")
    check_range(df["q_cfs"].to_numpy(), "streamflow_cfs", file=path, site=LEAF_RIVER_ID, line_of=lambda i: i + 2,
                when_of=lambda i: dates[i].date(), field="leaf_river_outflow_[ft^3/s]", skip=skip_set(skip_checks))
    dup = df.index.duplicated(keep="first")
    if dup.any():
        g = df[df.index.duplicated(keep=False)].groupby(level=0).nunique()
        if (g.to_numpy() > 1).any():
            d = g.index[(g.to_numpy() > 1).any(axis=1)][0]
            line = int(np.flatnonzero(df.index == d)[0]) + 2
            raise DataFormatError(f"date {d.date()} repeated with different values", file=path, line=line,
                                  field="Date")
        df = df[~dup]
    if not df.index.is_monotonic_increasing:
        raise DataFormatError("dates out of order", file=path, field="Date")
    full = pd.date_range(df.index[0], df.index[-1], freq="D").as_unit("ns")
    return df.reindex(full)


def load_leaf_river(root: Path | None = None, attributes: xr.Dataset | None = None) -> xr.Dataset:
    """Leaf River near Collins (02472000): Daymet forcing 1980-2014 joined with NWIS Q 1991-10-02..2021-06-21.

    Variables as :func:`load_camels_forcing` plus ``streamflow`` (mm/day via area_gages2) and
    ``streamflow_cfs``; time = union of both records.
    """
    root = Path(root) if root is not None else registry.locate("leaf_river_02472000")
    if attributes is None:
        attributes = load_camels_attributes(groups=("topo",))
    forc = load_camels_forcing(LEAF_RIVER_ID, "daymet", root=root, attributes=attributes)
    q = read_nwis_leaf_river(root / "usgs_nwis_daily" / "leaf_river_near_collins_data.csv")
    _, _, area = _gauge_location(LEAF_RIVER_ID, attributes)
    q_mm = cfs_to_mm_per_day(q["q_cfs"].to_numpy(), area, site=LEAF_RIVER_ID, file=_attribute_file(attributes, "topo"))
    qds = xr.Dataset({"streamflow": (("site", "time"), q_mm[None]),
                      "streamflow_cfs": (("site", "time"), q["q_cfs"].to_numpy()[None])},
                     coords={"site": [LEAF_RIVER_ID], "time": q.index.values})
    out = xr.merge([forc, qds], join="outer", compat="override")
    set_attrs(out["streamflow"], "mm/day", "observed streamflow (USGS NWIS), converted with area_gages2")
    set_attrs(out["streamflow_cfs"], "ft3/s", "observed streamflow (USGS NWIS)")
    out["site"] = as_site_ids(out["site"].values)
    return out
