"""Cost to reach the Case 1 RMSE threshold: dPL (gZ) vs SCE-UA, per sampling density, twin and real.

The paper (Tsai et al. 2021, Figure 1e) counts cost in epochs, one epoch being one forward run of
the model per training cell; at s8 dPL needed 60 epochs and 9.9 min, SCE-UA 840 epochs and 253 min.
Here, for each variant (``twin``: threshold ``Case1Config.rmse_threshold`` = 0.025; ``real``: 0.05)
and density (s16, s8, s4), both methods are run **fresh** (``DPLPAPER_RESULTS`` points to a
temporary folder, so the run cache under ``results/case1/runs`` is never read; the trained
surrogate, an input shared by both methods, is copied from ``results/case1`` when present, else
trained once) and we report:

* epochs to threshold (first learning-curve point at or below it; ``null`` = not reached in budget),
* **site-forward-runs** to threshold = epochs x training cells (SCE-UA runs on every training cell
  here: no subsample cap),
* training wall time to threshold (s; the learning-curve evaluations are excluded) and in total,
* per site-forward-run wall time of each method, and a profile (:func:`profile`) of one dPL step
  (gZ forward, surrogate forward, backward + Adam) against one batched SCE-UA objective call,
* ending test RMSE, and peak resident memory (``ru_maxrss``, MiB; process-wide, monotone: the
  value after each run is the peak so far, ``rss_growth_mib`` what that run added).

Budgets (default): twin = the quick config (dPL 12/6/3 epochs, SCE-UA 2 complexes x 150
evaluations per cell); real = dPL 300/100/40 epochs (the full config's, so that dPL's curve
converges: real SMAP's threshold lies within a few thousandths of its converged RMSE) and SCE-UA
300 evaluations. :func:`gaps` then says per variant and density who is ahead in wall time and
why: wall ratio = epochs ratio / per-run cost ratio.
``--quick``: s16 and s8 only. Writes ``benchmarks/results/case1_cost.json``.
Run: ``.venv/bin/python -m benchmarks.bench_case1_cost [--quick]`` (about 5 minutes on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import machine_info, write_json  # noqa: E402
from dplpaper.perf import crossover, first_to_reach, first_wall  # noqa: E402,F401  (first_wall: re-exported)

RESULTS = ROOT / "benchmarks" / "results"
REAL_DPL_EPOCHS = {"s16": 300, "s8": 100, "s4": 40}          # the full config's epochs: dPL's own convergence
REAL_SCE_EVALS = 300


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0      # Linux: KiB


def _num(x):
    return None if x is None or not math.isfinite(x) else float(x)


def configs(quick: bool) -> dict:
    from dplpaper.experiments import soil_moisture as sm
    dens = ("s16", "s8") if quick else ("s16", "s8", "s4")
    return {"twin": sm.Case1Config.quick(variant="twin", seed=0, densities=dens, sce_site_cap=None),
            "real": sm.Case1Config.quick(variant="real", seed=0, densities=dens, sce_site_cap=None,
                                         dpl_epochs=dict(REAL_DPL_EPOCHS), sce_max_evals=REAL_SCE_EVALS)}


def bench(quick: bool = False, variants=("twin", "real")) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="dplpaper_case1_cost_"))
    old = os.environ.get("DPLPAPER_RESULTS")
    os.environ["DPLPAPER_RESULTS"] = str(tmp)
    try:
        from dplpaper.experiments import soil_moisture as sm
        cfgs = configs(quick)
        rows, profiles, curves = [], [], []
        for v in variants:
            cfg = cfgs[v]
            data = sm.load_case1(cfg)
            src = ROOT / "results" / "case1" / sm.surrogate_path(cfg).name
            dst = sm.surrogate_path(cfg)                         # under the temporary results folder
            t0 = time.perf_counter()
            if src.exists() and not dst.exists():
                shutil.copy2(src, dst)
            sur = sm.get_surrogate(cfg, data=sm.load_case1(cfg, "real"))
            sur_s = time.perf_counter() - t0
            thr = cfg.rmse_threshold
            profiles.append({"variant": v, **profile(cfg, data, sur)})
            print(json.dumps(profiles[-1]), flush=True)
            for d in cfg.densities:
                for method in ("gz", "sceua"):
                    rss0 = _rss_mib()
                    t0 = time.perf_counter()
                    run = sm.get_run(cfg, data, sur, method, d, seed=0)
                    total = time.perf_counter() - t0
                    e, w = sm.epochs_to_threshold(run.history, thr)
                    n = len(run.train_idx)
                    row = dict(variant=v, density=d, method=method, threshold=thr, n_train=n,
                               epochs_to_threshold=_num(e), site_forward_runs_to_threshold=_num(e * n),
                               wall_to_threshold_s=_num(w), epochs_run=float(run.history["epoch"].iloc[-1]),
                               site_forward_runs=float(run.history["epoch"].iloc[-1]) * n,
                               training_wall_s=float(run.history["wall_time_s"].iloc[-1]), total_wall_s=total,
                               us_per_site_run=1e6 * float(run.history["wall_time_s"].iloc[-1])
                               / max(float(run.history["epoch"].iloc[-1]) * n, 1.0),
                               ending_test_rmse=float(run.history["test_rmse"].iloc[-1]),
                               best_test_rmse=float(run.history["test_rmse"].min()),
                               peak_rss_mib=_rss_mib(), rss_growth_mib=_rss_mib() - rss0,
                               surrogate_ready_s=sur_s, loadavg=list(os.getloadavg()))
                    rows.append(row)
                    h = run.history
                    curves.append(dict(variant=v, density=d, method=method,
                                       epoch=[round(float(x), 4) for x in h["epoch"]],
                                       wall_time_s=[round(float(x), 4) for x in h["wall_time_s"]],
                                       test_rmse=[round(float(x), 6) for x in h["test_rmse"]]))
                    print(json.dumps({k: (round(x, 4) if isinstance(x, float) else x) for k, x in row.items()}), flush=True)
        return {"rows": rows, "profile": profiles, "curves": curves, "settings": {v: {"dpl_epochs": cfgs[v].dpl_epochs, "sce_complexes": cfgs[v].sce_complexes,
                                                "sce_max_evals": cfgs[v].sce_max_evals, "threshold": cfgs[v].rmse_threshold,
                                                "densities": list(cfgs[v].densities), "sce_site_cap": None}
                                            for v in variants}}
    finally:
        if old is None:
            os.environ.pop("DPLPAPER_RESULTS", None)
        else:
            os.environ["DPLPAPER_RESULTS"] = old
        shutil.rmtree(tmp, ignore_errors=True)


def profile(cfg, data, sur, density: str = "s8", reps: int = 5, n_cand: int = 20) -> dict:
    """Where the wall time goes, per site-forward-run (one cell's training year through the model).

    dPL (gZ): one training step on a mini-batch of ``cfg.dpl_batch`` cells, split into the gZ
    forward (LSTM over the training year), the surrogate forward, and backward + Adam step.
    SCE-UA: one objective call for every training cell x ``n_cand`` candidates (no gradient; cells x
    candidates in surrogate chunks of ``cfg.sur_chunk`` columns), as ``run_sceua`` evaluates them.
    Seconds are the best of ``reps`` after one warm-up; per-run costs in microseconds."""
    import statistics

    import torch

    from dplpaper.experiments import case1_methods as cm
    from dplpaper.experiments import soil_moisture as sm
    from dplpaper.nets import GZ

    idx = sm.training_cells(data, density, cfg, "gz")
    inp = cm._Inputs(data, idx)
    b = torch.as_tensor(idx[: min(cfg.dpl_batch, len(idx))])
    torch.manual_seed(0)
    net = GZ(n_series=4, n_attributes=inp.attributes.shape[1], n_params=len(sm.PARAM_NAMES), hidden=cfg.gz_hidden,
             masked_series=[3])
    pbm = cm.SoilSurrogate(sur)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.dpl_lr)
    series, attrs = inp.series[:, b], inp.attributes[b]
    forcing, target = inp.f_train[:, b], inp.y_train[inp.spin:, b]
    parts = {"gz_forward": [], "surrogate_forward": [], "backward_and_step": []}
    for r in range(reps + 1):
        opt.zero_grad()
        t0 = time.perf_counter()
        p = net(series, attrs)
        t1 = time.perf_counter()
        sim = pbm(forcing, p[..., 0] if p.dim() == 3 else p, warmup=inp.spin)["soil_moisture"]
        t2 = time.perf_counter()
        m = ~torch.isnan(target)
        loss = torch.sqrt(((sim - torch.nan_to_num(target).to(sim.dtype))[m] ** 2).mean())
        loss.backward()
        opt.step()
        t3 = time.perf_counter()
        if r:
            for k, v in zip(parts, (t1 - t0, t2 - t1, t3 - t2)):
                parts[k].append(v)
    B = len(b)
    dpl = {k: min(v) for k, v in parts.items()}
    dpl_total = sum(dpl.values())
    # SCE-UA: one objective call over all training cells x n_cand candidates
    f_tr, y_tr = data.model_inputs(data.train_period, idx)
    f_tr = torch.as_tensor(f_tr)
    rng = np.random.default_rng(0)
    cand = torch.as_tensor(rng.random((len(idx) * n_cand, len(sm.PARAM_NAMES))), dtype=torch.float32)
    rep = np.repeat(np.arange(len(idx)), n_cand)
    times = []
    for r in range(max(2, reps // 2) + 1):
        t0 = time.perf_counter()
        cm.surrogate_chunks(pbm, f_tr[:, rep], cand, data.spinup_days, cfg.sur_chunk, torch.device("cpu"))
        times.append(time.perf_counter() - t0)
    sce_s = min(times[1:])
    runs = len(rep)
    return {"density": density, "dpl_batch_cells": B, "dpl_step_s": dpl_total,
            "dpl_split_s": dpl, "dpl_split_share": {k: v / dpl_total for k, v in dpl.items()},
            "dpl_us_per_site_run": 1e6 * dpl_total / B,
            "sceua_call_runs": runs, "sceua_call_s": sce_s, "sceua_us_per_site_run": 1e6 * sce_s / runs,
            "cost_ratio_per_run_dpl_over_sceua": (dpl_total / B) / (sce_s / runs),
            "reps": reps, "median_dpl_step_s": sum(statistics.median(v) for v in parts.values())}


def ratios(rows: list[dict]) -> list[dict]:
    """Per (variant, density): SCE-UA / dPL cost to threshold (site-forward-runs, wall time); None if either missed."""
    out = []
    key = {(r["variant"], r["density"], r["method"]): r for r in rows}
    for (v, d, m), g in key.items():
        if m != "gz" or (v, d, "sceua") not in key:
            continue
        s = key[(v, d, "sceua")]
        both = g["site_forward_runs_to_threshold"] is not None and s["site_forward_runs_to_threshold"] is not None
        out.append(dict(variant=v, density=d,
                        runs_ratio_sceua_over_dpl=(s["site_forward_runs_to_threshold"] / g["site_forward_runs_to_threshold"]
                                                   if both and g["site_forward_runs_to_threshold"] > 0 else None),
                        wall_ratio_sceua_over_dpl=(s["wall_to_threshold_s"] / g["wall_to_threshold_s"]
                                                   if both and g["wall_to_threshold_s"] > 0 else None),
                        dpl_reached=g["epochs_to_threshold"] is not None, sceua_reached=s["epochs_to_threshold"] is not None))
    return out


def gaps(rows: list[dict], curves: list[dict] | None = None) -> list[dict]:
    """Who reaches the threshold first in wall time, per (variant, density), and why.

    The wall-time ratio SCE-UA / dPL factors into the **epochs ratio** (SCE-UA's epochs to threshold
    over dPL's: what the domain-wide loss buys) divided by the **per-run cost ratio** (dPL's wall
    time per site-forward-run over SCE-UA's, over each whole run: a gradient step costs a forward,
    a backward and the gZ network; SCE-UA's candidates run forward only, all cells and candidates in
    one batched call). dPL is ahead when its epochs advantage exceeds its per-run cost, i.e.
    ``epochs_ratio > cost_ratio``; ``break_even_epochs_ratio`` is that cost ratio. Where a method did
    not reach the threshold, ``best_*`` say how far its best test RMSE stayed above it. With the
    learning ``curves``, ``dpl_ahead_down_to`` (:func:`crossover`) gives the tightest threshold down
    to which dPL is first at every looser one, and ``sceua_first_point`` SCE-UA's state after its
    random initial population (:func:`_first_point`)."""
    key = {(r["variant"], r["density"], r["method"]): r for r in rows}
    cur = {(c["variant"], c["density"], c["method"]): c for c in curves or []}
    out = []
    for (v, d, m), g in key.items():
        s = key.get((v, d, "sceua"))
        if m != "gz" or s is None:
            continue
        cost = g["us_per_site_run"] / s["us_per_site_run"] if s["us_per_site_run"] else None
        eg, es = g["epochs_to_threshold"], s["epochs_to_threshold"]
        wg, ws = g["wall_to_threshold_s"], s["wall_to_threshold_s"]
        out.append(dict(variant=v, density=d, threshold=g["threshold"], ahead=first_to_reach(wg, ws),
                        wall_ratio_sceua_over_dpl=ws / wg if (wg and ws is not None) else None,
                        epochs_ratio_sceua_over_dpl=es / eg if (eg and es is not None) else None,
                        cost_ratio_per_run_dpl_over_sceua=cost, break_even_epochs_ratio=cost,
                        dpl_best_rmse=g["best_test_rmse"], sceua_best_rmse=s["best_test_rmse"],
                        dpl_ahead_down_to=(crossover(cur[(v, d, "gz")], cur[(v, d, "sceua")])["dpl_ahead_down_to"]
                                           if (v, d, "gz") in cur and (v, d, "sceua") in cur else None),
                        sceua_first_point=_first_point(cur.get((v, d, "sceua"))),
                        dpl_reached=eg is not None, sceua_reached=es is not None))
    return out


def _first_point(curve: dict | None) -> dict | None:
    """SCE-UA's first learning-curve point: after its initial population (complexes x (2n + 1)
    random candidates per cell), before any evolution. Where its ``test_rmse`` already meets the
    threshold, random sampling alone reached it, and any optimizer must beat the cost of that
    many forward runs per cell."""
    if not curve or not curve.get("epoch"):
        return None
    return {"epoch": curve["epoch"][0], "wall_time_s": curve["wall_time_s"][0], "test_rmse": curve["test_rmse"][0]}


def summarize(res: dict) -> dict:
    """The derived parts of a result (``ratios``, ``gaps``, ``checks``) from its ``rows`` and ``curves``."""
    rat = ratios(res["rows"])
    gap = gaps(res["rows"], res.get("curves"))
    checks = []
    for r in rat:
        if r["density"] == "s8":
            val = r["runs_ratio_sceua_over_dpl"]
            checks.append({"what": f"case1 {r['variant']} s8: SCE-UA/dPL site-forward-runs to threshold (x)",
                           "value": val, "target": 1.0, "met": None if val is None else bool(val >= 1.0)})
    for g in gap:
        checks.append({"what": f"case1 {g['variant']} {g['density']}: dPL ahead of SCE-UA in wall time to threshold",
                       "value": g["wall_ratio_sceua_over_dpl"], "target": 1.0,
                       "met": None if g["ahead"] is None else g["ahead"] == "dPL"})
    return {"ratios": rat, "gaps": gap, "checks": checks}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="densities s16 and s8 only")
    ap.add_argument("--variants", default="twin,real")
    ap.add_argument("--resummarize", action="store_true",
                    help="run nothing: recompute ratios, gaps and checks of the committed case1_cost.json from its rows and curves")
    args = ap.parse_args(argv)
    path = RESULTS / "case1_cost.json"
    if args.resummarize:
        out = json.loads(path.read_text())
        out.update(summarize(out))
        write_json(path, out)
        return out
    info = machine_info()
    t0 = time.perf_counter()
    res = bench(args.quick, tuple(v for v in args.variants.split(",") if v))
    info["loadavg_end"] = list(os.getloadavg())
    out = {"machine": info, "quick": bool(args.quick), "wall_s": time.perf_counter() - t0, **res, **summarize(res),
           "note": ("fresh runs (temporary DPLPAPER_RESULTS); epochs = forward runs per training cell; wall times "
                    "from a 2-core machine, see the load averages; null = threshold not reached in the budget; "
                    "peak_rss_mib is ru_maxrss of the whole process (monotone)")}
    write_json(path, out)
    return out


if __name__ == "__main__":
    main()
