"""Progress bars: on a terminal only.

``tqdm.auto`` picks a widget bar inside Jupyter and warns ("IProgress not found") when ipywidgets
is missing; either way the bar lands in notebook outputs and the rendered book. :func:`tqdm` here
is tqdm's text bar, switched off unless standard error is a terminal (or ``DPLPAPER_PROGRESS=1``):
command-line runs show progress, notebooks, logs and CI stay clean.
"""
from __future__ import annotations

import os
import sys

__all__ = ["tqdm", "progress_enabled"]


def progress_enabled() -> bool:
    """True when standard error is a terminal, or ``DPLPAPER_PROGRESS=1`` (``0`` forces off)."""
    env = os.environ.get("DPLPAPER_PROGRESS", "")
    if env in ("0", "1"):
        return env == "1"
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def tqdm(*args, **kwargs):
    """``tqdm.std.tqdm`` (text bar), disabled when :func:`progress_enabled` is False or the caller
    passes ``disable=True``."""
    from tqdm.std import tqdm as _tqdm

    kwargs["disable"] = bool(kwargs.get("disable", False)) or not progress_enabled()
    return _tqdm(*args, **kwargs)
