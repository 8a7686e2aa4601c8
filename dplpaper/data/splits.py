"""Train/test splits used in the paper (all random choices take a seed).

- :func:`temporal_split`: CAMELS temporal test (train 1999-10-01..2008-09-30, test 1989-10-01..1999-09-30,
  the MPR/Tsai et al. periods);
- :func:`pub_folds`: k-fold prediction-in-ungauged-basins folds (seeded random, or MHPI's published folds);
- :func:`basin_fractions`: nested training-basin subsets for scaling curves;
- :func:`grid_sample` / :func:`density_sample` / :func:`neighbour_cells`: the SMAP sampling densities
  and the spatial-generalization neighbours, on the lattice of the 412 CONUSv4f1 cells.

SMAP analogue of s16/s8/s4. The paper samples one cell per 16x16 / 8x8 / 4x4 patch of the
SMAP grid and tests on the cell 3 rows north and 3 columns east of each training cell. The
412 cells here are themselves a 1-in-4 subsample (every 4th row and column) of the 36-km
EASE-2 grid, so they lie on an 18 x 38 lattice (``row``/``col`` from the unique latitudes and
longitudes, see :mod:`dplpaper.data.smap`). One lattice step is 4 EASE-2 cells, hence the
analogue: s16 -> one cell per 4x4 lattice patch, s8 -> per 2x2, s4 -> every cell
(:data:`DENSITY_PATCH`). The neighbour is the lattice cell one row north and one column east
(the nearest lattice point to "3 north, 3 east" on the 4x coarser lattice); where that cell
does not exist or is a training cell, the nearest non-training cell (lattice distance) with
row >= r and col >= c is used. Where there is none, the index is -1. With s4 every cell
trains, so there are no neighbours: use s8 (as in the paper's Figure 2d) or s16.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from .errors import DataFormatError

TRAIN_PERIOD = ("1999-10-01", "2008-09-30")
TEST_PERIOD = ("1989-10-01", "1999-09-30")
DENSITY_PATCH = {"s16": 4, "s8": 2, "s4": 1}


def check_no_nan(ds: xr.Dataset, variables: Sequence[str], period: tuple[str, str] | None = None,
                 what: str = "forcing") -> None:
    """Raise DataFormatError naming site, field and first date if any variable has NaN in ``period``."""
    sub = ds if period is None else ds.sel(time=slice(*period))
    for v in variables:
        if v not in sub:
            raise DataFormatError(f"{what} variable missing", field=v)
        arr = sub[v].transpose("site", "time").values
        bad = np.isnan(arr)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise DataFormatError(f"NaN {what} on {pd.Timestamp(sub['time'].values[j]).date()} "
                                  f"({int(bad.sum())} NaN in window {period})", site=str(sub['site'].values[i]),
                                  field=v, file=ds.attrs.get("source"))


def temporal_split(ds: xr.Dataset, train: tuple[str, str] = TRAIN_PERIOD, test: tuple[str, str] = TEST_PERIOD,
                   forcing_vars: Sequence[str] | None = None) -> tuple[xr.Dataset, xr.Dataset]:
    """Slice ``ds`` into (train, test) by time; check that each window is fully covered by the
    time axis and (if ``forcing_vars``) that the forcings have no NaN in either window."""
    t = pd.DatetimeIndex(ds["time"].values)
    for name, (a, b) in (("train", train), ("test", test)):
        if t[0] > pd.Timestamp(a) or t[-1] < pd.Timestamp(b):
            raise DataFormatError(f"{name} window {a}..{b} not covered by the data ({t[0].date()}..{t[-1].date()})",
                                  field="time", file=ds.attrs.get("source"))
        if forcing_vars:
            check_no_nan(ds, forcing_vars, (a, b))
    return ds.sel(time=slice(*train)), ds.sel(time=slice(*test))


def random_pub_folds(basins: Sequence[str], k: int = 10, seed: int = 0) -> list[list[str]]:
    """Shuffle ``basins`` with ``default_rng(seed)`` and cut into ``k`` folds of near-equal size."""
    b = np.asarray(sorted(str(x) for x in basins), dtype=object)
    if k < 2 or k > len(b):
        raise ValueError(f"k must be in 2..{len(b)}, got {k}")
    perm = np.random.default_rng(seed).permutation(len(b))
    return [sorted(b[idx].tolist()) for idx in np.array_split(perm, k)]


def pub_folds(basins: Sequence[str] | None = None, k: int = 10, seed: int | None = 0, source: str = "random",
              quick: bool | None = None) -> list[list[str]]:
    """PUB folds. ``source="random"``: :func:`random_pub_folds` (``basins`` required).
    ``source="mhpi"``: MHPI's published 10 folds (671 basins), restricted to ``basins`` if given."""
    if source == "random":
        if basins is None:
            raise ValueError("random PUB folds need the basin list")
        return random_pub_folds(basins, k, 0 if seed is None else seed)
    if source == "mhpi":
        from .camels import load_mhpi_pub_folds
        folds = load_mhpi_pub_folds(quick=quick)
        if basins is not None:
            keep = {str(b) for b in basins}
            folds = [[b for b in f if b in keep] for f in folds]
        return folds
    raise ValueError(f"unknown source {source!r}: 'random' or 'mhpi'")


def pub_split(folds: list[list[str]], i: int) -> tuple[list[str], list[str]]:
    """(train basins = all folds but ``i``, test basins = fold ``i``)."""
    test = list(folds[i])
    train = sorted(b for j, f in enumerate(folds) if j != i for b in f)
    return train, test


def basin_fractions(basins: Sequence[str], fractions: Sequence[float], seed: int = 0) -> dict[float, list[str]]:
    """Nested training subsets: one permutation per seed; fraction f takes the first ceil(f*n).

    So subsets for smaller fractions are contained in those for larger ones (same seed)."""
    b = np.asarray(sorted(str(x) for x in basins), dtype=object)
    perm = np.random.default_rng(seed).permutation(len(b))
    out = {}
    for f in sorted(fractions):
        if not 0 < f <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {f}")
        out[f] = sorted(b[perm[:max(1, math.ceil(f * len(b)))]].tolist())
    return out


def grid_sample(row, col, patch: int, seed: int = 0) -> np.ndarray:
    """Indices of training cells: one random cell (``default_rng(seed)``) per ``patch x patch``
    block of the lattice (blocks without cells are skipped). ``patch=1`` returns every cell."""
    row = np.asarray(row, int)
    col = np.asarray(col, int)
    if patch < 1:
        raise ValueError("patch must be >= 1")
    rng = np.random.default_rng(seed)
    block = (row // patch) * (col.max() // patch + 1) + col // patch
    chosen = []
    for blk in np.unique(block):
        members = np.flatnonzero(block == blk)
        chosen.append(int(rng.choice(members)))
    return np.sort(np.asarray(chosen, dtype=int))


def density_sample(ds: xr.Dataset, density: str = "s8", seed: int = 0) -> np.ndarray:
    """Training-cell indices of the SMAP dataset for density ``"s16"``, ``"s8"`` or ``"s4"``."""
    if density not in DENSITY_PATCH:
        raise ValueError(f"density must be one of {list(DENSITY_PATCH)}")
    return grid_sample(ds["row"].values, ds["col"].values, DENSITY_PATCH[density], seed)


def neighbour_cells(row, col, train_idx, d_row: int = 1, d_col: int = 1) -> np.ndarray:
    """For each training cell, the test neighbour (index, or -1): the cell at (r+d_row, c+d_col)
    when present and not training, else the nearest non-training cell with row >= r, col >= c."""
    row = np.asarray(row, int)
    col = np.asarray(col, int)
    train = set(int(i) for i in train_idx)
    free = np.asarray([i for i in range(len(row)) if i not in train], dtype=int)
    out = np.full(len(train_idx), -1, dtype=int)
    for k, i in enumerate(train_idx):
        r, c = row[i], col[i]
        cand = free[(row[free] >= r) & (col[free] >= c)]
        if cand.size == 0:
            continue
        d = (row[cand] - (r + d_row)) ** 2 + (col[cand] - (c + d_col)) ** 2
        out[k] = int(cand[np.lexsort((cand, d))[0]])
    return out
