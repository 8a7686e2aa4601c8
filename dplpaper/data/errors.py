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


class DataNotFoundError(FileNotFoundError):
    """A registered data set (or one of its files) could not be found anywhere."""
