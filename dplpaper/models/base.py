"""Shared pieces of every process-based model (PBM): the parameter table.

Each model declares its calibrated parameters once, in a :class:`ParameterTable`
(name, physical range, units, meaning). Networks and calibrators work in the unit
cube ``[0, 1]``; the table maps that cube to physical values, so that no model is
ever run with a value outside its declared range.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch


@dataclass(frozen=True)
class ParamSpec:
    """One calibrated parameter.

    Attributes:
        name: short name used in the literature (e.g. ``"FC"``).
        low, high: physical range; values are ``low + u * (high - low)`` for ``u`` in [0, 1].
        units: physical units, e.g. ``"mm"`` or ``"1/d"``.
        description: one line a hydrologist reads without a glossary.
        default: physical default value (used for "default parameter" runs); the middle of
            the range when not given.
    """

    name: str
    low: float
    high: float
    units: str
    description: str
    default: float | None = None

    def __post_init__(self) -> None:
        if not self.high > self.low:
            raise ValueError(f"parameter {self.name}: high ({self.high}) must exceed low ({self.low})")
        if self.default is not None and not (self.low <= self.default <= self.high):
            raise ValueError(f"parameter {self.name}: default {self.default} outside [{self.low}, {self.high}]")

    @property
    def default_value(self) -> float:
        return 0.5 * (self.low + self.high) if self.default is None else self.default


class ParameterTable:
    """Ordered table of a model's parameters with scaling between [0, 1] and physical units."""

    def __init__(self, specs: Sequence[ParamSpec]):
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate parameter names in {names}")
        self.specs: tuple[ParamSpec, ...] = tuple(specs)

    def __len__(self) -> int:
        return len(self.specs)

    def __iter__(self) -> Iterator[ParamSpec]:
        return iter(self.specs)

    def __getitem__(self, name: str) -> ParamSpec:
        for s in self.specs:
            if s.name == name:
                return s
        raise KeyError(f"no parameter named {name!r}; known: {self.names}")

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]

    def index(self, name: str) -> int:
        return self.names.index(name)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Physical lower and upper bounds, each shape ``[n_params]`` (float64)."""
        return (np.array([s.low for s in self.specs], dtype=np.float64),
                np.array([s.high for s in self.specs], dtype=np.float64))

    def defaults_unit(self) -> np.ndarray:
        """Default parameters in the unit cube, shape ``[n_params]``."""
        lo, hi = self.bounds()
        d = np.array([s.default_value for s in self.specs])
        return (d - lo) / (hi - lo)

    def _bounds_like(self, x, dim: int):
        lo, hi = self.bounds()
        shape = [1] * x.ndim
        shape[dim] = len(self)
        if isinstance(x, torch.Tensor):
            lo_t = torch.as_tensor(lo, dtype=x.dtype, device=x.device).reshape(shape)
            hi_t = torch.as_tensor(hi, dtype=x.dtype, device=x.device).reshape(shape)
            return lo_t, hi_t
        return lo.reshape(shape), hi.reshape(shape)

    def to_physical(self, unit, dim: int = -1):
        """Map values in [0, 1] to physical units along axis ``dim`` (numpy or torch).

        Raises ``ValueError`` if any value lies outside [0, 1] (a tiny float tolerance aside)
        or is NaN, so that a model never runs on parameters outside its ranges.
        """
        if unit.shape[dim] != len(self):
            raise ValueError(f"expected {len(self)} parameters ({self.names}) along dim {dim}, got shape {tuple(unit.shape)}")
        if isinstance(unit, torch.Tensor):
            bad = torch.isnan(unit).any() | (unit < -1e-6).any() | (unit > 1 + 1e-6).any()
            if bool(bad):
                raise ValueError("parameters must lie in [0, 1] (no NaN) before scaling to physical ranges")
        else:
            unit = np.asarray(unit)
            if np.isnan(unit).any() or (unit < -1e-6).any() or (unit > 1 + 1e-6).any():
                raise ValueError("parameters must lie in [0, 1] (no NaN) before scaling to physical ranges")
        lo, hi = self._bounds_like(unit, dim % unit.ndim)
        return lo + unit * (hi - lo)

    def to_unit(self, physical, dim: int = -1):
        """Inverse of :meth:`to_physical` (no range check)."""
        lo, hi = self._bounds_like(physical, dim % physical.ndim)
        return (physical - lo) / (hi - lo)

    def subset(self, rows: Sequence[int]) -> "ParameterTable":
        """The table of the rows ``rows`` (indices, in that order)."""
        return ParameterTable([self.specs[int(i)] for i in rows])

    def to_markdown(self) -> str:
        rows = ["| parameter | range | units | meaning |", "|---|---|---|---|"]
        rows += [f"| {s.name} | {s.low:g} – {s.high:g} | {s.units} | {s.description} |" for s in self.specs]
        return "\n".join(rows)


@dataclass(frozen=True)
class DynamicParams:
    """Unit-cube parameters of which a few rows vary in time, stored without copying the rest.

    Attributes:
        static: ``[site, n_params, nmul]``: every row; the rows ``rows`` hold placeholders
            (their values are taken from ``dynamic``).
        dynamic: ``[time, site, len(rows), nmul]``: the time-varying rows, day by day.
        rows: indices (into the parameter table) of the time-varying rows, distinct.

    :meth:`full` gives the equivalent ``[time, site, n_params, nmul]`` tensor (differentiable);
    process models that understand this form (HBV's fused kernel) never build it, so a dPL
    model with two dynamic rows does not copy the other thirteen rows for every day.
    """

    static: torch.Tensor
    dynamic: torch.Tensor
    rows: tuple

    def __post_init__(self) -> None:
        rows = tuple(int(r) for r in self.rows)
        object.__setattr__(self, "rows", rows)
        if self.static.ndim != 3 or self.dynamic.ndim != 4:
            raise ValueError(f"DynamicParams: static must be [site, n_params, nmul] and dynamic "
                             f"[time, site, n_rows, nmul]; got {tuple(self.static.shape)} and {tuple(self.dynamic.shape)}")
        s, n, m = self.static.shape
        if tuple(self.dynamic.shape[1:]) != (s, len(rows), m):
            raise ValueError(f"DynamicParams: dynamic shape {tuple(self.dynamic.shape)} does not match static "
                             f"{tuple(self.static.shape)} with {len(rows)} rows")
        if not rows or len(set(rows)) != len(rows) or min(rows) < 0 or max(rows) >= n:
            raise ValueError(f"DynamicParams: rows {list(rows)} must be distinct indices in [0, {n})")

    @property
    def shape(self) -> torch.Size:
        """Shape of :meth:`full`: ``[time, site, n_params, nmul]``."""
        return torch.Size((self.dynamic.shape[0], *self.static.shape))

    ndim = 4

    @property
    def device(self) -> torch.device:
        return self.static.device

    @property
    def dtype(self) -> torch.dtype:
        return self.static.dtype

    def to(self, *args, **kwargs) -> "DynamicParams":
        return DynamicParams(self.static.to(*args, **kwargs), self.dynamic.to(*args, **kwargs), self.rows)

    def full(self) -> torch.Tensor:
        """``[time, site, n_params, nmul]``, static rows repeated over time (differentiable)."""
        n_t = self.dynamic.shape[0]
        out = self.static.unsqueeze(0).expand(n_t, -1, -1, -1)
        idx = torch.tensor(self.rows, device=self.static.device)
        return out.index_copy(2, idx, self.dynamic.to(self.static.dtype))


class ProcessModel(torch.nn.Module):
    """Base class of every differentiable process-based model (PBM) in dplpaper.

    A subclass sets ``parameter_table`` (class attribute), ``nmul`` (parallel parameter
    components per site; 1 for most models) and ``forcing_names`` (channel order of the
    forcing tensor), and implements :meth:`forward`.

    ``forward(forcing, params, warmup=0)``:
        forcing: ``[time, site, n_forcing]`` in the units of ``forcing_names``.
        params: unit-cube parameters ``[site, n_params, nmul]`` (static) or
            ``[time, site, n_params, nmul]`` (time-varying), values in [0, 1].
        warmup: number of leading days used only to spin up the states.
        returns: ``dict`` of output name -> ``[time - warmup, site]`` tensors, physical units
            (e.g. ``"streamflow"`` in mm/day, ``"soil_moisture"`` in m3/m3).
    The dPL model is then two lines: ``params = net(inputs); return pbm(forcing, params)``.
    """

    parameter_table: ParameterTable
    forcing_names: tuple[str, ...] = ("precip", "temp", "pet")
    nmul: int = 1

    @property
    def n_params(self) -> int:
        return len(self.parameter_table)

    def forward(self, forcing: torch.Tensor, params: torch.Tensor, warmup: int = 0) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError
