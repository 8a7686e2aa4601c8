"""Batched Shuffled Complex Evolution (SCE-UA): many sites calibrated in lockstep.

Algorithm (Duan, Sorooshian & Gupta 1992, WRR 28(4); Duan, Sorooshian & Gupta 1994,
J. Hydrol. 158), written from the papers' description, for minimisation in the unit cube
``[0, 1]^n`` (models map the cube to physical units with their ``ParameterTable``):

1. Sample ``s = p * m`` points uniformly in the cube (``p`` complexes of ``m = 2n + 1``
   points), evaluate them, sort by cost.
2. Partition: complex ``k`` receives the sorted points ``k, k + p, k + 2p, ...``.
3. Evolve every complex by competitive complex evolution (CCE), ``beta = m`` times:

   a. pick a sub-complex of ``q = n + 1`` distinct points with the trapezoidal probability
      ``rho_i = 2 (m + 1 - i) / (m (m + 1))`` (``i = 1`` the best point of the complex);
   b. ``alpha = 1`` times: reflect the worst point of the sub-complex through the centroid of
      the others, ``r = 2 g - u_q``. If ``r`` leaves the cube, a random point in the smallest
      hypercube that contains the complex is used instead. If the trial is not better than
      ``u_q``, try the contraction ``c = (g + u_q) / 2``; if that fails too, ``u_q`` is
      replaced by a random point in that hypercube (unconditionally);
   c. put the sub-complex back and re-sort the complex.

4. Shuffle: merge the complexes, sort, go to 2 until a stopping rule holds.

Stopping rules, checked per site after the initial population and after every shuffling
loop (as in Duan's code): ``max_evals`` function evaluations reached (the last loop may
overshoot by up to one loop, ``<= 3 * p * beta * alpha`` evaluations); the best cost changed
by less than ``pcento`` percent over the last ``kstop`` loops; or the population collapsed in
parameter space, i.e. the normalised geometric range ``exp(mean_j log(max_j - min_j)) < peps``.
Complexes are not reduced in number during the search (``p_min = p``).

Batching. All sites and all complexes advance in lockstep: every CCE phase is one call of
``objective(params_unit [site, n_candidates, n_params]) -> cost [site, n_candidates]``
(the initial population: ``n_candidates = p * m``; a reflection phase: ``n_candidates = p``;
a contraction or random-point phase: the largest number of complexes of any site that need
one). Rows are padded to a rectangle with the site's current best point; padded candidates
are evaluated by the model but ignored and **not** counted as evaluations of that site
(``SCEUAResult.n_candidates`` counts everything that was evaluated, padding included).
A site that has stopped keeps its state; it still occupies a row (padded with its best point)
unless ``pass_site_index=True``, in which case the objective is called only with the rows of
the sites still running, ``objective(params_unit, site_index)``, ``site_index`` holding their
global indices.

Determinism. Site ``i`` owns the random stream
``numpy.random.SeedSequence(seed, spawn_key=(i,))`` (the ``i``-th child of
``SeedSequence(seed).spawn``) and draws a fixed number of numbers per CCE step, used or not.
Site arithmetic never mixes sites, so a site gets bit-for-bit the same answer alone, in any
batch, or in any Dask chunk (given an objective whose per-site results do not depend on the
other rows).

Epochs. As in the paper (and in dPL), one epoch is one forward run of the model per site: the
``history`` records ``epoch`` = number of evaluations of that site so far.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

__all__ = ["SCEUAResult", "sceua", "sceua_dask", "site_rng", "budget_convergence", "pairwise_objective"]

STOP_REASONS = ("max_evals", "peps", "pcento")


def pairwise_objective(cost: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """:func:`sceua`'s batched objective (candidates ``[S, K, n]`` -> costs ``[S, K]``) from a cost of
    flat (site, candidate) pairs: ``cost(site_index [S*K], params [S*K, n]) -> [S*K]``, where pair
    ``s * K + k`` is candidate ``k`` of site ``s`` (so a model runs every pair as one column; forcing
    ``f[:, site_index]``). NaN costs count as infinite (never accepted)."""
    def objective(u: np.ndarray) -> np.ndarray:
        S, K, n = u.shape
        c = np.asarray(cost(np.repeat(np.arange(S), K), u.reshape(S * K, n)), dtype=np.float64).reshape(S, K)
        return np.where(np.isnan(c), np.inf, c)

    return objective


def site_rng(seed: int, site: int) -> np.random.Generator:
    """The random generator of global site ``site``: child ``site`` of ``SeedSequence(seed)``."""
    if int(seed) < 0 or int(site) < 0:
        raise ValueError(f"seed ({seed}) and site index ({site}) must be non-negative integers")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=(int(site),))))


@dataclass
class SCEUAResult:
    """Outcome of :func:`sceua` for ``S`` sites and ``n`` parameters.

    Attributes:
        best_params: ``[S, n]`` best point per site, unit cube.
        best_cost: ``[S]`` its cost.
        n_evals: ``[S]`` evaluations (model runs) per site; equals the site's final epoch.
        n_loops: ``[S]`` shuffling loops done per site.
        reason: ``[S]`` why each site stopped: ``"max_evals"``, ``"peps"`` or ``"pcento"``.
        epoch_history, best_cost_history, wall_time_history: ``[L + 1, S]`` after the initial
            population (row 0) and after each loop; a stopped site's values are carried forward.
            Wall time in seconds since the start (of the site's chunk under Dask).
        active_history: ``[L + 1, S]`` whether the site was still running after that loop.
        param_history: ``[L + 1, S, n]`` best point after each loop (``None`` if not kept).
        site_index: ``[S]`` global site indices (they seed the per-site random streams).
        n_calls: number of ``objective`` calls; n_candidates: candidates evaluated, padding included.
        wall_time_s: total wall time.
        callback_values: ``(loop, epoch, value)`` for every non-``None`` value a callback returned.
        settings: the algorithm settings used.
    """

    best_params: np.ndarray
    best_cost: np.ndarray
    n_evals: np.ndarray
    n_loops: np.ndarray
    reason: np.ndarray
    epoch_history: np.ndarray
    best_cost_history: np.ndarray
    wall_time_history: np.ndarray
    active_history: np.ndarray
    param_history: np.ndarray | None
    site_index: np.ndarray
    n_calls: int
    n_candidates: int
    wall_time_s: float
    callback_values: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    @property
    def converged(self) -> np.ndarray:
        """``[S]`` True where a convergence criterion (``peps`` or ``pcento``), not the budget, stopped the site."""
        return self.reason != "max_evals"

    @property
    def history(self) -> pd.DataFrame:
        """Long table: one row per (loop, site): ``loop, site, epoch, best_cost, wall_time_s, active``."""
        L, S = self.epoch_history.shape
        return pd.DataFrame({
            "loop": np.repeat(np.arange(L), S),
            "site": np.tile(self.site_index, L),
            "epoch": self.epoch_history.ravel(),
            "best_cost": self.best_cost_history.ravel(),
            "wall_time_s": self.wall_time_history.ravel(),
            "active": self.active_history.ravel(),
        })

    def learning_curve(self) -> pd.DataFrame:
        """Per loop: mean epoch over sites (the paper's "average of the ending epochs"), mean and
        median best cost, and wall time (max over sites)."""
        return pd.DataFrame({
            "loop": np.arange(self.epoch_history.shape[0]),
            "epoch": self.epoch_history.mean(axis=1),
            "best_cost_mean": self.best_cost_history.mean(axis=1),
            "best_cost_median": np.median(self.best_cost_history, axis=1),
            "wall_time_s": self.wall_time_history.max(axis=1),
            "n_active": self.active_history.sum(axis=1),
        })


class _Evaluator:
    """Calls the user objective on padded candidate blocks of the running sites."""

    def __init__(self, objective, n_sites, n_params, site_index, pass_site_index, max_batch, nan_policy):
        self.objective = objective
        self.n_sites = n_sites
        self.n_params = n_params
        self.site_index = site_index
        self.pass_site_index = pass_site_index
        self.max_batch = max_batch
        self.nan_policy = nan_policy
        self.n_calls = 0
        self.n_candidates = 0
        self.pad_all: np.ndarray | None = None  # [S, n] best point of every site (rows of stopped sites)

    def _call(self, act: np.ndarray, x: np.ndarray) -> np.ndarray:
        """x: [A, K, n] for the running sites ``act`` (local positions) -> costs [A, K]."""
        A, K, n = x.shape
        if self.pass_site_index:
            full = x
            args = (np.ascontiguousarray(x), self.site_index[act].copy())
        else:
            full = np.empty((self.n_sites, K, n))
            full[:] = self.pad_all[:, None, :]
            full[act] = x
            args = (full,)
        f = np.asarray(self.objective(*args), dtype=np.float64)
        rows = full.shape[0]
        if f.shape != (rows, K):
            raise ValueError(f"sceua: objective returned shape {f.shape}, expected (site, n_candidates) = {(rows, K)}")
        self.n_calls += 1
        self.n_candidates += rows * K
        return f if self.pass_site_index else f[act]

    def __call__(self, act, cand, valid):
        """cand: [A, K, n]; valid: [A, K] -> [A, K] costs (+inf where not valid)."""
        K = cand.shape[1]
        step = K if self.max_batch is None else max(1, int(self.max_batch))
        parts = [self._call(act, cand[:, i:i + step]) for i in range(0, K, step)]
        f = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        bad = np.isnan(f) & valid
        if bad.any():
            if self.nan_policy == "raise":
                a, k = np.argwhere(bad)[0]
                raise ValueError(
                    f"sceua: objective returned NaN for site {int(self.site_index[act[a]])} at unit-cube "
                    f"parameters {cand[a, k].tolist()} (use nan_policy='inf' to treat NaN as the worst cost)")
            f = np.where(np.isnan(f), np.inf, f)
        return np.where(valid, f, np.inf)


def _pack(points: np.ndarray, mask: np.ndarray, pad: np.ndarray):
    """Gather the masked complexes of each site into a rectangle.

    points: [A, p, n]; mask: [A, p]; pad: [A, n] -> cand [A, K, n], valid [A, K], order [A, K]
    where K is the largest per-site count; the site's own entries come first, in complex order.
    """
    K = int(mask.sum(axis=1).max())
    order = np.argsort(~mask, axis=1, kind="stable")[:, :K]
    valid = np.take_along_axis(mask, order, axis=1)
    cand = np.take_along_axis(points, order[..., None], axis=1)
    cand = np.where(valid[..., None], cand, pad[:, None, :])
    return cand, valid, order


def _unpack(f: np.ndarray, valid: np.ndarray, order: np.ndarray, p: int) -> np.ndarray:
    out = np.full((f.shape[0], p), np.inf)
    a, k = np.nonzero(valid)
    out[a, order[a, k]] = f[a, k]
    return out


def _partition(Dx: np.ndarray, Df: np.ndarray, p: int, m: int):
    """Sorted population [A, p*m, n] -> complexes [A, p, m, n]; complex k holds points k, k+p, ..."""
    A, s, n = Dx.shape
    Cx = np.ascontiguousarray(Dx.reshape(A, m, p, n).transpose(0, 2, 1, 3))
    Cf = np.ascontiguousarray(Df.reshape(A, m, p).transpose(0, 2, 1))
    return Cx, Cf


def _sort_population(x: np.ndarray, f: np.ndarray, axis: int):
    order = np.argsort(f, axis=axis, kind="stable")
    return np.take_along_axis(x, np.expand_dims(order, -1), axis=axis), np.take_along_axis(f, order, axis=axis)


def _gnrng(Dx: np.ndarray) -> np.ndarray:
    """Normalised geometric range of each population [A, s, n] -> [A] (the cube has unit width)."""
    rng = Dx.max(axis=1) - Dx.min(axis=1)
    with np.errstate(divide="ignore"):
        return np.exp(np.mean(np.log(rng), axis=-1))


def sceua(
    objective: Callable[..., np.ndarray],
    n_params: int,
    n_sites: int = 1,
    n_complexes: int = 7,
    max_evals: int = 10000,
    kstop: int = 10,
    pcento: float = 0.1,
    peps: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
    callback: Callable[[float, np.ndarray], Any] | None = None,
    *,
    n_points_complex: int | None = None,
    n_points_subcomplex: int | None = None,
    alpha: int = 1,
    beta: int | None = None,
    x0: np.ndarray | None = None,
    site_index: Sequence[int] | None = None,
    pass_site_index: bool = False,
    max_batch: int | None = None,
    nan_policy: str = "raise",
    keep_param_history: bool = True,
) -> SCEUAResult:
    """Minimise ``n_sites`` independent costs over the unit cube with SCE-UA, all sites in lockstep.

    Args:
        objective: ``objective(params_unit [site, n_candidates, n_params]) -> cost [site, n_candidates]``
            (lower is better; ``+inf`` allowed; NaN raises unless ``nan_policy="inf"``). With
            ``pass_site_index=True`` it is called ``objective(params_unit, site_index)`` with the rows
            of the running sites only, ``site_index`` ``[rows]`` their global indices.
        n_params: number of parameters ``n``.
        n_sites: number of sites ``S`` (each with its own population and random stream).
        n_complexes: ``p`` (the paper used 7).
        max_evals: budget of evaluations (model runs) per site.
        kstop, pcento: stop when the best cost changed by less than ``pcento`` percent over
            ``kstop`` shuffling loops.
        peps: stop when the normalised geometric range of the population falls below ``peps``.
        seed: non-negative integer; site ``i`` uses ``site_rng(seed, site_index[i])``.
        progress: show a tqdm bar over loops.
        callback: ``callback(epoch, best_params [S, n])`` after the initial population and after each
            loop; ``epoch`` is the mean number of evaluations per site. Non-``None`` return values are
            kept in ``SCEUAResult.callback_values`` (e.g. a test metric for learning curves).
        n_points_complex: ``m`` (default ``2n + 1``); n_points_subcomplex: ``q`` (default ``n + 1``);
        alpha: offspring per sub-complex (default 1); beta: CCE steps per loop (default ``m``).
        x0: optional ``[n]`` or ``[S, n]`` point(s) put into the initial population (e.g. defaults).
        site_index: global site indices ``[S]`` (default ``0..S-1``); used by :func:`sceua_dask`.
        max_batch: at most this many candidates per objective call (splits the candidate axis).
        keep_param_history: keep the best point after every loop (``param_history``).

    Returns:
        :class:`SCEUAResult`.
    """
    n = int(n_params)
    S = int(n_sites)
    p = int(n_complexes)
    m = int(n_points_complex) if n_points_complex is not None else 2 * n + 1
    q = int(n_points_subcomplex) if n_points_subcomplex is not None else n + 1
    beta = int(beta) if beta is not None else m
    alpha = int(alpha)
    if n < 1 or S < 1 or p < 1:
        raise ValueError(f"sceua: n_params ({n}), n_sites ({S}) and n_complexes ({p}) must be >= 1")
    if not 2 <= q <= m:
        raise ValueError(f"sceua: need 2 <= n_points_subcomplex ({q}) <= n_points_complex ({m})")
    if alpha < 1 or beta < 1 or kstop < 1 or max_evals < 1:
        raise ValueError("sceua: alpha, beta, kstop and max_evals must be >= 1")
    if nan_policy not in ("raise", "inf"):
        raise ValueError(f"sceua: nan_policy must be 'raise' or 'inf', got {nan_policy!r}")
    site_index = np.arange(S) if site_index is None else np.asarray(site_index, dtype=np.int64)
    if site_index.shape != (S,):
        raise ValueError(f"sceua: site_index has shape {site_index.shape}, expected ({S},)")
    settings = dict(n_params=n, n_sites=S, n_complexes=p, n_points_complex=m, n_points_subcomplex=q,
                    alpha=alpha, beta=beta, max_evals=int(max_evals), kstop=int(kstop), pcento=float(pcento),
                    peps=float(peps), seed=int(seed))

    t0 = time.perf_counter()
    rngs = [site_rng(seed, i) for i in site_index]
    ev = _Evaluator(objective, S, n, site_index, pass_site_index, max_batch, nan_policy)
    s = p * m

    # ---- initial population ------------------------------------------------------------
    Dx = np.empty((S, s, n))
    for i in range(S):
        rngs[i].random(out=Dx[i])
    if x0 is not None:
        x0 = np.broadcast_to(np.asarray(x0, dtype=np.float64), (S, n))
        if np.isnan(x0).any() or (x0 < 0).any() or (x0 > 1).any():
            raise ValueError("sceua: x0 must lie in the unit cube [0, 1] without NaN")
        Dx[:, 0] = x0
    all_sites = np.arange(S)
    ev.pad_all = Dx[:, 0].copy()
    Df = ev(all_sites, Dx, np.ones((S, s), dtype=bool))
    Dx, Df = _sort_population(Dx, Df, axis=1)
    n_evals = np.full(S, s, dtype=np.int64)
    n_loops = np.zeros(S, dtype=np.int64)
    active = np.ones(S, dtype=bool)
    reason = np.array([""] * S, dtype=object)

    h_epoch, h_best, h_wall, h_active, h_par = [], [], [], [], []
    callback_values: list = []

    def check_stop(loop: int) -> None:
        idx = np.nonzero(active)[0]
        if idx.size == 0:
            return
        stop_budget = n_evals[idx] >= max_evals
        stop_peps = _gnrng(Dx[idx]) < peps
        stop_pc = np.zeros(idx.size, dtype=bool)
        if loop >= kstop:
            f_now = Df[idx, 0]
            f_then = h_best[loop - kstop][idx]
            denom = 0.5 * (np.abs(f_now) + np.abs(f_then))
            with np.errstate(invalid="ignore", divide="ignore"):
                change = np.where(denom > 0, np.abs(f_now - f_then) / np.where(denom > 0, denom, 1.0), 0.0)
            stop_pc = np.isfinite(f_now) & (100.0 * change < pcento)
        for flag, name in ((stop_budget, "max_evals"), (stop_peps, "peps"), (stop_pc, "pcento")):
            hit = idx[flag & (reason[idx] == "")]
            reason[hit] = name
        active[idx[reason[idx] != ""]] = False

    def record(loop: int) -> None:
        h_epoch.append(n_evals.copy())
        h_best.append(Df[:, 0].copy())
        h_wall.append(np.full(S, time.perf_counter() - t0))
        if keep_param_history:
            h_par.append(Dx[:, 0].copy())
        if callback is not None:
            val = callback(float(n_evals.mean()), Dx[:, 0].copy())
            if val is not None:
                callback_values.append((loop, float(n_evals.mean()), val))

    record(0)
    check_stop(0)
    h_active.append(active.copy())

    # trapezoidal selection weights (rank 1 = best); Efraimidis-Spirakis keys log(u)/w give
    # weighted sampling of q points without replacement, equivalent to drawing one by one.
    w = 2.0 * (m + 1 - np.arange(1, m + 1)) / (m * (m + 1))
    n_u = m + 2 * alpha * n  # uniforms per complex per CCE step
    bar = None
    if progress:
        from dplpaper.progress import tqdm
        bar = tqdm(desc="SCE-UA", unit="loop", leave=False)

    loop = 0
    while active.any():
        loop += 1
        act = np.nonzero(active)[0]
        A = act.size
        ev.pad_all = Dx[:, 0].copy()
        Cx, Cf = _partition(Dx[act], Df[act], p, m)
        # points stay where they are during the loop; perm[c, r] is the slot of the rank-r point of
        # complex c (flattened over site x complex), re-sorted after every CCE step
        Cx = Cx.reshape(A * p, m, n)
        Cf = Cf.reshape(A * p, m)
        rows = np.arange(A * p)[:, None]
        perm = np.broadcast_to(np.arange(m), (A * p, m)).copy()
        pad = Dx[act, 0]
        ones = np.ones((A, p), dtype=bool)
        U = np.empty((A, p, n_u))
        for _ in range(beta):
            for a_i, i in enumerate(act):
                rngs[i].random(out=U[a_i])
            keys = np.log(U[..., :m]) / w
            sel = np.sort(np.argsort(-keys, axis=-1, kind="stable")[..., :q], axis=-1)  # ranks [A, p, q]
            pos = perm[rows, sel.reshape(A * p, q)]                                       # slots [A*p, q]
            Bx = Cx[rows, pos].reshape(A, p, q, n)
            Bf = Cf[rows, pos].reshape(A, p, q)
            lo = Cx.min(axis=1).reshape(A, p, n)
            width = Cx.max(axis=1).reshape(A, p, n) - lo
            for k in range(alpha):
                if k > 0:
                    o = np.argsort(Bf, axis=-1, kind="stable")
                    Bx = np.take_along_axis(Bx, o[..., None], axis=2)
                    Bf = np.take_along_axis(Bf, o, axis=2)
                    pos = np.take_along_axis(pos, o.reshape(A * p, q), axis=1)
                g = Bx[:, :, 0, :].copy()
                for j in range(1, q - 1):
                    g += Bx[:, :, j, :]
                g /= q - 1
                worst = Bx[:, :, q - 1, :]
                fw = Bf[:, :, q - 1]
                u1 = U[..., m + 2 * k * n: m + (2 * k + 1) * n]
                u2 = U[..., m + (2 * k + 1) * n: m + (2 * k + 2) * n]
                r = 2.0 * g - worst
                feasible = ((r >= 0.0) & (r <= 1.0)).all(axis=-1)
                trial = np.where(feasible[..., None], r, lo + u1 * width)
                cand, valid, order = _pack(trial, ones, pad)
                f_trial = _unpack(ev(act, cand, valid), valid, order, p)
                n_evals[act] += p
                new_x, new_f = trial, f_trial
                fail = ~(f_trial < fw)
                if fail.any():
                    contr = 0.5 * (g + worst)
                    cand, valid, order = _pack(contr, fail, pad)
                    f_contr = _unpack(ev(act, cand, valid), valid, order, p)
                    n_evals[act] += fail.sum(axis=1)
                    new_x = np.where(fail[..., None], contr, new_x)
                    new_f = np.where(fail, f_contr, new_f)
                    fail2 = fail & ~(f_contr < fw)
                    if fail2.any():
                        z = lo + u2 * width
                        cand, valid, order = _pack(z, fail2, pad)
                        f_z = _unpack(ev(act, cand, valid), valid, order, p)
                        n_evals[act] += fail2.sum(axis=1)
                        new_x = np.where(fail2[..., None], z, new_x)
                        new_f = np.where(fail2, f_z, new_f)
                Bx[:, :, q - 1, :] = new_x
                Bf[:, :, q - 1] = new_f
            Cx[rows, pos] = Bx.reshape(A * p, q, n)
            Cf[rows, pos] = Bf.reshape(A * p, q)
            perm = perm[rows, np.argsort(Cf[rows, perm], axis=1, kind="stable")]
        # shuffle: merge the complexes and sort
        Mx, Mf = _sort_population(Cx[rows, perm].reshape(A, s, n), Cf[rows, perm].reshape(A, s), axis=1)
        Dx[act] = Mx
        Df[act] = Mf
        n_loops[act] += 1
        record(loop)
        check_stop(loop)
        h_active.append(active.copy())
        if bar is not None:
            bar.update(1)
            bar.set_postfix(active=int(active.sum()), epoch=float(n_evals.mean()), best=float(np.median(Df[:, 0])))
    if bar is not None:
        bar.close()

    return SCEUAResult(
        best_params=Dx[:, 0].copy(), best_cost=Df[:, 0].copy(), n_evals=n_evals, n_loops=n_loops,
        reason=reason.astype(str), epoch_history=np.array(h_epoch), best_cost_history=np.array(h_best),
        wall_time_history=np.array(h_wall), active_history=np.array(h_active),
        param_history=np.array(h_par) if keep_param_history else None, site_index=site_index,
        n_calls=ev.n_calls, n_candidates=ev.n_candidates, wall_time_s=time.perf_counter() - t0,
        callback_values=callback_values, settings=settings)


# ---------------------------------------------------------------------------------------
# Dask fan-out
# ---------------------------------------------------------------------------------------

class _ChunkObjective:
    """Picklable adapter: a chunk's sceua passes global site indices to the user objective."""

    def __init__(self, objective):
        self.objective = objective

    def __call__(self, params_unit, site_index):
        return self.objective(params_unit, site_index)


def _run_chunk(site_idx: np.ndarray, objective, n_params: int, kwargs: dict) -> SCEUAResult:
    return sceua(_ChunkObjective(objective), n_params, n_sites=len(site_idx), site_index=site_idx,
                 pass_site_index=True, progress=False, **kwargs)


def _pad_rows(a: np.ndarray | None, L: int):
    if a is None or a.shape[0] == L:
        return a
    return np.concatenate([a, np.repeat(a[-1:], L - a.shape[0], axis=0)], axis=0)


def _merge(results: list[SCEUAResult], wall: float) -> SCEUAResult:
    L = max(r.epoch_history.shape[0] for r in results)

    def cat(name, axis=0):
        return np.concatenate([getattr(r, name) for r in results], axis=axis)

    def cat_hist(name):
        parts = [_pad_rows(getattr(r, name), L) for r in results]
        return None if parts[0] is None else np.concatenate(parts, axis=1)

    active = cat_hist("active_history")
    # carried-forward rows of a chunk that finished early: its sites were no longer running
    off = 0
    for r in results:
        k = r.epoch_history.shape[0]
        active[k:, off:off + r.best_cost.size] = False
        off += r.best_cost.size
    return SCEUAResult(
        best_params=cat("best_params"), best_cost=cat("best_cost"), n_evals=cat("n_evals"),
        n_loops=cat("n_loops"), reason=cat("reason"), epoch_history=cat_hist("epoch_history"),
        best_cost_history=cat_hist("best_cost_history"), wall_time_history=cat_hist("wall_time_history"),
        active_history=active, param_history=cat_hist("param_history"), site_index=cat("site_index"),
        n_calls=sum(r.n_calls for r in results), n_candidates=sum(r.n_candidates for r in results),
        wall_time_s=wall, callback_values=[], settings={**results[0].settings, "n_sites": int(sum(r.best_cost.size for r in results)),
                                                        "n_chunks": len(results)})


def sceua_dask(
    objective: Callable[[np.ndarray, np.ndarray], np.ndarray],
    n_params: int,
    n_sites: int,
    chunk_size: int = 64,
    client=None,
    scheduler_address: str | None = None,
    cluster_kwargs: dict | None = None,
    **kwargs,
) -> SCEUAResult:
    """:func:`sceua` with the sites split into chunks, each chunk calibrated in lockstep on a Dask worker.

    Args:
        objective: ``objective(params_unit [rows, n_candidates, n_params], site_index [rows]) -> cost
            [rows, n_candidates]``; ``site_index`` are global site indices, so the objective selects
            the forcing/observations of those sites. It must be picklable for process-based clusters.
        n_params, n_sites: as in :func:`sceua`.
        chunk_size: sites per task.
        client: a ``dask.distributed.Client``; else ``scheduler_address`` (e.g.
            ``"tcp://host:8786"`` of a real cluster); else a ``LocalCluster(**cluster_kwargs)`` is
            started for this call and closed afterwards.
        **kwargs: any keyword of :func:`sceua` except ``callback``/``progress``/``site_index``
            (the merged ``param_history`` serves learning curves instead of a callback).

    Returns:
        one merged :class:`SCEUAResult`, sites in global order; per-site results equal those of a
        single-process :func:`sceua` with the same seed, whatever the chunking.
    """
    for bad in ("callback", "site_index", "pass_site_index", "n_sites"):
        if bad in kwargs and not (bad == "callback" and kwargs[bad] is None):
            raise TypeError(f"sceua_dask: keyword '{bad}' is not supported (chunks run on workers)")
    kwargs.pop("progress", None)
    kwargs.pop("callback", None)
    if chunk_size < 1:
        raise ValueError(f"sceua_dask: chunk_size must be >= 1, got {chunk_size}")
    from dask.distributed import Client, LocalCluster

    t0 = time.perf_counter()
    own_cluster = own_client = None
    if client is None:
        if scheduler_address is not None:
            client = own_client = Client(scheduler_address)
        else:
            own_cluster = LocalCluster(**(cluster_kwargs or {}))
            client = own_client = Client(own_cluster)
    try:
        chunks = [np.arange(i, min(i + chunk_size, n_sites)) for i in range(0, n_sites, chunk_size)]
        futures = [client.submit(_run_chunk, c, objective, n_params, kwargs, pure=False) for c in chunks]
        results = client.gather(futures)
    finally:
        if own_client is not None:
            own_client.close()
        if own_cluster is not None:
            own_cluster.close()
    return _merge(results, time.perf_counter() - t0)


def budget_convergence(curve: pd.DataFrame, tail: float = 0.2, tol: float = 0.005,
                       cost: str = "best_cost_median", x: str = "epoch") -> dict:
    """Is a search's budget converged? The learning curve must be flat over the last ``tail`` of it.

    ``curve``: a learning curve with an evaluation axis ``x`` (e.g. :meth:`SCEUAResult.learning_curve`:
    ``epoch`` = evaluations per site) and a cost column (median best cost over sites, e.g. 1 - NSE).
    Returns ``{"converged", "improvement", "tail_start", "end", "tol"}``: ``improvement`` is the cost at
    the last point at or before ``(1 - tail) * end`` minus the final cost (>= 0 for a minimizer), and
    ``converged`` is ``improvement <= tol`` (default 0.005 in NSE units: a further fifth of the budget
    would gain less than half a hundredth of NSE). A curve with fewer than two points is not converged.
    A curve with a ``stage`` column (a search in stages, e.g. SCE-UA then gradient refinement) is judged
    on its last stage, and its tail is measured over that stage alone.
    """
    if not 0 < tail < 1:
        raise ValueError(f"tail must be in (0, 1), got {tail}")
    staged = "stage" in curve and len(curve) > 0
    if staged:
        curve = curve[curve["stage"] == curve["stage"].iloc[-1]]
    c = curve[[x, cost]].dropna()
    if len(c) < 2:
        return {"converged": False, "improvement": float("nan"), "tail_start": float("nan"),
                "end": float(c[x].iloc[-1]) if len(c) else float("nan"), "tol": tol}
    end = float(c[x].iloc[-1])
    first = float(c[x].iloc[0]) if staged else 0.0  # a single search is measured from its zeroth evaluation
    start = first + (1 - tail) * (end - first)
    # the best cost known when the tail began: the last point at or before its start (a coarse curve,
    # e.g. one point per SCE-UA loop, must not shrink the tail to its last point)
    at = c[c[x] <= start].iloc[-1]
    improvement = float(at[cost] - c[cost].iloc[-1])
    return {"converged": bool(improvement <= tol), "improvement": improvement, "tail_start": float(at[x]),
            "end": end, "tol": tol}
