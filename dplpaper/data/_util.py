"""Small shared helpers for the readers (parsing checks, dataset attrs)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataFormatError


def read_text(path: Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise DataFormatError("file does not exist", file=path)
    return path.read_text()


def parse_table(lines: list[str], names: list[str], file, first_line: int, sep: str = " ",
                str_cols: tuple[str, ...] = ()) -> pd.DataFrame:
    """Parse data lines into a DataFrame with exactly ``len(names)`` fields per line.

    ``first_line`` is the 1-based line number of ``lines[0]`` in ``file`` (for messages).
    Whitespace (spaces and TABs) separates fields when ``sep == " "``. Numbers that do not
    parse, and lines with too few or too many fields, raise :class:`DataFormatError`.
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
    try:
        return pd.DatetimeIndex(pd.to_datetime(
            pd.DataFrame({"year": np.asarray(y, int), "month": np.asarray(m, int), "day": np.asarray(d, int)}))
        ).as_unit("ns")
    except (ValueError, pd.errors.OutOfBoundsDatetime) as e:
        # find the offending line
        for i, (a, b, c) in enumerate(zip(y, m, d)):
            try:
                pd.Timestamp(int(a), int(b), int(c))
            except ValueError:
                raise DataFormatError(f"invalid date {int(a)}-{int(b)}-{int(c)}", file=file,
                                      line=first_line + i, field="date") from None
        raise DataFormatError(str(e), file=file, field="date") from None


def set_attrs(da, units: str, long_name: str):
    da.attrs.update(units=units, long_name=long_name)
    return da


def as_site_ids(ids) -> np.ndarray:
    return np.asarray([str(s) for s in ids], dtype=object)
