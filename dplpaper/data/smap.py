"""Reader for the hydroDL "dbCsv" SMAP layout (CONUSv4f1, 412 cells) -> ``xarray.Dataset``.

Layout (see DATA.md of the data set): ``CONUSv4f1/crd.csv`` (lat,lon per cell);
``CONUSv4f1/<year>/<VAR>.csv`` = matrix [n_cells, n_days] (no header, ``-9999`` missing),
where folder ``<year>`` holds <year>-04-01 .. <year+1>-03-31 with dates in ``timeStr.csv``;
``CONUSv4f1/const/<VAR>.csv`` = one static value per cell.

Output (one Dataset): dims ``site`` (ids ``"0000"``..``"0411"`` = row order of crd.csv) and
``time`` (2015-04-01 .. 2018-03-31); series ``soil_moisture`` (m3/m3, SMAP L3 AM; NaN where
the satellite did not observe and after 2017-03-31), ``precip`` (mm/day = APCP_FORA daily
mean mm/h * 24), ``temp`` (degC), ``srad``/``lrad`` (W/m2), ``humidity`` (kg/kg), ``wind``
(m/s, |(u, v)| at 10 m), ``pet`` (mm/day, FAO-56 Penman-Monteith, :func:`pet.pet_nldas`);
site-only statics (``Bulk``, ``Capa``, ``Clay``, ``Sand``, ``Silt``, ``NDVI``, ``flag_*``);
coords ``lat``, ``lon``, ``row``, ``col`` (index on the lattice of the 412 cells' unique
latitudes / longitudes; row 0 = southernmost).

Files are read through :func:`dplpaper.data._util.read_text` (gzip by magic number, UTF-8 or a
clear error). Plausibility check ``"range"``: every raw value finite and within
:data:`RAW_RANGE` (wrong units, e.g. degC in ``TMP_2_FORA``, or a missing marker other than
-9999 raise :class:`~dplpaper.data.errors.ImplausibleDataError`); ``skip_checks={"range"}``
turns it off. A ``crd.csv`` with fewer cells than every data file is blamed on ``crd.csv``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from . import registry
from ._util import CHECKS_VERSION, implausible, read_text, set_attrs, skip_set
from .errors import DataFormatError
from .pet import pet_nldas

SERIES = {  # file name -> (standard name, units, long name, transform)
    "SMAP_AM": ("soil_moisture", "m3/m3", "SMAP L3 AM surface soil moisture", None),
    "APCP_FORA": ("precip", "mm/day", "precipitation (NLDAS-2 FORA, daily mean mm/h * 24)", lambda x: x * 24.0),
    "TMP_2_FORA": ("temp", "degC", "daily mean 2 m air temperature (NLDAS-2 FORA)", lambda x: x - 273.15),
    "DSWRF_FORA": ("srad", "W/m2", "downward shortwave radiation (NLDAS-2 FORA)", None),
    "DLWRF_FORA": ("lrad", "W/m2", "downward longwave radiation (NLDAS-2 FORA)", None),
    "SPFH_2_FORA": ("humidity", "kg/kg", "2 m specific humidity (NLDAS-2 FORA)", None),
    "UGRD_10_FORA": ("wind_u", "m/s", "10 m zonal wind (NLDAS-2 FORA)", None),
    "VGRD_10_FORA": ("wind_v", "m/s", "10 m meridional wind (NLDAS-2 FORA)", None),
}
# plausible physical ranges of the raw values (to catch wrong units), per file
RAW_RANGE = {"SMAP_AM": (0.0, 1.0), "APCP_FORA": (0.0, 50.0), "TMP_2_FORA": (180.0, 340.0),
             "DSWRF_FORA": (0.0, 600.0), "DLWRF_FORA": (50.0, 600.0), "SPFH_2_FORA": (0.0, 0.05),
             "UGRD_10_FORA": (-60.0, 60.0), "VGRD_10_FORA": (-60.0, 60.0)}
CONST_UNITS = {"Bulk": ("g/cm3", "soil bulk density"), "Capa": ("percent", "soil water capacity"),
               "Clay": ("percent", "clay fraction"), "Sand": ("percent", "sand fraction"),
               "Silt": ("percent", "silt fraction"), "NDVI": ("1", "normalized difference vegetation index"),
               "flag_albedo": ("1", "SMAP albedo flag"), "flag_extraOrd": ("1", "SMAP extraordinary flag"),
               "flag_landcover": ("1", "SMAP land-cover class flag"), "flag_roughness": ("1", "SMAP roughness flag"),
               "flag_vegDense": ("1", "SMAP dense-vegetation flag"), "flag_waterbody": ("1", "SMAP water-body fraction")}
MISSING = -9999.0


def _row_count(path: Path) -> int:
    return sum(1 for ln in read_text(path).splitlines() if ln.strip())


def _read_matrix(path: Path, n_rows: int, n_cols: int, crd_file: Path | None = None) -> np.ndarray:
    path = Path(path)
    text = read_text(path)
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) != n_rows:
        if crd_file is not None and len(lines) > n_rows:
            # more rows than crd.csv has cells: crd.csv is short if the other data files agree with this one
            others = [f for f in sorted(path.parent.glob("*.csv")) if f.stem in SERIES and f != path]
            if others and all(_row_count(f) == len(lines) for f in others):
                raise DataFormatError(f"{n_rows} cells, but {path.name} and the other data files of "
                                      f"{path.parent.name}/ have {len(lines)} rows (crd.csv truncated?)",
                                      file=crd_file, line=n_rows, field="rows")
        raise DataFormatError(f"{len(lines)} rows, expected {n_rows} cells (truncated file?)", file=path,
                              line=len(lines), field="rows")
    out = np.empty((n_rows, n_cols), dtype=np.float64)
    for i, ln in enumerate(lines):
        parts = ln.split(",")
        if len(parts) != n_cols:
            raise DataFormatError(f"{len(parts)} values, expected {n_cols} days", file=path, line=i + 1,
                                  site=f"{i:04d}", field="columns")
        try:
            out[i] = np.asarray(parts, dtype=np.float64)
        except ValueError:
            for j, p in enumerate(parts):
                try:
                    float(p)
                except ValueError:
                    raise DataFormatError(f"cannot parse {p!r} as a number (column {j + 1})", file=path,
                                          line=i + 1, site=f"{i:04d}", field=path.stem) from None
    if np.isnan(out).any():
        i, j = np.argwhere(np.isnan(out))[0]
        raise DataFormatError(f"literal NaN at column {j + 1}; the missing marker is -9999", file=path,
                              line=int(i) + 1, site=f"{i:04d}", field=path.stem)
    return out


def _read_dates(folder: Path) -> pd.DatetimeIndex:
    f = folder / "timeStr.csv"
    lines = [ln.strip() for ln in read_text(f).splitlines() if ln.strip()]
    try:
        d = pd.DatetimeIndex(pd.to_datetime(lines, format="%Y-%m-%d")).as_unit("ns")
    except ValueError as e:
        raise DataFormatError(f"bad date ({e})", file=f, field="date") from None
    dd = np.diff(d.values).astype("timedelta64[D]").astype(int)
    if (dd != 1).any():
        i = int(np.flatnonzero(dd != 1)[0]) + 1
        raise DataFormatError(f"dates not consecutive at {d[i].date()}", file=f, line=i + 1, field="date")
    return d


def lattice_indices(values: np.ndarray, decimals: int = 3) -> np.ndarray:
    """Rank of each value among the unique (rounded) values: row/col index on the cell lattice."""
    r = np.round(np.asarray(values, float), decimals)
    u = np.unique(r)
    return np.searchsorted(u, r)


def read_smap_dbcsv(root: Path, subset: str = "CONUSv4f1", with_pet: bool = True, skip_checks=None) -> xr.Dataset:
    """Read the dbCsv folder ``root/<subset>`` (every year folder present) into one Dataset.

    ``skip_checks={"range"}`` turns the plausible-range check of the raw values off."""
    skip = skip_set(skip_checks)
    base = Path(root) / subset
    crd_file = base / "crd.csv"
    crd_lines = [ln for ln in read_text(crd_file).splitlines() if ln.strip()]
    crd = np.empty((len(crd_lines), 2))
    for i, ln in enumerate(crd_lines):
        parts = ln.split(",")
        if len(parts) != 2:
            raise DataFormatError(f"expected 'lat,lon', found {len(parts)} fields", file=crd_file, line=i + 1,
                                  field="lat,lon")
        try:
            crd[i] = [float(parts[0]), float(parts[1])]
        except ValueError:
            raise DataFormatError(f"cannot parse {ln!r}", file=crd_file, line=i + 1, field="lat,lon") from None
    ok = (-90 <= crd[:, 0]) & (crd[:, 0] <= 90) & (-180 <= crd[:, 1]) & (crd[:, 1] <= 360)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise DataFormatError(f"latitude {crd[i, 0]} / longitude {crd[i, 1]} out of range ([-90, 90], [-180, 360])",
                              file=crd_file, line=i + 1, site=f"{i:04d}", field="lat,lon")
    n = len(crd)
    years = sorted(p.name for p in base.iterdir() if p.is_dir() and p.name.isdigit())
    if not years:
        raise DataFormatError("no year folders", file=base)
    all_dates = []
    blocks: dict[str, list] = {k: [] for k in SERIES}
    for y in years:
        folder = base / y
        dates = _read_dates(folder)
        all_dates.append(dates)
        for var in SERIES:
            f = folder / f"{var}.csv"
            if f.is_file():
                m = _read_matrix(f, n, len(dates), crd_file)
                m = np.where(m == MISSING, np.nan, m)
                lo, hi = RAW_RANGE[var]
                bad = (m < lo) | (m > hi)
                if bad.any() and "range" not in skip:
                    i, j = np.argwhere(bad)[0]
                    marker = " (a missing-value marker? this format's is -9999)" if m[i, j] in (-999.0, -99.0) else ""
                    raise implausible(f"value {m[i, j]} outside [{lo}, {hi}] on {dates[j].date()} "
                                      f"(wrong units?){marker}", "range", file=f, line=int(i) + 1, site=f"{i:04d}",
                                      field=var)
                if var != "SMAP_AM" and np.isnan(m).any():
                    i, j = np.argwhere(np.isnan(m))[0]
                    raise DataFormatError(f"missing forcing on {dates[j].date()}", file=f, line=int(i) + 1,
                                          site=f"{i:04d}", field=var)
            elif var == "SMAP_AM":
                m = np.full((n, len(dates)), np.nan)
            else:
                raise DataFormatError("forcing file missing", file=f, field=var)
            blocks[var].append(m)
    time = all_dates[0].append(all_dates[1:]) if len(all_dates) > 1 else all_dates[0]
    if time.has_duplicates or not time.is_monotonic_increasing:
        raise DataFormatError("year folders overlap or are out of order", file=base, field="timeStr.csv")
    sites = np.asarray([f"{i:04d}" for i in range(n)], dtype=object)
    ds = xr.Dataset(coords={"site": sites, "time": time, "lat": ("site", crd[:, 0]), "lon": ("site", crd[:, 1]),
                            "row": ("site", lattice_indices(crd[:, 0])),
                            "col": ("site", lattice_indices(crd[:, 1]))})
    for var, (name, units, long, fn) in SERIES.items():
        arr = np.concatenate(blocks[var], axis=1)
        if fn is not None:
            arr = fn(arr)
        ds[name] = (("site", "time"), arr)
        set_attrs(ds[name], units, long)
    ds["wind"] = np.hypot(ds["wind_u"], ds["wind_v"])
    set_attrs(ds["wind"], "m/s", "10 m wind speed (NLDAS-2 FORA)")
    if with_pet:
        ds["pet"] = (("site", "time"), pet_nldas(ds["temp"].values + 273.15, ds["humidity"].values,
                                                 ds["srad"].values, ds["lrad"].values,
                                                 ds["wind_u"].values, ds["wind_v"].values))
        set_attrs(ds["pet"], "mm/day", "reference ET, FAO-56 Penman-Monteith from NLDAS-2 (p = 101.3 kPa)")
    const = base / "const"
    if const.is_dir():
        for f in sorted(const.glob("*.csv")):
            vals = [ln.strip() for ln in read_text(f).splitlines() if ln.strip()]
            if len(vals) != n:
                raise DataFormatError(f"{len(vals)} values, expected {n} cells (truncated?)", file=f,
                                      line=len(vals), field=f.stem)
            try:
                v = np.asarray(vals, dtype=float)
            except ValueError:
                i = next(k for k, s in enumerate(vals) if not _isfloat(s))
                raise DataFormatError(f"cannot parse {vals[i]!r}", file=f, line=i + 1, site=f"{i:04d}",
                                      field=f.stem) from None
            ds[f.stem] = ("site", np.where(v == MISSING, np.nan, v))
            units, long = CONST_UNITS.get(f.stem, ("1", f.stem))
            set_attrs(ds[f.stem], units, long)
    set_attrs(ds["lat"], "degrees_north", "cell centre latitude (EASE-2 36 km)")
    set_attrs(ds["lon"], "degrees_east", "cell centre longitude (EASE-2 36 km)")
    set_attrs(ds["row"], "1", "row on the lattice of unique cell latitudes (0 = south)")
    set_attrs(ds["col"], "1", "column on the lattice of unique cell longitudes (0 = west)")
    ds.attrs.update(source=str(base), title="SMAP L3 AM + NLDAS-2 (hydroDL CONUSv4f1)")
    return ds


def _isfloat(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def load_smap(quick: bool | None = None, root: Path | None = None, use_cache: bool = True,
              with_pet: bool = True, skip_checks=None) -> xr.Dataset:
    """All 412 CONUSv4f1 cells (see module docstring).

    Full raw data when found (read once, then from the NetCDF cache); otherwise (or with
    ``quick=True``) the compact NetCDF shipped in ``data/smap_conusv4f1_quick``.
    ``skip_checks``: see :func:`read_smap_dbcsv`.
    """
    skip = sorted(skip_set(skip_checks))
    if root is None:
        root = registry.resolve("hydrodl_smap_conusv4f1", quick)
    root = Path(root)
    if (root / "smap_conusv4f1.nc").is_file() and not (root / "CONUSv4f1" / "2015").is_dir():
        with xr.open_dataset(root / "smap_conusv4f1.nc") as ds:
            out = ds.load()
        out["site"] = out["site"].values.astype(str).astype(object)
        if with_pet:
            out["pet"] = (("site", "time"), pet_nldas(out["temp"].values + 273.15, out["humidity"].values,
                                                      out["srad"].values, out["lrad"].values,
                                                      out["wind"].values, 0.0).astype(np.float32))
            set_attrs(out["pet"], "mm/day", "reference ET, FAO-56 Penman-Monteith from NLDAS-2 (p = 101.3 kPa)")
        return out
    if use_cache:
        from .cache import cached
        inputs = sorted((root / "CONUSv4f1").rglob("*.csv"))
        return cached("smap_conusv4f1", inputs, lambda: read_smap_dbcsv(root, with_pet=with_pet, skip_checks=skip),
                      params={"with_pet": with_pet, "checks": CHECKS_VERSION, "skip_checks": skip})
    return read_smap_dbcsv(root, with_pet=with_pet, skip_checks=skip)
