"""Fused C backend of HBV: the whole time loop, forward and hand-written adjoint, in C.

Why: the reference loop in :mod:`dplpaper.models.hbv` launches ~60 small tensor operations
per day, so a 3-year run of 100 sites spends its time in the PyTorch dispatcher and the
autograd graph (tens of thousands of nodes). Here one C call runs the forward loop (saving
the 5 states and the soil-wetness power per step), and one C call runs the adjoint loop
backwards in time; both are wrapped in a :class:`torch.autograd.Function`. The nmul average
is taken inside C. Routing (a 15-tap convolution) stays in PyTorch. The forward pass keeps
only the states every 32 days; the backward pass re-runs each 32-day chunk from its
checkpoint into a small per-thread tape that stays in cache and sweeps it backwards (a full
tape would be ~50 MB at 100 sites x 16 components x 3 years, and memory traffic, not
arithmetic, would then set the speed). The inner loop over components is branch-free and
vectorised (AVX-512/AVX2/SSE2 clones chosen at load time), with an inline exp/log.

Build: ``_csrc/hbv.c`` is compiled with gcc (``$CC``, else ``gcc``/``cc``) at first use, with
``-O3 -fPIC -shared -std=c99 -ffp-contract=off -fno-trapping-math -fno-math-errno -pthread``.
No ``-ffast-math``: IEEE semantics (no reassociation, NaN/inf propagate, so NaN checks keep
working) and reproducibility are kept; ``-fno-trapping-math`` only lets gcc evaluate both
sides of a select, which changes no result. No ``-march=native``: the library carries
AVX-512/AVX2/baseline clones and picks one at load time, and FMA contraction is off, so all
clones give the same bits. Sites are split into ``torch.get_num_threads()`` contiguous
blocks, one pthread each (not OpenMP: a second OpenMP runtime next to PyTorch's spin-waits
and steals the cores); each site always runs the same code, so results are bit-for-bit
identical for any thread count. The library is cached in ``$DPLPAPER_CACHE`` (default
``~/.cache/dplpaper``) under a name holding the hash of the source and flags, and loaded
with :mod:`ctypes`. ``DPLPAPER_NO_C=1`` disables the backend (``HBV(backend="auto")`` then
runs the PyTorch loop, ``backend="fused"`` warns and does the same).

Public API:
    :func:`available`, :func:`unavailable_reason`
    :func:`hbv_fused_run` (differentiable, torch) — used by ``HBV(backend="fused"|"auto")``
    :func:`hbv_forward_numpy` (forward only, NumPy, no torch overhead) — for SCE-UA.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np
import torch

_SRC = Path(__file__).parent / "_csrc" / "hbv.c"
_FLAGS = ["-O3", "-fPIC", "-shared", "-std=c99", "-ffp-contract=off", "-fno-trapping-math", "-fno-math-errno",
          "-pthread"]
_lock = threading.Lock()
_lib = None
_reason: str | None = None
_tried = False


def _cache_dir() -> Path:
    d = os.environ.get("DPLPAPER_CACHE")
    return Path(d) if d else Path.home() / ".cache" / "dplpaper"


def _compile(cc: str, flags: list[str], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
    os.close(fd)
    try:
        subprocess.run([cc, *flags, "-o", tmp, str(_SRC), "-lm"], check=True, capture_output=True, text=True,
                       timeout=120)
        os.replace(tmp, out)  # atomic: concurrent processes never load a half-written file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load():
    """Compile (once, cached) and load the C library; sets the failure reason otherwise."""
    global _lib, _reason, _tried
    with _lock:
        if _tried:
            return _lib
        _tried = True
        if os.environ.get("DPLPAPER_NO_C", "") not in ("", "0"):
            _reason = "disabled by DPLPAPER_NO_C"
            return None
        cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
        if cc is None:
            _reason = "no C compiler (gcc/cc) found"
            return None
        src = _SRC.read_bytes()
        errors = []
        for flags in (_FLAGS,):
            key = hashlib.sha256(src + " ".join([cc, *flags]).encode()).hexdigest()[:16]
            path = _cache_dir() / f"hbv_{key}.so"
            try:
                if not path.exists():
                    _compile(cc, flags, path)
                lib = ctypes.CDLL(str(path))
                if lib.hbv_abi_version() != 4:
                    raise OSError("ABI version mismatch")
            except (OSError, subprocess.SubprocessError) as e:
                msg = getattr(e, "stderr", None) or str(e)
                errors.append(f"{' '.join(flags)}: {msg.strip()[:300]}")
                continue
            _setup(lib)
            _lib = lib
            return lib
        _reason = "compilation failed: " + " | ".join(errors)
        return None


def _setup(lib) -> None:
    P, I = ctypes.c_void_p, ctypes.c_int
    for sfx in ("_f64", "_f32"):
        fw = getattr(lib, "hbv_forward" + sfx)
        fw.argtypes = [P, P, I, I, I, I, I, P, P, P, P, I]
        fw.restype = None
        bw = getattr(lib, "hbv_backward" + sfx)
        bw.argtypes = [P, P, I, I, I, I, I, P, P, P, P, P, I]
        bw.restype = None


def available() -> bool:
    """True when the C library compiled and loaded."""
    return _load() is not None


def unavailable_reason() -> str | None:
    """Why the backend is unavailable (``None`` when it is available)."""
    _load()
    return _reason


def _ptr(x) -> int:
    return x.data_ptr() if isinstance(x, torch.Tensor) else x.ctypes.data


def _sfx(dtype) -> str:
    if dtype in (torch.float64, np.float64):
        return "_f64"
    if dtype in (torch.float32, np.float32):
        return "_f32"
    raise TypeError(f"fused HBV supports float32 and float64, got {dtype}")


def _n_ckpt(T: int) -> int:
    """Number of state checkpoints the forward pass keeps for the backward pass."""
    k = _load().hbv_chunk()
    return (T + k - 1) // k


class HBVFusedFunction(torch.autograd.Function):
    """``(forcing [T,B,3], par [B,NP,M] or [T,B,NP,M] physical, states0 [B,5,M]) -> (q [T,B], states_T [B,5,M])``.

    ``q`` is the unrouted runoff averaged over the ``M`` components (mm/d). Differentiable with
    respect to ``par`` and ``states0`` (not ``forcing``); ``states_T`` carries gradient too.
    """

    @staticmethod
    def forward(ctx, forcing, par, states0):
        lib = _load()
        T, B, _ = forcing.shape
        NP, M = par.shape[-2], par.shape[-1]
        betaet = NP == 13
        dynamic = par.ndim == 4
        forcing = forcing.contiguous()
        par = par.contiguous()
        states0 = states0.contiguous()
        q = forcing.new_empty((T, B))
        st = states0.new_empty((B, 5, M))
        save = forcing.new_empty((B, _n_ckpt(T), 5, M))  # state checkpoints
        getattr(lib, "hbv_forward" + _sfx(forcing.dtype))(
            _ptr(forcing), _ptr(par), int(dynamic), T, B, M, int(betaet), _ptr(states0), _ptr(st), _ptr(q),
            _ptr(save), torch.get_num_threads())
        ctx.save_for_backward(forcing, par, save)
        return q, st

    @staticmethod
    def backward(ctx, gq, gst):
        forcing, par, save = ctx.saved_tensors
        lib = _load()
        T, B, _ = forcing.shape
        NP, M = par.shape[-2], par.shape[-1]
        gq = forcing.new_zeros((T, B)) if gq is None else gq.to(forcing.dtype).contiguous()
        gst_ptr = None if gst is None else gst.to(forcing.dtype).contiguous()
        gpar = torch.empty_like(par)
        gs0 = forcing.new_empty((B, 5, M))
        getattr(lib, "hbv_backward" + _sfx(forcing.dtype))(
            _ptr(forcing), _ptr(par), int(par.ndim == 4), T, B, M, int(NP == 13), _ptr(save), _ptr(gq),
            None if gst_ptr is None else _ptr(gst_ptr), _ptr(gpar), _ptr(gs0), torch.get_num_threads())
        return None, gpar, gs0


def hbv_fused_run(forcing: torch.Tensor, par: torch.Tensor, states0: torch.Tensor):
    """Fused HBV time loop (drop-in for :func:`dplpaper.models.hbv.hbv_loop` without fluxes).

    Args:
        forcing: ``[time, site, 3]`` precip (mm/d), temp (degC), pet (mm/d); CPU, float32/64.
        par: physical core parameters (12, or 13 with BETAET), ``[site, n, nmul]`` or
            ``[time, site, n, nmul]``.
        states0: initial storages ``[site, 5, nmul]`` (mm).
    Returns:
        ``(q [time, site], final_states [site, 5, nmul])`` — unrouted nmul-averaged runoff.
    """
    if not available():
        raise RuntimeError(f"fused HBV backend unavailable: {unavailable_reason()}")
    if forcing.requires_grad:
        raise ValueError("the fused HBV backend does not differentiate with respect to forcing; use backend='torch'")
    if par.shape[-2] not in (12, 13):
        raise ValueError(f"hbv_fused_run expects 12 or 13 core parameter rows, got {par.shape[-2]}")
    dt = forcing.dtype
    par = par.to(dt)
    states0 = states0.to(dt)
    if torch.is_grad_enabled() and (par.requires_grad or states0.requires_grad):
        return HBVFusedFunction.apply(forcing, par, states0)
    return _forward_only(forcing, par, states0)


def _forward_only(forcing, par, states0):
    lib = _load()
    T, B, _ = forcing.shape
    M = par.shape[-1]
    forcing = forcing.detach().contiguous()
    par = par.detach().contiguous()
    states0 = states0.detach().contiguous()
    q = forcing.new_empty((T, B))
    st = states0.new_empty(states0.shape)
    getattr(lib, "hbv_forward" + _sfx(forcing.dtype))(
        _ptr(forcing), _ptr(par), int(par.ndim == 4), T, B, M, int(par.shape[-2] == 13), _ptr(states0), _ptr(st),
        _ptr(q), None, torch.get_num_threads())
    return q, st


def hbv_forward_numpy(forcing: np.ndarray, params_physical: np.ndarray, warmup: int = 0,
                      initial_states: np.ndarray | None = None, nthreads: int | None = None,
                      return_unrouted: bool = False) -> np.ndarray:
    """Forward-only HBV in C on NumPy arrays (no autograd, no torch dispatch): for SCE-UA.

    Args:
        forcing: ``[time, site, 3]`` precip (mm/d), temp (degC), pet (mm/d); float32 or float64.
        params_physical: physical parameters ``[site, n, nmul]`` (or ``[time, site, n, nmul]``),
            rows in the order of :func:`dplpaper.models.hbv.hbv_parameter_table`; ``n`` tells the
            configuration: 12 (no routing), 13 (BETAET), 14 (routing), 15 (BETAET + routing).
            Values are not range-checked here (the caller scales them).
        warmup: leading days that only spin up states (their flow still fills the routing history).
        initial_states: ``[site, 5, nmul]`` (mm); default 0.001 everywhere.
        nthreads: threads (default ``torch.get_num_threads()``).
        return_unrouted: return the unrouted runoff even when routing rows are present.
    Returns:
        streamflow ``[time - warmup, site]`` (mm/d) in the dtype of ``forcing`` — routed with the
        gamma unit hydrograph when the routing rows are present, identical (to rounding) to
        ``HBV(...)(forcing, to_unit(params), warmup)["streamflow"]``.
    """
    from dplpaper.models.hbv import DEFAULT_INITIAL_STATE, UH_LENGTH

    lib = _load()
    if lib is None:
        raise RuntimeError(f"fused HBV backend unavailable: {unavailable_reason()}")
    forcing = np.ascontiguousarray(forcing)
    dt = forcing.dtype.type
    sfx = _sfx(dt)
    if forcing.ndim != 3 or forcing.shape[2] != 3:
        raise ValueError(f"forcing must be [time, site, 3], got {forcing.shape}")
    T, B, _ = forcing.shape
    par = np.asarray(params_physical)
    n = par.shape[-2]
    if n not in (12, 13, 14, 15) or par.shape[-3] != B or (par.ndim == 4 and par.shape[0] != T):
        raise ValueError(f"params_physical must be [site={B}, 12..15, nmul] (or [{T}, ...]), got {par.shape}")
    routing = n >= 14
    n_core = n - 2 if routing else n
    M = par.shape[-1]
    core = np.ascontiguousarray(par[..., :n_core, :], dtype=dt)
    s0 = np.full((B, 5, M), DEFAULT_INITIAL_STATE, dtype=dt) if initial_states is None else \
        np.ascontiguousarray(initial_states, dtype=dt)
    if s0.shape != (B, 5, M):
        raise ValueError(f"initial_states must be [{B}, 5, {M}], got {s0.shape}")
    q = np.empty((T, B), dtype=dt)
    st = np.empty_like(s0)
    nth = torch.get_num_threads() if nthreads is None else int(nthreads)
    getattr(lib, "hbv_forward" + sfx)(_ptr(forcing), _ptr(core), int(core.ndim == 4), T, B, M, int(n_core == 13),
                                      _ptr(s0), _ptr(st), _ptr(q), None, nth)
    if not routing or return_unrouted:
        return q[warmup:]
    rp = par[-1] if par.ndim == 4 else par
    alpha = rp[:, -2, :].astype(np.float64).mean(-1) + 0.1
    theta = rp[:, -1, :].astype(np.float64).mean(-1) + 0.5
    t = np.arange(UH_LENGTH) + 0.5
    logw = (alpha[:, None] - 1.0) * np.log(t)[None, :] - t[None, :] / theta[:, None]
    logw -= logw.max(axis=1, keepdims=True)
    uh = np.exp(logw)
    uh /= uh.sum(axis=1, keepdims=True)  # [B, L]
    start = max(warmup - (UH_LENGTH - 1), 0)
    qq = q[start:].astype(np.float64)
    out = np.zeros_like(qq)
    for j in range(UH_LENGTH):
        out[j:] += uh[None, :, j] * qq[: qq.shape[0] - j]
    return out[warmup - start:].astype(dt)
