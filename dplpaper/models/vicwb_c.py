"""Compiled time loop of the VIC-style model (:mod:`dplpaper.models.vicwb`), ``_csrc/vicwb.c``.

The NumPy loop of :meth:`~dplpaper.models.vicwb.VICStyleModel.run` does ~100 small array operations
per day; this C loop does the same arithmetic per site and day (float64, same order, no fused
multiply-add), so per-basin SCE-UA of the VIC-style model and the surrogate's training set cost a
fraction of the time. Built and cached like HBV's kernel (:mod:`dplpaper.models._cbuild`); the
NumPy loop stays the reference (``VICStyleModel(backend="numpy")``) and a test holds the two equal.
"""
from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import numpy as np

from dplpaper.models._cbuild import build_and_load

__all__ = ["available", "unavailable_reason", "run"]

_SRC = Path(__file__).parent / "_csrc" / "vicwb.c"
_FLAGS = ["-O3", "-fPIC", "-shared", "-std=c99", "-ffp-contract=off", "-fno-math-errno"]
_lock = threading.Lock()
_state: dict = {}


def _load():
    with _lock:
        if "lib" not in _state:
            lib, reason = build_and_load(_SRC, "vicwb", [_FLAGS], "vicwb_abi_version", 1)
            if lib is not None:
                P, I = ctypes.c_void_p, ctypes.c_int
                lib.vicwb_run.argtypes = [I, I, I] + [P] * 14
                lib.vicwb_run.restype = None
            _state.update(lib=lib, reason=reason)
        return _state["lib"]


def available() -> bool:
    """True when the C kernel compiled and loaded."""
    return _load() is not None


def unavailable_reason() -> str | None:
    """Why the kernel is unavailable (``None`` when it is available)."""
    _load()
    return _state["reason"]


def _c(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def run(forcing, par, warmup, smax, sres, sfc, swp, drain, kdt, su_max, z, consts, layers, swe):
    """One call of the C loop. Arrays as in :meth:`VICStyleModel.run`: ``forcing [T, S, 3]``, ``par
    [S, 5]`` physical, soil storages ``[3, S]`` (mm), ``su_max [S]``, ``z [3]`` (mm per m3/m3),
    ``consts`` (ddf, t_snow, t_rain, t_melt, bare fraction, 3 root fractions), initial ``layers [3, S]``
    and ``swe [S]``. Returns ``(outputs [10, T - warmup, S], final layers [3, S], final swe [S])``."""
    lib = _load()
    if lib is None:
        raise RuntimeError(f"VIC-style C kernel unavailable: {_state['reason']}")
    f = _c(forcing)
    n_t, n_s, _ = f.shape
    arrays = [f, _c(par), _c(smax), _c(sres), _c(sfc), _c(swp), _c(drain), _c(kdt), _c(su_max), _c(z), _c(consts)]
    S, w = _c(layers).copy(), _c(swe).copy()
    out = np.empty((10, n_t - warmup, n_s))
    lib.vicwb_run(n_t, n_s, int(warmup), *(a.ctypes.data for a in arrays), S.ctypes.data, w.ctypes.data,
                  out.ctypes.data)
    return out, S, w
