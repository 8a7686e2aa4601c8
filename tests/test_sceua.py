"""Tests of the batched SCE-UA (dplpaper.calibrate.sceua)."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from dplpaper.calibrate.sceua import SCEUAResult, sceua, sceua_dask, site_rng


# ---- standard test functions (x in the function's own domain, last axis = dimension) ----------

def rosenbrock(x):
    return np.sum(100.0 * (x[..., 1:] - x[..., :-1] ** 2) ** 2 + (1.0 - x[..., :-1]) ** 2, axis=-1)


def griewank(x):
    i = np.sqrt(np.arange(1, x.shape[-1] + 1))
    return 1.0 + np.sum(x ** 2, axis=-1) / 4000.0 - np.prod(np.cos(x / i), axis=-1)


def goldstein_price(x):
    a, b = x[..., 0], x[..., 1]
    t1 = 1 + (a + b + 1) ** 2 * (19 - 14 * a + 3 * a ** 2 - 14 * b + 6 * a * b + 3 * b ** 2)
    t2 = 30 + (2 * a - 3 * b) ** 2 * (18 - 32 * a + 12 * a ** 2 + 48 * b - 36 * a * b + 27 * b ** 2)
    return t1 * t2


_HA = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_HC = np.array([1.0, 1.2, 3.0, 3.2])
_HP = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                       [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])


def hartmann6(x):
    d = np.sum(_HA * (x[..., None, :] - _HP) ** 2, axis=-1)
    return -np.sum(_HC * np.exp(-d), axis=-1)


# name: (function, low, high, dimension, global minimum, success tolerance on f)
CASES = {
    "rosenbrock2": (rosenbrock, -5.0, 5.0, 2, 0.0, 1e-3),
    "goldstein_price": (goldstein_price, -2.0, 2.0, 2, 3.0, 1e-2),
    "hartmann6": (hartmann6, 0.0, 1.0, 6, -3.32237, 1e-2),
    "griewank10": (griewank, -600.0, 600.0, 10, 0.0, 1e-2),
}


class BudgetTracker:
    """Best cost among the first ``budget`` model runs, whoever makes them (strict equal budgets)."""

    def __init__(self, budget):
        self.budget, self.n, self.best = budget, 0, np.inf

    def add(self, f):
        f = np.ravel(f)
        take = f[: max(0, self.budget - self.n)]
        if take.size:
            self.best = min(self.best, float(take.min()))
        self.n += f.size


def run_ours(case, budget, seed, **kw):
    f, lo, hi, n, _, _ = CASES[case]
    tr = BudgetTracker(budget)

    def obj(u):
        y = f(lo + (hi - lo) * u)
        tr.add(y)
        return y

    sceua(obj, n, max_evals=budget, seed=seed, progress=False, **kw)
    return tr.best


def run_spotpy(case, budget, seed, **kw):
    spotpy = pytest.importorskip("spotpy")
    f, lo, hi, n, _, _ = CASES[case]
    tr = BudgetTracker(budget)

    class Setup:
        def __init__(self):
            self.params = [spotpy.parameter.Uniform(f"x{i}", lo, hi) for i in range(n)]

        def parameters(self):
            return spotpy.parameter.generate(self.params)

        def simulation(self, vector):
            y = float(f(np.asarray(vector, dtype=float)))
            tr.add(y)
            return [y]

        def evaluation(self):
            return [0.0]

        def objectivefunction(self, simulation, evaluation):
            return simulation[0]

    sampler = spotpy.algorithms.sceua(Setup(), dbformat="ram", random_state=seed, save_sim=False)
    # spotpy's `repetitions` counts some runs twice; give it 3x so that the cap is our tracker's
    with contextlib.redirect_stdout(io.StringIO()):
        sampler.sample(3 * budget, ngs=7, **kw)
    return tr.best


# budgets (model runs) chosen so that neither algorithm is sure to succeed, yet the test stays fast
SPOTPY_BUDGETS = {"rosenbrock2": 800, "goldstein_price": 500, "hartmann6": 1200, "griewank10": 5000}


@pytest.mark.parametrize("case", list(SPOTPY_BUDGETS))
def test_success_rate_at_least_spotpy(case):
    """Same budget of model runs, same settings, 5 seeds: we succeed at least as often as spotpy."""
    pytest.importorskip("spotpy")
    budget = SPOTPY_BUDGETS[case]
    fmin, tol = CASES[case][4], CASES[case][5]
    conv = dict(kstop=10, pcento=0.1, peps=1e-3)
    seeds = range(5)
    ours = [run_ours(case, budget, s, **conv) for s in seeds]
    theirs = [run_spotpy(case, budget, s, **conv) for s in seeds]
    ok_ours = sum(abs(b - fmin) < tol for b in ours)
    ok_theirs = sum(abs(b - fmin) < tol for b in theirs)
    assert ok_ours >= ok_theirs, (case, ours, theirs)
    assert ok_ours >= 3, (case, ours)


@pytest.mark.parametrize("case,budget,n_complexes", [
    ("rosenbrock2", 3000, 7), ("goldstein_price", 2000, 7), ("hartmann6", 5000, 7), ("griewank10", 10000, 5),
])
def test_finds_known_optima(case, budget, n_complexes):
    f, lo, hi, n, fmin, tol = CASES[case]
    res = sceua(lambda u: f(lo + (hi - lo) * u), n, n_sites=4, n_complexes=n_complexes, max_evals=budget,
                peps=1e-4, pcento=0.01, seed=1, progress=False)
    assert np.all(np.abs(res.best_cost - fmin) < tol), (case, res.best_cost, res.reason)
    assert np.all(res.n_evals <= budget + 3 * n_complexes * (2 * n + 1))
    if case == "rosenbrock2":
        np.testing.assert_allclose(lo + (hi - lo) * res.best_params, 1.0, atol=0.03)
    if case == "goldstein_price":
        np.testing.assert_allclose(lo + (hi - lo) * res.best_params, [[0.0, -1.0]] * 4, atol=0.01)


def test_rosenbrock_5d():
    res = sceua(lambda u: rosenbrock(-5 + 10 * u), 5, n_sites=2, max_evals=20000, pcento=0.001, peps=1e-5,
                seed=3, progress=False)
    assert np.all(res.best_cost < 1e-2), res.best_cost
    np.testing.assert_allclose(-5 + 10 * res.best_params, 1.0, atol=0.1)


# ---- batching, determinism, Dask --------------------------------------------------------------

SHIFTS = np.array([[0.1, 0.2, 0.3], [0.7, 0.5, 0.2], [0.4, 0.9, 0.6], [0.5, 0.5, 0.5], [0.2, 0.8, 0.1]])


def shifted(u, site_index=None):
    """Per-site objective: a bumpy bowl whose minimum (site-dependent) lies at SHIFTS[site]."""
    c = SHIFTS if site_index is None else SHIFTS[site_index]
    d = u - c[:, None, :]
    return np.sum(d ** 2, axis=-1) + 0.05 * np.sum(1 - np.cos(20 * d), axis=-1)


def _assert_same_site(a: SCEUAResult, i: int, b: SCEUAResult, j: int):
    np.testing.assert_array_equal(a.best_params[i], b.best_params[j])
    assert a.best_cost[i] == b.best_cost[j]
    assert a.n_evals[i] == b.n_evals[j] and a.reason[i] == b.reason[j] and a.n_loops[i] == b.n_loops[j]


def test_batched_equals_each_site_alone():
    kw = dict(n_complexes=4, max_evals=1500, seed=7, progress=False)
    batch = sceua(shifted, 3, n_sites=5, **kw)
    assert len(set(batch.n_loops.tolist())) > 1  # sites stop at different loops: masking exercised
    for i in range(5):
        alone = sceua(lambda u, i=i: shifted(u, np.array([i])), 3, n_sites=1, site_index=[i], **kw)
        _assert_same_site(batch, i, alone, 0)
        assert alone.n_candidates == alone.n_evals[0]  # one site: no padding, every candidate counted
    assert batch.n_candidates >= batch.n_evals.sum()
    # only running sites are passed: same answers
    sub = sceua(shifted, 3, n_sites=5, pass_site_index=True, **kw)
    for i in range(5):
        _assert_same_site(batch, i, sub, i)
    np.testing.assert_allclose(batch.best_params, SHIFTS, atol=0.02)


def test_deterministic_and_seed_dependent():
    kw = dict(n_sites=5, n_complexes=3, max_evals=600, progress=False)
    a = sceua(shifted, 3, seed=11, **kw)
    b = sceua(shifted, 3, seed=11, **kw)
    c = sceua(shifted, 3, seed=12, **kw)
    np.testing.assert_array_equal(a.best_params, b.best_params)
    np.testing.assert_array_equal(a.best_cost_history, b.best_cost_history)
    np.testing.assert_array_equal(a.n_evals, b.n_evals)
    assert not np.array_equal(a.best_params, c.best_params)
    # streams are the SeedSequence children: independent of chunking and of the other sites
    assert site_rng(11, 2).random() == np.random.default_rng(np.random.SeedSequence(11).spawn(3)[2]).random()


def test_dask_equals_single_process():
    distributed = pytest.importorskip("dask.distributed")
    kw = dict(n_complexes=3, max_evals=800, seed=5)
    ref = sceua(shifted, 3, n_sites=5, progress=False, **kw)
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        res = sceua_dask(shifted, 3, n_sites=5, chunk_size=2, client=client, **kw)
    np.testing.assert_array_equal(res.site_index, np.arange(5))
    for i in range(5):
        _assert_same_site(ref, i, res, i)
    assert res.settings["n_chunks"] == 3
    L = res.epoch_history.shape[0]
    assert res.param_history.shape == (L, 5, 3)
    np.testing.assert_array_equal(res.epoch_history[-1], res.n_evals)
    # no client: a LocalCluster is started and closed for the call
    own = sceua_dask(shifted, 3, n_sites=5, chunk_size=3, cluster_kwargs=dict(
        processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None), **kw)
    np.testing.assert_array_equal(own.best_params, ref.best_params)
    with pytest.raises(TypeError):
        sceua_dask(shifted, 3, n_sites=5, client=object(), callback=print)


# ---- stopping rules, history, callback, errors -----------------------------------------------

def test_stopping_rules():
    sphere = lambda u: np.sum((u - 0.3) ** 2, axis=-1)
    # population collapses onto the minimum: peps
    r = sceua(sphere, 2, n_sites=2, max_evals=100000, kstop=1000, pcento=0.0, peps=1e-3, progress=False)
    assert list(r.reason) == ["peps", "peps"] and r.converged.all()
    span = np.ptp(r.param_history[-1], axis=0)
    assert np.all(r.n_evals < 100000) and np.all(span < 1e-2)
    # a flat objective never improves: pcento after exactly kstop loops
    flat = lambda u: np.ones(u.shape[:2])
    r = sceua(flat, 3, n_sites=2, max_evals=100000, kstop=4, pcento=0.1, peps=0.0, progress=False)
    assert list(r.reason) == ["pcento", "pcento"] and list(r.n_loops) == [4, 4]
    # budget
    r = sceua(sphere, 2, n_sites=3, n_complexes=2, max_evals=200, kstop=1000, pcento=0.0, peps=0.0, progress=False)
    assert list(r.reason) == ["max_evals"] * 3 and not r.converged.any()
    assert np.all(r.n_evals >= 200) and np.all(r.n_evals < 200 + 3 * 2 * 5)


def test_history_epochs_and_callback():
    calls = []

    def cb(epoch, best):
        calls.append((epoch, best.copy()))
        return float(np.abs(best - SHIFTS[:2]).max())  # a "test metric"

    r = sceua(lambda u: shifted(u, np.arange(2)), 3, n_sites=2, n_complexes=3, max_evals=700, seed=2,
              progress=False, callback=cb)
    h = r.history
    assert list(h.columns) == ["loop", "site", "epoch", "best_cost", "wall_time_s", "active"]
    last = h[h.loop == h.loop.max()].sort_values("site")
    np.testing.assert_array_equal(last.epoch.to_numpy(), r.n_evals)
    assert h.groupby("site").epoch.apply(lambda e: e.is_monotonic_increasing).all()
    assert h.epoch.min() == 3 * 7  # initial population p * m counts as 21 forward runs
    assert len(calls) == r.epoch_history.shape[0] == len(r.callback_values)
    np.testing.assert_allclose([c[0] for c in calls], r.epoch_history.mean(axis=1))
    np.testing.assert_array_equal(calls[-1][1], r.best_params)
    lc = r.learning_curve()
    assert lc.best_cost_mean.is_monotonic_decreasing and lc.epoch.is_monotonic_increasing
    assert r.callback_values[-1][2] < r.callback_values[0][2]


def test_x0_and_max_batch():
    x0 = SHIFTS[:2]
    r = sceua(lambda u: shifted(u, np.arange(2)), 3, n_sites=2, n_complexes=2, max_evals=100, x0=x0,
              max_batch=4, progress=False)
    np.testing.assert_allclose(r.best_cost, 0.0, atol=1e-12)  # the exact optimum was given
    ref = sceua(shifted, 3, n_sites=5, n_complexes=3, max_evals=400, progress=False)
    chunked = sceua(shifted, 3, n_sites=5, n_complexes=3, max_evals=400, progress=False, max_batch=5)
    np.testing.assert_array_equal(ref.best_params, chunked.best_params)


def test_bad_objective_raises():
    def nan_obj(u):
        f = np.sum(u, axis=-1)
        f[1, :] = np.nan
        return f

    with pytest.raises(ValueError, match="site 1"):
        sceua(nan_obj, 2, n_sites=2, max_evals=50, progress=False)
    r = sceua(nan_obj, 2, n_sites=2, max_evals=50, progress=False, nan_policy="inf")
    assert np.isinf(r.best_cost[1]) and np.isfinite(r.best_cost[0])
    with pytest.raises(ValueError, match="shape"):
        sceua(lambda u: np.zeros(u.shape[0]), 2, max_evals=50, progress=False)
    with pytest.raises(ValueError):
        sceua(lambda u: np.zeros(u.shape[:2]), 2, n_points_subcomplex=1, progress=False)


# ---- a small hydrological model: recover known parameters --------------------------------------

BUCKET_LOW = np.array([50.0, 0.5, 0.01])   # soil capacity SMAX (mm), shape BETA (-), recession K (1/d)
BUCKET_HIGH = np.array([400.0, 5.0, 0.5])


def bucket_model(params_phys, precip, pet, warmup=60):
    """Soil bucket + linear reservoir. params_phys [site, cand, 3]; precip, pet [time, site] (mm/d)
    -> streamflow [time - warmup, site, cand] (mm/d)."""
    smax, beta, k = params_phys[..., 0], params_phys[..., 1], params_phys[..., 2]
    soil = 0.5 * smax
    gw = np.zeros_like(smax)
    out = np.empty((precip.shape[0],) + smax.shape)
    for t in range(precip.shape[0]):
        frac = soil / smax
        p = precip[t][:, None]
        recharge = p * frac ** beta
        soil = soil + p - recharge - np.minimum(pet[t][:, None] * frac, soil)
        excess = np.maximum(soil - smax, 0.0)
        soil = soil - excess
        gw = gw + recharge + excess
        q = k * gw
        gw = gw - q
        out[t] = q
    return out[warmup:]


def test_recovers_bucket_model_parameters():
    rng = np.random.default_rng(0)
    T, S = 420, 3
    wet = rng.random((T, S)) < 0.35
    precip = np.where(wet, rng.gamma(0.8, 12.0, (T, S)), 0.0)
    pet = (3.0 + 2.0 * np.sin(2 * np.pi * np.arange(T) / 365.0))[:, None] * np.ones(S)
    true_unit = np.array([[0.3, 0.4, 0.2], [0.7, 0.2, 0.6], [0.5, 0.8, 0.1]])
    to_phys = lambda u: BUCKET_LOW + (BUCKET_HIGH - BUCKET_LOW) * u
    truth = bucket_model(to_phys(true_unit)[:, None, :], precip, pet)[..., 0]      # [time, site]
    obs = truth * (1.0 + 0.05 * rng.standard_normal(truth.shape))                  # 5 % noise

    def objective(u):  # RMSE against the noisy observations, [site, cand]
        sim = bucket_model(to_phys(u), precip, pet)
        return np.sqrt(np.mean((sim - obs[:, :, None]) ** 2, axis=0))

    res = sceua(objective, 3, n_sites=S, n_complexes=4, max_evals=1500, seed=0, progress=False)
    sim = bucket_model(to_phys(res.best_params)[:, None, :], precip, pet)[..., 0]
    nse = 1 - np.sum((sim - truth) ** 2, axis=0) / np.sum((truth - truth.mean(axis=0)) ** 2, axis=0)
    assert np.all(nse > 0.99), nse
    np.testing.assert_allclose(res.best_params, true_unit, atol=0.1)


def test_budget_convergence_flat_and_rising_tails():
    import pandas as pd

    from dplpaper.calibrate.sceua import budget_convergence
    ep = np.linspace(0, 1000, 11)
    flat = pd.DataFrame({"epoch": ep, "best_cost_median": np.r_[1.0, 0.6, 0.45, 0.4, 0.38, 0.37, 0.365, 0.362,
                                                               0.361, 0.3605, 0.3603]})
    r = budget_convergence(flat)
    assert r["converged"] and r["tail_start"] == 800 and abs(r["improvement"] - (0.361 - 0.3603)) < 1e-12
    still = flat.assign(best_cost_median=np.linspace(1.0, 0.3, 11))   # still improving by 0.07 per tenth
    r = budget_convergence(still)
    assert not r["converged"] and abs(r["improvement"] - 0.14) < 1e-9
    assert not budget_convergence(flat.iloc[:1])["converged"]
    with pytest.raises(ValueError):
        budget_convergence(flat, tail=1.5)


def test_budget_convergence_judges_the_last_stage():
    import pandas as pd

    from dplpaper.calibrate.sceua import budget_convergence
    sce = pd.DataFrame({"epoch": np.linspace(0, 1000, 11), "best_cost_median": np.linspace(1.0, 0.5, 11),
                        "stage": "sceua"})
    assert not budget_convergence(sce.drop(columns="stage"))["converged"]       # still falling by 0.1 per fifth
    grad = pd.DataFrame({"epoch": 1000 + np.arange(0, 101, 10.0), "stage": "gradient",
                         "best_cost_median": 0.3 + 0.2 * np.exp(-np.arange(0, 101, 10.0) / 10)})
    both = pd.concat([sce, grad], ignore_index=True)
    r = budget_convergence(both)
    # tail = the last fifth of the gradient stage (steps 80..100 of 100), not of the whole 0..1100 axis
    assert r["tail_start"] == 1080 and r["converged"]
    assert r["improvement"] == pytest.approx(0.2 * (np.exp(-8) - np.exp(-10)))
    # a gradient stage still falling is not converged, whatever came before
    steep = both.copy()
    steep.loc[steep["stage"] == "gradient", "best_cost_median"] = np.linspace(0.5, 0.3, 11)
    assert not budget_convergence(steep)["converged"]


def test_budget_convergence_on_a_coarse_curve_measures_the_whole_tail():
    """Points only every ~500 evaluations: the tail (last 20 %) starts at the last point before it,
    so a curve that fell in its last loop is not called converged."""
    import pandas as pd

    from dplpaper.calibrate.sceua import budget_convergence
    coarse = pd.DataFrame({"epoch": [506.0, 1012, 1518, 2024, 2530, 2670],
                           "best_cost_median": [0.9, 0.85, 0.82, 0.80, 0.78, 0.77]})
    r = budget_convergence(coarse)
    assert r["tail_start"] == 2024 and r["improvement"] == pytest.approx(0.03) and not r["converged"]


def test_pairwise_objective_orders_pairs_site_major_and_maps_nan_to_inf():
    from dplpaper.calibrate.sceua import pairwise_objective

    seen = {}

    def cost(rep, p):
        seen["rep"], seen["p"] = rep, p
        c = p.sum(axis=1) + 10 * rep
        c[1] = np.nan
        return c

    u = np.arange(2 * 3 * 2, dtype=float).reshape(2, 3, 2)     # 2 sites x 3 candidates x 2 parameters
    out = pairwise_objective(cost)(u)
    assert out.shape == (2, 3) and list(seen["rep"]) == [0, 0, 0, 1, 1, 1]
    np.testing.assert_array_equal(seen["p"][4], u[1, 1])
    assert out[0, 1] == np.inf and out[1, 2] == u[1, 2].sum() + 10
