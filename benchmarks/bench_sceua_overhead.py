"""Overhead of the batched SCE-UA itself, per evaluation (model run) per site.

The objective is nearly free (a sum of squares), and its own time is measured and subtracted,
so what remains is the algorithm's bookkeeping: sampling, sorting, CCE steps, packing, per-site
random streams. Run:  .venv/bin/python benchmarks/bench_sceua_overhead.py [--spotpy]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import time

import numpy as np

from dplpaper.calibrate.sceua import sceua


def bench(n_params: int, n_sites: int, max_evals: int, n_complexes: int = 7) -> dict:
    t_obj = [0.0]

    def objective(u):
        t = time.perf_counter()
        f = np.sum((u - 0.3) ** 2, axis=-1)
        t_obj[0] += time.perf_counter() - t
        return f

    t0 = time.perf_counter()
    r = sceua(objective, n_params, n_sites=n_sites, n_complexes=n_complexes, max_evals=max_evals,
              kstop=10 ** 9, pcento=0.0, peps=0.0, seed=0, progress=False)
    wall = time.perf_counter() - t0
    evals = int(r.n_evals.sum())
    return dict(n_params=n_params, n_sites=n_sites, evals_per_site=int(r.n_evals.mean()), calls=r.n_calls,
                wall_s=wall, objective_s=t_obj[0],
                overhead_us_per_eval=1e6 * (wall - t_obj[0]) / evals,
                padding_frac=1 - evals / r.n_candidates)


def bench_spotpy(n_params: int, max_evals: int) -> dict:
    import spotpy

    calls = [0]

    class Setup:
        def __init__(self):
            self.params = [spotpy.parameter.Uniform(f"x{i}", 0.0, 1.0) for i in range(n_params)]

        def parameters(self):
            return spotpy.parameter.generate(self.params)

        def simulation(self, v):
            calls[0] += 1
            return [float(np.sum((np.asarray(v) - 0.3) ** 2))]

        def evaluation(self):
            return [0.0]

        def objectivefunction(self, simulation, evaluation):
            return simulation[0]

    s = spotpy.algorithms.sceua(Setup(), dbformat="ram", random_state=0, save_sim=False)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        s.sample(max_evals, ngs=7, kstop=10 ** 9, pcento=0.0, peps=0.0)
    wall = time.perf_counter() - t0
    return dict(n_params=n_params, model_runs=calls[0], wall_s=wall, us_per_eval=1e6 * wall / calls[0])


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--spotpy", action="store_true", help="also time spotpy's SCE-UA on one site")
    ap.add_argument("--evals", type=int, default=3000)
    args = ap.parse_args()
    for n_params in (3, 13):
        for n_sites in (1, 100, 500):
            print(bench(n_params, n_sites, args.evals))
        if args.spotpy:
            print("spotpy", bench_spotpy(n_params, args.evals))
