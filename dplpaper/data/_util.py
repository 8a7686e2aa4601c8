"""Small shared helpers for the readers: encoding-aware file reading, parsing checks,
plausibility checks and dataset attrs."""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataFormatError, ImplausibleDataError

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"


def read_bytes(path: Path) -> bytes:
    """The bytes of ``path``, gunzipped when the file starts with the gzip magic number
    (``1f 8b``), whatever its name. A corrupt or truncated gzip stream raises DataFormatError."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError("file does not exist", file=path)
    raw = path.read_bytes()
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataFormatError(f"corrupt gzip stream ({e}); truncated download?", file=path) from None
    elif raw[:4] == ZIP_MAGIC:
        raise DataFormatError("this is a zip archive, not a text file: unpack it first", file=path)
    return raw


def read_text(path: Path) -> str:
    """Text of ``path`` (plain or gzipped, see :func:`read_bytes`), decoded as UTF-8.

    Every reader opens its files here. A UTF-8 byte-order mark is dropped. Bytes that are not
    UTF-8 (e.g. a Latin-1 file) raise DataFormatError naming the file, byte offset and line:
    the data formats read here are ASCII, so a non-UTF-8 byte means a file that was edited or
    converted elsewhere, and guessing its encoding could hide that (convert it with
    ``iconv -f latin1 -t utf-8``). NUL bytes (a binary file) are refused the same way.
    """
    path = Path(path)
    raw = read_bytes(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataFormatError(f"not UTF-8 text: byte 0x{raw[e.start]:02x} at byte offset {e.start} "
                              "(Latin-1 or another encoding? convert the file to UTF-8)", file=path,
                              line=line) from None
    nul = text.find("\x00")
    if nul >= 0:
        raise DataFormatError(f"NUL byte at character offset {nul}: a binary file, not text", file=path,
                              line=text.count("\n", 0, nul) + 1)
    return text


def parse_table(lines: list[str], names: list[str], file, first_line: int, sep: str = " ",
                str_cols: tuple[str, ...] = ()) -> pd.DataFrame:
    """Parse data lines into a DataFrame with exactly ``len(names)`` fields per line.

    ``first_line`` is the 1-based line number of ``lines[0]`` in ``file`` (for messages).
    Whitespace (spaces and TABs) separates fields when ``sep == " "``. Numbers that do not
    parse, and lines with too few or too many fields, raise :class:`DataFormatError`.
    ``NA``/``NaN`` become NaN (the callers decide whether a format allows them).
    """
    n = len(names)
    if not lines:
        raise DataFormatError("no data lines (file truncated?)", file=file, line=first_line)
    if sep == " ":
        split = [ln.split() for ln in lines]
    else:
        split = [ln.split(sep) for ln in lines]
    for i, parts in enumerate(split):
        if len(parts) != n:
            fld = names[len(parts)] if len(parts) < n else f"<extra field {len(parts)}>"
            raise DataFormatError(f"expected {n} fields, found {len(parts)} (truncated or malformed line)",
                                  file=file, line=first_line + i, field=fld)
    df = pd.DataFrame(split, columns=names, dtype=object)
    for c in names:
        if c in str_cols:
            df[c] = df[c].astype(str)
            continue
        num = pd.to_numeric(df[c], errors="coerce")
        bad = num.isna().to_numpy() & ~df[c].isin(["NA", "NaN", "nan"]).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataFormatError(f"cannot parse {df[c].iat[i]!r} as a number", file=file,
                                  line=first_line + i, field=c)
        df[c] = num.astype(float)
    return df


def check_daily(dates: pd.DatetimeIndex, file, first_line: int) -> None:
    """Raise if ``dates`` (one per data line) are not strictly consecutive days."""
    if len(dates) < 2:
        return
    d = np.diff(dates.values).astype("timedelta64[D]").astype(int)
    bad = np.flatnonzero(d != 1)
    if bad.size:
        i = int(bad[0]) + 1
        kind = "duplicate" if d[i - 1] == 0 else ("out of order" if d[i - 1] < 0 else "missing dates before")
        raise DataFormatError(f"{kind} date {dates[i].date()} (previous line {dates[i - 1].date()}); "
                              "daily series must be continuous", file=file, line=first_line + i, field="date")


def make_dates(y, m, d, file, first_line: int) -> pd.DatetimeIndex:
    """Daily dates from year, month, day columns (floats from :func:`parse_table`); a missing
    (NaN), fractional or impossible date raises DataFormatError naming the line."""
    cols = {"year": np.asarray(y, float), "month": np.asarray(m, float), "day": np.asarray(d, float)}
    for name, v in cols.items():
        bad = ~np.isfinite(v) | (v != np.round(v))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            shown = "missing (NA/NaN)" if np.isnan(v[i]) else f"{float(v[i]):g}, not a whole number"
            raise DataFormatError(f"date part {name} is {shown}; every line needs a full date", file=file,
                                  line=first_line + i, field=name)
    try:
        return pd.DatetimeIndex(pd.to_datetime(pd.DataFrame({k: v.astype(int) for k, v in cols.items()}))
                                ).as_unit("ns")
    except (ValueError, pd.errors.OutOfBoundsDatetime) as e:
        # find the offending line
        for i, (a, b, c) in enumerate(zip(*(v.astype(int) for v in cols.values()))):
            try:
                pd.Timestamp(int(a), int(b), int(c))
            except (ValueError, pd.errors.OutOfBoundsDatetime):
                raise DataFormatError(f"invalid date {int(a)}-{int(b)}-{int(c)}", file=file,
                                      line=first_line + i, field="date") from None
        raise DataFormatError(str(e), file=file, field="date") from None


def set_attrs(da, units: str, long_name: str):
    da.attrs.update(units=units, long_name=long_name)
    return da


def as_site_ids(ids) -> np.ndarray:
    return np.asarray([str(s) for s in ids], dtype=object)


# ------------------------------------------------------------------------ plausibility checks
#: part of the NetCDF cache keys: bump when the checks change, so no cache built without them is used
CHECKS_VERSION = 1
#: names accepted by the readers' ``skip_checks`` argument (or ``"all"``)
CHECKS = ("range", "tmin_tmax", "latitude", "area", "q_mean")

#: plausible physical range of each standard variable (inclusive), in its standard units.
#: Wide on purpose: they catch wrong units (Kelvin, m2, cfs) and missing markers, not extremes.
PLAUSIBLE_RANGE = {
    "precip": (0.0, 2000.0),          # mm/day (world record ~1825 mm/day)
    "temp": (-80.0, 65.0),            # degC: a Kelvin value (> 180) is outside
    "tmax": (-80.0, 65.0),
    "tmin": (-80.0, 65.0),
    "srad": (0.0, 1500.0),            # W/m2 (solar constant 1361)
    "lrad": (0.0, 1000.0),            # W/m2
    "vp": (0.0, 10000.0),             # Pa (saturation at 46 degC)
    "swe": (0.0, 20000.0),            # mm
    "dayl": (0.0, 86400.0),           # s
    "pet": (0.0, 150.0),              # mm/day
    "streamflow": (0.0, 5000.0),      # mm/day
    "streamflow_cfs": (0.0, 1.0e7),   # ft3/s (Amazon ~7e6)
}
#: missing-value markers of other formats: named in the message when one turns up
FOREIGN_MISSING_MARKERS = (-99.0, -99.99, -999.0, -999.9, -999.99, -9999.0, -9999.99, -99999.0, 9999.0, 99999.0)
#: tmax < tmin is refused only when it holds on more than this share of days (real Daymet
#: files have it on up to 6 % of days: interpolation artefacts, not swapped columns)
TMIN_TMAX_MAX_SHARE = 0.2


def skip_set(skip_checks) -> frozenset:
    """Validate a reader's ``skip_checks`` argument -> frozenset of check names."""
    if skip_checks is None:
        return frozenset()
    if isinstance(skip_checks, str):
        skip_checks = CHECKS if skip_checks == "all" else (skip_checks,)
    out = frozenset(skip_checks)
    unknown = out - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown skip_checks {sorted(unknown)}; valid: {list(CHECKS)} or 'all'")
    return out


def _hint(check: str) -> str:
    return f" [check {check!r}: pass skip_checks={{'{check}'}} to load it anyway]"


def implausible(message: str, check: str, **where) -> ImplausibleDataError:
    """An :class:`ImplausibleDataError` whose message says how to override ``check``."""
    return ImplausibleDataError(message + _hint(check), check=check, **where)


def check_range(values, name: str, file=None, site=None, line_of=None, when_of=None, field=None,
                lo_hi: tuple[float, float] | None = None, allow_nan: bool = False, skip=frozenset(),
                missing_marker: str | None = None) -> None:
    """Raise :class:`ImplausibleDataError` (check ``"range"``) if a value of ``values`` (1-D)
    is non-finite (NaN allowed only with ``allow_nan``) or outside the plausible range of ``name``.

    ``line_of(i)`` / ``when_of(i)`` give the file line / date of index ``i`` for the message;
    ``missing_marker`` describes the format's own marker (for the message).
    """
    if "range" in skip:
        return
    v = np.asarray(values, dtype=float)
    lo, hi = lo_hi if lo_hi is not None else PLAUSIBLE_RANGE[name]
    with np.errstate(invalid="ignore"):
        bad = ~((v >= lo) & (v <= hi))
    if allow_nan:
        bad &= ~np.isnan(v)
    if not bad.any():
        return
    i = int(np.flatnonzero(bad)[0])
    x = v[i]
    own = f"; this format marks missing values {missing_marker}" if missing_marker else \
        "; this format has no missing-value marker"
    if np.isnan(x):
        why = f"missing value (NaN){own}"
    elif np.isinf(x):
        why = f"non-finite value {x}"
    elif x in FOREIGN_MISSING_MARKERS:
        why = f"value {x:g} looks like another format's missing-value marker{own}"
    else:
        why = f"value {x:g} outside the plausible range [{lo:g}, {hi:g}]"
        if name in ("temp", "tmax", "tmin") and 180 <= x <= 340:
            why += " (Kelvin instead of degC?)"
    n_bad = int(bad.sum())
    when = f" on {when_of(i)}" if when_of is not None else ""
    more = f" ({n_bad} values in all)" if n_bad > 1 else ""
    raise implausible(f"{why}{when}{more}", "range", file=file,
                      line=line_of(i) if line_of is not None else None, site=site, field=field or name)


def check_tmin_tmax(tmin, tmax, file=None, site=None, line_of=None, skip=frozenset()) -> None:
    """Raise (check ``"tmin_tmax"``) when tmax < tmin on more than :data:`TMIN_TMAX_MAX_SHARE`
    of the days: swapped or mislabelled columns, not the occasional interpolation artefact."""
    if "tmin_tmax" in skip:
        return
    tmin, tmax = np.asarray(tmin, float), np.asarray(tmax, float)
    ok = np.isfinite(tmin) & np.isfinite(tmax)
    if ok.sum() == 0:
        return
    swapped = (tmax < tmin) & ok
    share = swapped.sum() / ok.sum()
    if share > TMIN_TMAX_MAX_SHARE:
        i = int(np.flatnonzero(swapped)[0])
        raise implausible(f"tmax < tmin on {share:.0%} of days (first: tmax {tmax[i]:g} < tmin {tmin[i]:g}); "
                          f"columns swapped? (real files have it on at most a few % of days)", "tmin_tmax",
                          file=file, line=line_of(i) if line_of is not None else None, site=site, field="tmax")


def check_latitude(lat: float, file=None, site=None, line=None, field="lat", skip=frozenset()) -> None:
    if "latitude" in skip:
        return
    if not (np.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise implausible(f"latitude {lat} outside [-90, 90] degrees", "latitude", file=file, line=line,
                          site=site, field=field)


#: mean observed flow / CAMELS ``q_mean`` outside this range is refused (real CAMELS files:
#: 0.83-1.16; a mm/day file read as ft3/s, or an area in m2, gives <= 0.24)
Q_MEAN_RATIO = (0.5, 2.0)
#: ``q_mean`` is the mean over the water years 1990-2009
Q_MEAN_PERIOD = ("1989-10-01", "2009-09-30")
#: fewest valid days in that period for the comparison (else it is skipped)
Q_MEAN_MIN_DAYS = 730


def check_q_mean(q_mm, time, q_mean: float, file=None, site=None, skip=frozenset(),
                 bounds: tuple[float, float] = Q_MEAN_RATIO, what: str = "streamflow") -> None:
    """Compare the mean of ``q_mm`` (mm/day) over :data:`Q_MEAN_PERIOD` with the CAMELS attribute
    ``q_mean`` (check ``"q_mean"``); skipped when ``q_mean`` is unknown or fewer than
    :data:`Q_MEAN_MIN_DAYS` valid days overlap."""
    if "q_mean" in skip or q_mean is None or not np.isfinite(q_mean) or q_mean <= 0:
        return
    t = pd.DatetimeIndex(time)
    sel = np.asarray((t >= Q_MEAN_PERIOD[0]) & (t <= Q_MEAN_PERIOD[1])) & np.isfinite(np.asarray(q_mm, float))
    if sel.sum() < Q_MEAN_MIN_DAYS:
        return
    m = float(np.mean(np.asarray(q_mm, float)[sel]))
    r = m / q_mean
    if not bounds[0] <= r <= bounds[1]:
        raise implausible(f"mean {what} {m:.4g} mm/day over {Q_MEAN_PERIOD[0]}..{Q_MEAN_PERIOD[1]} "
                          f"({int(sel.sum())} days) is {r:.3g} x the CAMELS q_mean {q_mean:.4g} mm/day, outside "
                          f"[{bounds[0]:g}, {bounds[1]:g}] (wrong units: mm/day read as ft3/s, area in m2?)",
                          "q_mean", file=file, site=site, field="streamflow")


#: plausible basin area in km2: an area given in m2 (>= 1e6 for any basin over 1 km2) is outside
AREA_KM2_RANGE = (0.01, 1.0e6)


def check_area_km2(area_km2: float, file=None, site=None, field="area_gages2", skip=frozenset()) -> None:
    """Basin area must be > 0 and finite (always) and plausible in km2 (check ``"area"``)."""
    a = float(area_km2)
    if not (np.isfinite(a) and a > 0):
        raise DataFormatError(f"basin area must be a finite number > 0 km2, got {a}", file=file, site=site,
                              field=field)
    if "area" in skip:
        return
    lo, hi = AREA_KM2_RANGE
    if not lo <= a <= hi:
        raise implausible(f"basin area {a:g} km2 outside [{lo:g}, {hi:g}] km2 (given in m2?)", "area", file=file,
                          site=site, field=field)
