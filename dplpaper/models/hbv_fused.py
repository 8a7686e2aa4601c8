"""Fused C backend of HBV: the whole time loop, forward and hand-written adjoint, in C.

Why: the reference loop in :mod:`dplpaper.models.hbv` launches ~60 small tensor operations
per day, so a 3-year run of 100 sites spends its time in the PyTorch dispatcher and the
autograd graph (tens of thousands of nodes). Here one C call runs the forward loop (saving
the 5 states and the soil-wetness power per step), and one C call runs the adjoint loop
backwards in time; both are wrapped in a :class:`torch.autograd.Function`. The nmul average
is taken inside C. The forward pass keeps only the states every 32 days; the backward pass
re-runs each 32-day chunk from its checkpoint into a small per-thread tape that stays in cache
and sweeps it backwards (a full tape would be ~50 MB at 100 sites x 16 components x 3 years, and
memory traffic, not arithmetic, would then set the speed). The step loop runs over "lanes"
(site x component pairs, a block of ~32 at a time), so it is vectorised (AVX-512/AVX2/SSE2
clones chosen at load time) at nmul = 1 as well as at nmul = 16, with an inline exp/log.
The gamma unit-hydrograph routing (:func:`route_fused`, forward and adjoint) and the forcing
check (:func:`forcing_ok`) are in C too: at nmul = 1 the grouped ``conv1d`` of the reference
routing and its backward cost more than the whole HBV run.

Build: ``_csrc/hbv.c`` is compiled with gcc (``$CC``, else ``gcc``/``cc``) at first use, with
``-O3 -fPIC -shared -std=c99 -ffp-contract=off -fno-trapping-math -fno-math-errno -pthread``.
No ``-ffast-math``: IEEE semantics (no reassociation, NaN/inf propagate, so NaN checks keep
working) and reproducibility are kept; ``-fno-trapping-math`` only lets gcc evaluate both
sides of a select, which changes no result. No ``-march=native``: the library carries
AVX-512/AVX2/baseline clones and picks one at load time, and FMA contraction is off, so all
clones give the same bits (tested: ``tests/test_hbv_isa.py`` builds each clone alone and compares).
``$DPLPAPER_HBV_ISA`` (:func:`isa`) builds one clone only (``avx512``, ``avx2``, ``baseline``),
for benchmarks and that test; the default ``auto`` is the clones. Sites are split into ``torch.get_num_threads()`` contiguous
ranges, one thread each. Where PyTorch itself runs on GNU OpenMP (``libgomp.so.1`` already in
the process, the pip wheels on Linux) the library is built with ``-fopenmp`` and uses that same
runtime, i.e. PyTorch's own worker threads (still spinning after the previous tensor op, they
pick the work up at once instead of competing with new threads for the cores); elsewhere, or
with ``DPLPAPER_NO_OPENMP=1``, plain pthreads (a second OpenMP runtime would spin-wait next to
PyTorch's). Each lane always runs the same code, so results are bit-for-bit identical for any
thread count and either threading. The library is cached in ``$DPLPAPER_BUILD_CACHE`` (default
``~/.cache/dplpaper``) under a name holding the hash of the source and flags, and loaded
with :mod:`ctypes`. ``DPLPAPER_NO_C=1`` disables the backend (``HBV(backend="auto")`` then
runs the PyTorch loop, ``backend="fused"`` warns and does the same).

Public API:
    :func:`available`, :func:`unavailable_reason`
    :func:`hbv_fused_run` (differentiable, torch) — used by ``HBV(backend="fused"|"auto")``
    :func:`hbv_forward_numpy` (forward only, NumPy, no torch overhead) — for SCE-UA.
    :func:`route_fused` (differentiable gamma-UH routing in C), :func:`forcing_ok` (fast check).
"""
from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

import numpy as np
import torch

from dplpaper.models._cbuild import build_and_load
from dplpaper.models.hbv_constants import DEFAULT_INITIAL_STATE, UH_LENGTH

_SRC = Path(__file__).parent / "_csrc" / "hbv.c"
_FLAGS = ["-O3", "-fPIC", "-shared", "-std=c99", "-ffp-contract=off", "-fno-trapping-math", "-fno-math-errno",
          "-pthread"]
_lock = threading.Lock()
_lib = None
_reason: str | None = None
_tried = False


_OMP_FLAGS = ["-fopenmp", "-DHBV_OPENMP"]
#: ``$DPLPAPER_HBV_ISA`` -> extra compiler flags: ``auto`` = the AVX-512/AVX2/baseline clones, chosen
#: at load time by the CPU; the others build that one code path alone (x86-64 gcc; a CPU without
#: the instructions must not load it).
ISA_FLAGS = {"auto": [], "avx512": ["-DHBV_NO_CLONES", "-mavx512f"], "avx2": ["-DHBV_NO_CLONES", "-mavx2"],
             "baseline": ["-DHBV_NO_CLONES"]}


def isa() -> str:
    """The code path the C library is built for: ``$DPLPAPER_HBV_ISA`` (default ``auto``), one of
    :data:`ISA_FLAGS`; anything else raises ``ValueError`` naming the variable."""
    v = os.environ.get("DPLPAPER_HBV_ISA", "auto").strip().lower() or "auto"
    if v not in ISA_FLAGS:
        raise ValueError(f"DPLPAPER_HBV_ISA={v!r}: expected one of {sorted(ISA_FLAGS)}")
    return v


def _share_openmp() -> bool:
    """Use OpenMP threads only where they are PyTorch's own pool: torch runs on OpenMP and a
    ``libgomp.so.1`` is already mapped into this process (ours then resolves to that same copy,
    by its soname). Elsewhere (Intel/LLVM OpenMP, macOS, ``DPLPAPER_NO_OPENMP=1``) plain pthreads:
    a second OpenMP runtime would spin-wait next to PyTorch's and steal its cores."""
    if os.environ.get("DPLPAPER_NO_OPENMP", "") not in ("", "0"):
        return False
    try:
        if "OpenMP" not in torch.__config__.parallel_info().split("ATen parallel backend:")[-1]:
            return False
        with open("/proc/self/maps") as fh:
            return any("libgomp.so.1" in line or "libgomp-" in line for line in fh)
    except (OSError, AttributeError, RuntimeError):
        return False


def _load():
    """Compile (once, cached) and load the C library; sets the failure reason otherwise."""
    global _lib, _reason, _tried
    with _lock:
        if _tried:
            return _lib
        path = isa()                                     # a bad $DPLPAPER_HBV_ISA raises here, every time
        _tried = True
        base = _FLAGS + ISA_FLAGS[path]
        candidates = [base + _OMP_FLAGS, base] if _share_openmp() else [base]
        lib, _reason = build_and_load(_SRC, "hbv", candidates, "hbv_abi_version", 6)
        if lib is not None:
            _setup(lib)
            _lib = lib
        return _lib


def _setup(lib) -> None:
    P, I = ctypes.c_void_p, ctypes.c_int
    for sfx in ("_f64", "_f32"):
        fw = getattr(lib, "hbv_forward" + sfx)
        fw.argtypes = [P, P, I, I, I, I, I, P, P, P, P, I]
        fw.restype = I
        bw = getattr(lib, "hbv_backward" + sfx)
        bw.argtypes = [P, P, I, I, I, I, I, P, P, P, P, P, I]
        bw.restype = I
        rf = getattr(lib, "hbv_route_forward" + sfx)
        rf.argtypes = [P, P, I, P, I, I, I, P, I]
        rf.restype = I
        rb = getattr(lib, "hbv_route_backward" + sfx)
        rb.argtypes = [P, P, I, P, I, I, I, P, P, P, I]
        rb.restype = I
        fm = getattr(lib, "hbv_forward_mapped" + sfx)
        fm.argtypes = [P, I, P, P, I, I, I, I, I, P, P, P, P, I, I]
        fm.restype = I
        fd = getattr(lib, "hbv_forward_dyn" + sfx)
        fd.argtypes = [P, P, P, I, P, I, I, I, I, P, P, P, P, I]
        fd.restype = I
        bd = getattr(lib, "hbv_backward_dyn" + sfx)
        bd.argtypes = [P, P, P, I, P, I, I, I, I, P, P, P, P, P, P, I]
        bd.restype = I
        fb = getattr(lib, "hbv_forcing_bad" + sfx)
        fb.argtypes = [P, ctypes.c_long]
        fb.restype = I


def _ok(rc: int) -> None:
    if rc != 0:
        raise MemoryError(f"fused HBV: the C kernel could not allocate its work buffers (code {rc})")


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


def _backward_buffers(forcing, par, gq, gst):
    """Sizes and the incoming/outgoing gradient buffers of an adjoint pass:
    ``(T, B, M, NP, gq [T,B], gst [B,5,M] or None, gpar like par, gs0 [B,5,M])``."""
    T, B, _ = forcing.shape
    NP, M = par.shape[-2], par.shape[-1]
    gq = forcing.new_zeros((T, B)) if gq is None else gq.to(forcing.dtype).contiguous()
    gst = None if gst is None else gst.to(forcing.dtype).contiguous()
    return T, B, M, NP, gq, gst, torch.empty_like(par), forcing.new_empty((B, 5, M))


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
        _ok(getattr(lib, "hbv_forward" + _sfx(forcing.dtype))(
            _ptr(forcing), _ptr(par), int(dynamic), T, B, M, int(betaet), _ptr(states0), _ptr(st), _ptr(q),
            _ptr(save), torch.get_num_threads()))
        ctx.save_for_backward(forcing, par, save)
        return q, st

    @staticmethod
    def backward(ctx, gq, gst):
        forcing, par, save = ctx.saved_tensors
        lib = _load()
        T, B, M, NP, gq, gst_ptr, gpar, gs0 = _backward_buffers(forcing, par, gq, gst)
        _ok(getattr(lib, "hbv_backward" + _sfx(forcing.dtype))(
            _ptr(forcing), _ptr(par), int(par.ndim == 4), T, B, M, int(NP == 13), _ptr(save), _ptr(gq),
            None if gst_ptr is None else _ptr(gst_ptr), _ptr(gpar), _ptr(gs0), torch.get_num_threads()))
        return None, gpar, gs0


class HBVFusedDynFunction(torch.autograd.Function):
    """Mixed mode: ``(forcing [T,B,3], par [B,NP,M] static physical, dpar [T,B,ND,M] physical values of
    the rows ``rows`` (int32 [ND]) day by day, states0 [B,5,M]) -> (q [T,B], states_T [B,5,M])``.

    The static rows are read once per site and their gradient is summed over time inside the
    kernel; ``par``'s rows ``rows`` are ignored (their gradient is zero).
    """

    @staticmethod
    def forward(ctx, forcing, par, dpar, rows, states0):
        lib = _load()
        T, B, _ = forcing.shape
        NP, M = par.shape[-2], par.shape[-1]
        forcing, par, dpar, states0 = (x.contiguous() for x in (forcing, par, dpar, states0))
        q = forcing.new_empty((T, B))
        st = states0.new_empty((B, 5, M))
        save = forcing.new_empty((B, _n_ckpt(T), 5, M))
        rc = getattr(lib, "hbv_forward_dyn" + _sfx(forcing.dtype))(
            _ptr(forcing), _ptr(par), _ptr(dpar), int(rows.numel()), _ptr(rows), T, B, M, int(NP == 13),
            _ptr(states0), _ptr(st), _ptr(q), _ptr(save), torch.get_num_threads())
        _ok_dyn(rc)
        ctx.save_for_backward(forcing, par, dpar, rows, save)
        return q, st

    @staticmethod
    def backward(ctx, gq, gst):
        forcing, par, dpar, rows, save = ctx.saved_tensors
        lib = _load()
        T, B, M, NP, gq, gst_c, gpar, gs0 = _backward_buffers(forcing, par, gq, gst)
        gdpar = torch.empty_like(dpar)
        rc = getattr(lib, "hbv_backward_dyn" + _sfx(forcing.dtype))(
            _ptr(forcing), _ptr(par), _ptr(dpar), int(rows.numel()), _ptr(rows), T, B, M, int(NP == 13), _ptr(save),
            _ptr(gq), None if gst_c is None else _ptr(gst_c), _ptr(gpar), _ptr(gdpar), _ptr(gs0),
            torch.get_num_threads())
        _ok_dyn(rc)
        return None, gpar, gdpar, None, gs0


def _ok_dyn(rc: int) -> None:
    if rc == -4:
        raise ValueError("fused HBV: the time-varying rows must be distinct parameter rows")
    _ok(rc)


def hbv_fused_run_dyn(forcing: torch.Tensor, par: torch.Tensor, dpar: torch.Tensor, rows,
                      states0: torch.Tensor):
    """:func:`hbv_fused_run` with static ``par [site, n, nmul]`` of which the rows ``rows`` are
    replaced every day by ``dpar [time, site, len(rows), nmul]`` (physical values)."""
    if not available():
        raise RuntimeError(f"fused HBV backend unavailable: {unavailable_reason()}")
    if forcing.requires_grad:
        raise ValueError("the fused HBV backend does not differentiate with respect to forcing; use backend='torch'")
    if par.shape[-2] not in (12, 13):
        raise ValueError(f"hbv_fused_run_dyn expects 12 or 13 core parameter rows, got {par.shape[-2]}")
    T, B, _ = forcing.shape
    rows_t = torch.as_tensor([int(r) for r in rows], dtype=torch.int32)
    if tuple(dpar.shape) != (T, B, rows_t.numel(), par.shape[-1]):
        raise ValueError(f"hbv_fused_run_dyn: dpar must be [{T}, {B}, {rows_t.numel()}, {par.shape[-1]}], "
                         f"got {tuple(dpar.shape)}")
    dt = forcing.dtype
    par, dpar, states0 = par.to(dt), dpar.to(dt), states0.to(dt)
    if torch.is_grad_enabled() and (par.requires_grad or dpar.requires_grad or states0.requires_grad):
        return HBVFusedDynFunction.apply(forcing, par, dpar, rows_t, states0)
    lib = _load()
    M = par.shape[-1]
    forcing, par, dpar, states0 = (x.detach().contiguous() for x in (forcing, par, dpar, states0))
    q = forcing.new_empty((T, B))
    st = states0.new_empty(states0.shape)
    _ok_dyn(getattr(lib, "hbv_forward_dyn" + _sfx(dt))(
        _ptr(forcing), _ptr(par), _ptr(dpar), int(rows_t.numel()), _ptr(rows_t), T, B, M, int(par.shape[-2] == 13),
        _ptr(states0), _ptr(st), _ptr(q), None, torch.get_num_threads()))
    return q, st


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
    _ok(getattr(lib, "hbv_forward" + _sfx(forcing.dtype))(
        _ptr(forcing), _ptr(par), int(par.ndim == 4), T, B, M, int(par.shape[-2] == 13), _ptr(states0), _ptr(st),
        _ptr(q), None, torch.get_num_threads()))
    return q, st


def forcing_ok(forcing) -> bool:
    """One C pass: ``True`` when precip and pet are finite and >= 0 and temp is finite everywhere.

    ``forcing`` is ``[..., 3]`` (torch tensor or NumPy array, float32/float64, CPU); ``False`` also
    when the fast check does not apply (caller then runs its own, locating check), including
    before the library was first loaded (this check never triggers the compilation itself).
    """
    lib = _lib
    if lib is None:
        return False
    if isinstance(forcing, torch.Tensor):
        if forcing.device.type != "cpu" or forcing.dtype not in (torch.float32, torch.float64) \
                or not forcing.is_contiguous():
            return False
        dtype = forcing.dtype
    else:
        if not isinstance(forcing, np.ndarray) or forcing.dtype not in (np.float32, np.float64) \
                or not forcing.flags.c_contiguous:
            return False
        dtype = forcing.dtype.type
    if forcing.ndim < 1 or forcing.shape[-1] != 3:
        return False
    n = forcing.numel() // 3 if isinstance(forcing, torch.Tensor) else forcing.size // 3
    return getattr(lib, "hbv_forcing_bad" + _sfx(dtype))(_ptr(forcing), n) == 0


class HBVRouteFunction(torch.autograd.Function):
    """``(q [T,B], uh [B,L], hist [H,B]) -> routed [T,B]``: causal convolution in C.

    ``out[t] = sum_j uh[:, j] * x[H + t - j]`` with ``x = cat(hist, q)`` (zero before its start),
    i.e. ``route(cat(hist, q), uh)[H:]`` of :func:`dplpaper.models.hbv.route`. Differentiable
    with respect to ``q`` and ``uh`` (``hist`` is a constant: the warm-up flow).
    """

    @staticmethod
    def forward(ctx, q, uh, hist):
        lib = _load()
        T, B = q.shape
        L = uh.shape[1]
        q = q.contiguous()
        uh = uh.contiguous()
        H = 0 if hist is None else hist.shape[0]
        hist = None if hist is None else hist.detach().contiguous()
        out = q.new_empty((T, B))
        _ok(getattr(lib, "hbv_route_forward" + _sfx(q.dtype))(
            _ptr(q), None if hist is None else _ptr(hist), H, _ptr(uh), T, B, L, _ptr(out), torch.get_num_threads()))
        ctx.save_for_backward(q, uh, hist)
        return out

    @staticmethod
    def backward(ctx, gout):
        q, uh, hist = ctx.saved_tensors
        lib = _load()
        T, B = q.shape
        L = uh.shape[1]
        H = 0 if hist is None else hist.shape[0]
        gout = gout.to(q.dtype).contiguous()
        gq = torch.empty_like(q)
        guh = torch.empty_like(uh)
        _ok(getattr(lib, "hbv_route_backward" + _sfx(q.dtype))(
            _ptr(q), None if hist is None else _ptr(hist), H, _ptr(uh), T, B, L, _ptr(gout), _ptr(gq), _ptr(guh),
            torch.get_num_threads()))
        return gq, guh, None


def route_fused(q: torch.Tensor, uh: torch.Tensor, hist: torch.Tensor | None = None) -> torch.Tensor:
    """Gamma-UH routing in C; equals ``route(cat([hist, q]), uh)[len(hist):]`` (to rounding).

    Args:
        q: ``[time, site]`` unrouted flow (mm/d); CPU float32/float64.
        uh: ``[site, L]`` unit hydrograph (weights for lags 0..L-1).
        hist: optional ``[H, site]`` flow before ``q`` (e.g. the last warm-up days), treated as constant.
    Returns: ``[time, site]`` routed flow.
    """
    if not available():
        raise RuntimeError(f"fused HBV backend unavailable: {unavailable_reason()}")
    uh = uh.to(q.dtype)
    if hist is not None:
        hist = hist.to(q.dtype)
        if hist.shape[0] == 0:
            hist = None
    if torch.is_grad_enabled() and (q.requires_grad or uh.requires_grad):
        return HBVRouteFunction.apply(q, uh, hist)
    with torch.no_grad():
        return HBVRouteFunction.forward(_NoCtx(), q, uh, hist)


class _NoCtx:
    def save_for_backward(self, *a):
        pass


def hbv_forward_numpy(forcing: np.ndarray, params_physical: np.ndarray, warmup: int = 0,
                      initial_states: np.ndarray | None = None, nthreads: int | None = None,
                      return_unrouted: bool = False, forcing_index: np.ndarray | None = None) -> np.ndarray:
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
        forcing_index: optional ``[site]`` integers: parameter row ``i`` runs on forcing column
            ``forcing_index[i]`` (then ``forcing`` is ``[time, n_basins, 3]`` and ``site`` may be
            larger, e.g. many candidate parameter sets per basin, without copying the forcing).
    Returns:
        streamflow ``[time - warmup, site]`` (mm/d) in the dtype of ``forcing`` — routed with the
        gamma unit hydrograph when the routing rows are present, identical (to rounding) to
        ``HBV(...)(forcing, to_unit(params), warmup)["streamflow"]``.
    """
    lib = _load()
    if lib is None:
        raise RuntimeError(f"fused HBV backend unavailable: {unavailable_reason()}")
    forcing = np.ascontiguousarray(forcing)
    dt = forcing.dtype.type
    sfx = _sfx(dt)
    if forcing.ndim != 3 or forcing.shape[2] != 3:
        raise ValueError(f"forcing must be [time, site, 3], got {forcing.shape}")
    T, Bf, _ = forcing.shape
    par = np.asarray(params_physical)
    fidx = None
    if forcing_index is not None:
        fidx = np.ascontiguousarray(forcing_index, dtype=np.intc)
        if fidx.ndim != 1 or (fidx.size and (fidx.min() < 0 or fidx.max() >= Bf)):
            raise ValueError(f"forcing_index must be [site] integers in [0, {Bf}), got shape {fidx.shape}")
        B = fidx.shape[0]
    else:
        B = Bf
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
    uh = None
    if routing and not return_unrouted:
        rp = par[-1] if par.ndim == 4 else par
        alpha = rp[:, -2, :].astype(np.float64).mean(-1) + 0.1
        theta = rp[:, -1, :].astype(np.float64).mean(-1) + 0.5
        t = np.arange(UH_LENGTH) + 0.5
        logw = (alpha[:, None] - 1.0) * np.log(t)[None, :] - t[None, :] / theta[:, None]
        logw -= logw.max(axis=1, keepdims=True)
        uh = np.exp(logw)
        uh = np.ascontiguousarray(uh / uh.sum(axis=1, keepdims=True), dtype=dt)  # [B, L]
    if fidx is None and (uh is None or M != 1):
        _ok(getattr(lib, "hbv_forward" + sfx)(_ptr(forcing), _ptr(core), int(core.ndim == 4), T, B, M,
                                              int(n_core == 13), _ptr(s0), _ptr(st), _ptr(q), None, nth))
    else:  # mapped forcing and/or routing inside the time loop (M == 1)
        in_loop = uh is not None and M == 1
        _ok(getattr(lib, "hbv_forward_mapped" + sfx)(
            _ptr(forcing), Bf, None if fidx is None else _ptr(fidx), _ptr(core), int(core.ndim == 4), T, B, M,
            int(n_core == 13), _ptr(s0), _ptr(st), _ptr(q), _ptr(uh) if in_loop else None, UH_LENGTH, nth))
        if in_loop:
            return q[warmup:]
    if uh is None:
        return q[warmup:]
    start = max(warmup - (UH_LENGTH - 1), 0)
    hist = q[start:warmup]
    main = q[warmup:]
    out = np.empty_like(main)
    _ok(getattr(lib, "hbv_route_forward" + sfx)(_ptr(main), _ptr(hist) if hist.shape[0] else None, hist.shape[0],
                                                _ptr(uh), main.shape[0], B, UH_LENGTH, _ptr(out), nth))
    return out
