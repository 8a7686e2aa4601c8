"""The package's thread policy, set in one place (issue 16).

**One intra-op thread per process by default; parallelism across processes.** Measured on a
2-core machine (``benchmarks/bench_threads.py`` -> ``benchmarks/results/threads.json``): with two
PyTorch/OpenMP threads, one competing single-threaded process slows a training step 2.3-3x (every
parallel region waits for the thread the scheduler took away; OpenMP's passive wait policy trades
that for a 2-4x loss on an idle machine for small LSTM steps), while one thread slows by 1.0-1.6x.
A single thread also makes a run's floating-point path independent of the machine's load and the
same as the one the committed notebook outputs come from (``make refresh-outputs``). The cores
are used by running independent work side by side: ``dplpaper.reproduce --jobs 2`` executes the
case notebooks in two processes, ``make test`` runs pytest with two workers.

The number of threads, in order: ``$DPLPAPER_THREADS``; else ``$OMP_NUM_THREADS``; else 1.
:func:`apply` (called when :mod:`dplpaper` is imported) sets PyTorch's intra-op threads to it and
its inter-op threads to 1; the compiled HBV kernel splits sites over ``torch.get_num_threads()``,
so it follows. Long single runs on an otherwise idle machine (a full-mode training) may ask for
more with ``DPLPAPER_THREADS=2``.
"""
from __future__ import annotations

import os

__all__ = ["DEFAULT_THREADS", "configured_threads", "apply", "describe"]

#: intra-op threads when neither ``$DPLPAPER_THREADS`` nor ``$OMP_NUM_THREADS`` is set
DEFAULT_THREADS = 1


def configured_threads(environ=None) -> int:
    """Threads the policy asks for (``$DPLPAPER_THREADS``, else ``$OMP_NUM_THREADS``, else 1).

    Raises ``ValueError`` naming the variable when its value is not a positive integer."""
    env = os.environ if environ is None else environ
    for name in ("DPLPAPER_THREADS", "OMP_NUM_THREADS"):
        raw = env.get(name)
        if raw is None or raw.strip() == "":
            continue
        try:
            n = int(raw)
        except ValueError:
            raise ValueError(f"${name}={raw!r}: expected a positive integer number of threads") from None
        if n < 1:
            raise ValueError(f"${name}={raw!r}: expected a positive integer number of threads")
        return n
    return DEFAULT_THREADS


def apply(environ=None) -> int:
    """Set PyTorch's intra-op threads to :func:`configured_threads` (and inter-op threads to 1
    where PyTorch still allows it); return the number set."""
    import torch

    n = configured_threads(environ)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only settable before the first inter-op work; keep what is there
        pass
    return n


def describe() -> dict:
    """The policy in force in this process (for benchmark and run provenance)."""
    import torch

    return {"default_threads": DEFAULT_THREADS, "configured_threads": configured_threads(),
            "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
            "DPLPAPER_THREADS": os.environ.get("DPLPAPER_THREADS"),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}
