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
* ending test RMSE, and peak resident memory (``ru_maxrss``, MiB; process-wide, monotone: the
  value after each run is the peak so far, ``rss_growth_mib`` what that run added).

Budgets (default): twin = the quick config (dPL 12/6/3 epochs, SCE-UA 2 complexes x 150
evaluations per cell); real = dPL 60/30/10 epochs (as notebook 14) and SCE-UA 300 evaluations.
``--quick``: s16 and s8 only. Writes ``benchmarks/results/case1_cost.json``.
Run: ``.venv/bin/python -m benchmarks.bench_case1_cost [--quick]`` (about 3 minutes on 2 cores).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import machine_info, write_json  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
REAL_DPL_EPOCHS = {"s16": 60, "s8": 30, "s4": 10}
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
        rows = []
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
                               ending_test_rmse=float(run.history["test_rmse"].iloc[-1]),
                               best_test_rmse=float(run.history["test_rmse"].min()),
                               peak_rss_mib=_rss_mib(), rss_growth_mib=_rss_mib() - rss0,
                               surrogate_ready_s=sur_s, loadavg=list(os.getloadavg()))
                    rows.append(row)
                    print(json.dumps({k: (round(x, 4) if isinstance(x, float) else x) for k, x in row.items()}), flush=True)
        return {"rows": rows, "settings": {v: {"dpl_epochs": cfgs[v].dpl_epochs, "sce_complexes": cfgs[v].sce_complexes,
                                                "sce_max_evals": cfgs[v].sce_max_evals, "threshold": cfgs[v].rmse_threshold,
                                                "densities": list(cfgs[v].densities), "sce_site_cap": None}
                                            for v in variants}}
    finally:
        if old is None:
            os.environ.pop("DPLPAPER_RESULTS", None)
        else:
            os.environ["DPLPAPER_RESULTS"] = old
        shutil.rmtree(tmp, ignore_errors=True)


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


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="densities s16 and s8 only")
    ap.add_argument("--variants", default="twin,real")
    args = ap.parse_args(argv)
    info = machine_info()
    t0 = time.perf_counter()
    res = bench(args.quick, tuple(v for v in args.variants.split(",") if v))
    info["loadavg_end"] = list(os.getloadavg())
    rat = ratios(res["rows"])
    checks = []
    for r in rat:
        if r["density"] == "s8":
            val = r["runs_ratio_sceua_over_dpl"]
            checks.append({"what": f"case1 {r['variant']} s8: SCE-UA/dPL site-forward-runs to threshold (x)",
                           "value": val, "target": 1.0, "met": None if val is None else bool(val >= 1.0)})
    out = {"machine": info, "quick": bool(args.quick), "wall_s": time.perf_counter() - t0, **res, "ratios": rat,
           "checks": checks,
           "note": ("fresh runs (temporary DPLPAPER_RESULTS); epochs = forward runs per training cell; wall times "
                    "from a shared 2-core machine, see the load averages; null = threshold not reached in the budget; "
                    "peak_rss_mib is ru_maxrss of the whole process (monotone)")}
    write_json(RESULTS / "case1_cost.json", out)
    return out


if __name__ == "__main__":
    main()
