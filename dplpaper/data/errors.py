"""Errors raised by the data layer."""
from __future__ import annotations


class DataFormatError(ValueError):
    """A data file or array does not have the documented format.

    The message always names the file (or data set), the line or site, and the field,
    e.g. ``"camels_topo.txt line 5, field 'area_gages2': cannot parse 'x1.2' as a number"``.
    """

    def __init__(self, message: str, *, file=None, line=None, site=None, field=None):
        parts = []
        if file is not None:
            parts.append(str(file))
        if line is not None:
            parts.append(f"line {line}")
        if site is not None:
            parts.append(f"site {site}")
        if field is not None:
            parts.append(f"field {field!r}")
        prefix = ", ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.file, self.line, self.site, self.field = file, line, site, field


class ImplausibleDataError(DataFormatError):
    """A value parses but is physically implausible (wrong units, a foreign missing-value
    marker, swapped columns, ...). ``check`` names the plausibility check that failed; the
    readers' ``skip_checks`` argument turns that check off for the rare real case."""

    def __init__(self, message: str, *, check: str, file=None, line=None, site=None, field=None):
        super().__init__(message, file=file, line=line, site=site, field=field)
        self.check = check


class DataNotFoundError(FileNotFoundError):
    """A registered data set (or one of its files) could not be found anywhere."""


class DataSetIncompleteError(DataNotFoundError):
    """A data set folder was configured (``$DPLPAPER_DATA`` or a search root holds it) but
    lacks required files; raised instead of silently falling back to another copy."""


class DataFetchError(DataNotFoundError):
    """Downloading a data set failed (network, HTTP error, timeout, stalled transfer, deadline);
    the message is one line naming the data set and the URL."""
