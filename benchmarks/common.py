"""Helpers shared by the benchmarks: machine information and JSON output."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

import dplpaper  # noqa: F401  (applies the package's thread policy before anything is measured)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: CPU flags that decide which vector code the libraries run (``/proc/cpuinfo``)
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile")
#: environment variables that pin a library's code path (set by the Makefile; see DEVELOPING.md)
ISA_PINS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "NPY_DISABLE_CPU_FEATURES", "OPENBLAS_CORETYPE")


def cpu_flags() -> set[str]:
    """Every flag the CPU reports in ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def vector_isa() -> dict:
    """The CPU's vector instruction sets and the paths the libraries take on it.

    ``cpu_flags``: the :data:`VECTOR_FLAGS` the CPU reports; ``torch_capability``: the kernel set
    PyTorch dispatches to (``DEFAULT`` under ``ATEN_CPU_CAPABILITY=default``); ``pins``: the
    :data:`ISA_PINS` set in the environment. A benchmark from another ISA is not comparable."""
    flags = cpu_flags()
    return {"cpu_flags": [f for f in VECTOR_FLAGS if f in flags],
            "torch_capability": torch.backends.cpu.get_cpu_capability(),
            "pins": {k: os.environ[k] for k in ISA_PINS if k in os.environ}}


def machine_info() -> dict:
    """CPU, its vector ISA (:func:`vector_isa`), cores, threads, library versions, date and the
    load average at the start."""
    return {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu_model(), "isa": vector_isa(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _clean(x):
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def write_json(path, obj) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(_clean(obj), indent=1) + "\n")
