"""Compact NetCDF cache of assembled data sets.

``cached(name, inputs, build, **params)`` returns ``build()``'s Dataset, reading it from
``<cache dir>/<name>-<key>.nc`` when present. The key is a sha256 over the cache format
version, ``name``, ``params`` and, for every input file, its resolved path, size and
modification time (ns): change any input and the key changes, so a cache entry is never
stale. Files are written atomically (temp file + rename), float variables as float32 with
zlib compression. The cache dir is ``$DPLPAPER_CACHE`` or ``<repo>/results/cache``.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import xarray as xr

from .registry import REPO_ROOT

CACHE_VERSION = 1
ENV_CACHE = "DPLPAPER_CACHE"


def cache_dir() -> Path:
    d = Path(os.environ.get(ENV_CACHE) or (REPO_ROOT / "results" / "cache"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def cache_key(name: str, inputs: Iterable, params: dict | None = None) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"v": CACHE_VERSION, "name": name, "params": params or {}}, sort_keys=True,
                        default=str).encode())
    for p in inputs:
        p = Path(p).resolve()
        st = p.stat()
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def encoding_for(ds: xr.Dataset, complevel: int = 4) -> dict:
    """float32 + zlib for floating variables, zlib for the rest (strings excluded)."""
    enc = {}
    for v in list(ds.data_vars) + [c for c in ds.coords if c not in ds.dims]:
        da = ds[v]
        if np.issubdtype(da.dtype, np.floating):
            enc[v] = {"dtype": "float32", "zlib": True, "complevel": complevel, "_FillValue": np.float32(np.nan)}
        elif np.issubdtype(da.dtype, np.integer):
            enc[v] = {"zlib": True, "complevel": complevel}
    if "time" in ds.coords:
        enc["time"] = {"units": "days since 1970-01-01", "dtype": "int32"}
    return enc


def write_netcdf(ds: xr.Dataset, path: Path, complevel: int = 4) -> Path:
    """Write ``ds`` compactly (float32, zlib) and atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".nc.tmp")
    os.close(fd)
    try:
        ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding_for(ds, complevel))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_netcdf(path: Path) -> xr.Dataset:
    with xr.open_dataset(path, engine="netcdf4") as ds:
        out = ds.load()
    for c in out.coords:
        if out[c].dtype.kind in "OU" and c == "site":
            out = out.assign_coords(site=out["site"].values.astype(str).astype(object))
    return out


def cached(name: str, inputs: Iterable, build: Callable[[], xr.Dataset], params: dict | None = None,
           refresh: bool = False) -> xr.Dataset:
    """Return the cached Dataset for (name, inputs, params), building and storing it if needed.

    Values come back as float32 precision (the cache's storage type); coordinates and attrs kept.
    """
    inputs = list(inputs)
    path = cache_dir() / f"{name}-{cache_key(name, inputs, params)}.nc"
    if path.is_file() and not refresh:
        return read_netcdf(path)
    ds = build()
    write_netcdf(ds, path)
    return read_netcdf(path)
