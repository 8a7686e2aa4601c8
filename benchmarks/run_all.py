"""Run every benchmark in this folder with its default settings (``make bench``).

``python -m benchmarks.run_all [--quick] [--only hbv,sceua]`` writes ``benchmarks/results/<name>.json``
for each benchmark (with machine information: CPU, cores, torch version, date, load average),
then ``benchmarks/results/summary.json`` and a table of the targets met / missed.

Benchmarks: ``bench_hbv`` (HBV throughput and memory vs the reference loop and hydrodl2, LSTM split),
``bench_sceua`` (SCE-UA cost per evaluation), ``bench_sceua_overhead`` (the algorithm's own overhead), ``bench_dpl_step`` (one Case 2 dPL
training step, static vs dynamic parameters, network vs HBV), ``bench_vicwb`` (the VIC-style model's
C loop against its NumPy reference),
``bench_case1_cost`` (cost to reach the Case 1 RMSE threshold, dPL vs SCE-UA, with a profile),
``bench_threads`` (thread policy on an idle and a busy machine) and, only with ``--only book``,
``bench_book`` (the fresh-clone quick book, ~15 minutes). The default run takes about 15 minutes on
2 cores. ``--only`` updates its benchmarks' entries in ``summary.json`` and keeps the others'.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import machine_info, write_json  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def _hbv(quick):
    from benchmarks import bench_hbv
    return bench_hbv.main(["--quick"] if quick else [])


def _sceua(quick):
    from benchmarks import bench_sceua
    return bench_sceua.main(["--quick"] if quick else [])


def _sceua_overhead(quick):
    from benchmarks import bench_sceua_overhead as b
    rows = []
    for n_sites in ((1, 100) if quick else (1, 100, 531)):
        r = b.bench(14, n_sites, 1000 if quick else 2000)
        r["loadavg"] = list(os.getloadavg())
        rows.append(r)
        print(json.dumps(r), flush=True)
    out = {"machine": machine_info(), "results": rows,
           "note": "SCE-UA bookkeeping per evaluation with a nearly free objective (its time subtracted)"}
    write_json(RESULTS / "sceua_overhead.json", out)
    return out


def _case1_cost(quick):
    path = ROOT / "benchmarks" / "bench_case1_cost.py"
    if not path.exists():
        return {"skipped": "benchmarks/bench_case1_cost.py does not exist yet (it is added with Case 1: cost to "
                           "reach the Case 1 RMSE threshold, dPL vs SCE-UA)"}
    mod = importlib.import_module("benchmarks.bench_case1_cost")
    return mod.main(["--quick"] if quick else [])


def _dpl_step(quick):
    from benchmarks import bench_dpl_step
    return bench_dpl_step.main(["--quick"] if quick else [])


def _vicwb(quick):
    from benchmarks import bench_vicwb
    return bench_vicwb.main(["--quick"] if quick else [])


def _threads(quick):
    from benchmarks import bench_threads
    return bench_threads.main(["--quick"] if quick else [])


def _book(quick):
    from benchmarks import bench_book
    return bench_book.main([])


BENCHMARKS = {"hbv": _hbv, "sceua": _sceua, "sceua_overhead": _sceua_overhead, "dpl_step": _dpl_step,
              "vicwb": _vicwb, "case1_cost": _case1_cost, "threads": _threads, "book": _book}
#: run by default (``book``, a fresh-clone quick book of ~15 minutes, only with ``--only book``)
DEFAULT = [n for n in BENCHMARKS if n != "book"]


def summary_rows(results: dict) -> list[dict]:
    rows = []
    for name, res in results.items():
        if not isinstance(res, dict):
            continue
        for c in res.get("checks", []) or []:
            rows.append({"benchmark": name, **c})
    return rows


def print_table(rows, skipped):
    print("\n" + "=" * 100)
    print(f"{'benchmark':10s} {'what':62s} {'value':>10s} {'target':>9s}  result")
    for r in rows:
        v, t = r["value"], r["target"]
        vs = "n/a" if v is None else (f"{v:.3g}" if abs(v) < 1e4 else f"{v:.3g}")
        cmp = "<=" if r.get("lower_is_better") else ">="
        res = "n/a" if r["met"] is None else ("MET" if r["met"] else "MISSED")
        print(f"{r['benchmark']:10s} {r['what'][:62]:62s} {vs:>10s} {cmp}{t:<8.3g}  {res}")
    for name, why in skipped.items():
        print(f"{name:10s} SKIPPED: {why}")
    print("=" * 100)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller settings (for a smoke test)")
    ap.add_argument("--only", default="", help="comma-separated subset of " + ",".join(BENCHMARKS))
    args = ap.parse_args(argv)
    names = [n for n in (args.only.split(",") if args.only else DEFAULT) if n]
    info = machine_info()
    print(json.dumps(info, indent=1), flush=True)
    results, skipped, errors, wall = {}, {}, {}, {}
    for name in names:
        print(f"\n--- {name}", flush=True)
        t0 = time.perf_counter()
        try:
            res = BENCHMARKS[name](args.quick)
        except Exception:  # one failing benchmark does not stop the others
            errors[name] = traceback.format_exc()[-1500:]
            print(errors[name], flush=True)
            continue
        finally:
            wall[name] = time.perf_counter() - t0
        if isinstance(res, dict) and "skipped" in res:
            skipped[name] = res["skipped"]
            print(f"skipped: {res['skipped']}")
        results[name] = res
    info["loadavg_end"] = list(os.getloadavg())
    rows = summary_rows(results)
    old = json.loads((RESULTS / "summary.json").read_text()) if (RESULTS / "summary.json").exists() else {}
    if args.only and old:   # a subset updates its own entries and keeps the others'
        wall = {**{k: v for k, v in old.get("wall_s", {}).items() if k not in names}, **wall}
        rows = [r for r in old.get("checks", []) if r.get("benchmark") not in names] + rows
        skipped = {**{k: v for k, v in old.get("skipped", {}).items()     # no longer skipped once its file exists
                      if k not in names and not (RESULTS / f"{k}.json").exists()}, **skipped}
        errors = {**{k: v for k, v in old.get("errors", {}).items() if k not in names}, **errors}
        names = [n for n in old.get("benchmarks", []) if n not in names] + names
    summary = {"machine": info, "benchmarks": names, "wall_s": wall, "checks": rows, "skipped": skipped,
               "errors": errors, "quick": bool(args.quick),
               "note": "timings from a shared machine: see the load averages; each JSON holds its own"}
    write_json(RESULTS / "summary.json", summary)
    print_table(rows, skipped)
    print(f"total {sum(wall.values()):.0f} s; wrote {RESULTS}/summary.json")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
