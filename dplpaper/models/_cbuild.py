"""Compile-once, cached C kernels loaded with :mod:`ctypes` (shared by HBV's and the VIC-style model's).

A kernel's source is compiled with gcc (``$CC``, else ``gcc``/``cc``) at first use and cached in
``$DPLPAPER_BUILD_CACHE`` (default ``~/.cache/dplpaper``) under ``<stem>_<hash>.so``, the hash
taken over the source, the compiler and the flags, so a cached library is never stale. The file
is written to a temporary name and renamed (concurrent processes never load a half-written one).
``DPLPAPER_NO_C=1`` disables every kernel (callers then run their NumPy/PyTorch reference).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

__all__ = ["cache_dir", "build_and_load"]


def cache_dir() -> Path:
    """Where compiled kernels live: ``$DPLPAPER_BUILD_CACHE``, else ``~/.cache/dplpaper``.

    Kept apart from the data cache (``$DPLPAPER_CACHE``), which tests point at temporary folders."""
    d = os.environ.get("DPLPAPER_BUILD_CACHE")
    return Path(d) if d else Path.home() / ".cache" / "dplpaper"


def _compile(cc: str, src: Path, flags: Sequence[str], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
    os.close(fd)
    try:
        subprocess.run([cc, *flags, "-o", tmp, str(src), "-lm"], check=True, capture_output=True, text=True,
                       timeout=120)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def build_and_load(src: Path, stem: str, flag_sets: Sequence[Sequence[str]], abi_symbol: str,
                   abi_version: int) -> tuple[ctypes.CDLL | None, str | None]:
    """Compile ``src`` with the first of ``flag_sets`` that works and load it.

    Returns ``(library, None)``, or ``(None, reason)`` when C is disabled, no compiler is found, or
    every flag set fails (to compile, to load, or to report ``abi_symbol() == abi_version``)."""
    if os.environ.get("DPLPAPER_NO_C", "") not in ("", "0"):
        return None, "disabled by DPLPAPER_NO_C"
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return None, "no C compiler (gcc/cc) found"
    code = Path(src).read_bytes()
    errors = []
    for flags in flag_sets:
        key = hashlib.sha256(code + " ".join([cc, *flags]).encode()).hexdigest()[:16]
        path = cache_dir() / f"{stem}_{key}.so"
        try:
            if not path.exists():
                _compile(cc, Path(src), flags, path)
            lib = ctypes.CDLL(str(path))
            if getattr(lib, abi_symbol)() != abi_version:
                raise OSError("ABI version mismatch")
        except (OSError, subprocess.SubprocessError) as e:
            msg = getattr(e, "stderr", None) or str(e)
            errors.append(f"{' '.join(flags)}: {msg.strip()[:300]}")
            continue
        return lib, None
    return None, "compilation failed: " + " | ".join(errors)
