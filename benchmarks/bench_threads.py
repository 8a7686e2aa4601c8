"""Thread policy on an idle and on a busy 2-core machine (issue 16).

Each workload of the package runs in a fresh child process (so that ``OMP_NUM_THREADS`` and
``OMP_WAIT_POLICY`` take effect before PyTorch loads) with 1 or 2 threads, OpenMP's default
(active: workers spin after each parallel region) or passive wait policy, on an idle machine and
beside one competing single-threaded process (a Python busy loop: what a browser tab, an IDE's
indexer or a second notebook is to a laptop). Per configuration the child reports the best and
median seconds of a few repetitions of its unit of work.

Workloads (one unit of work each):

* ``hbv``: fused HBV forward + backward, 100 sites x 1095 days, nmul = 16 (the kernel splits sites
  over ``torch.get_num_threads()`` threads);
* ``gz_step``: one Case 1 gZ training step (LSTM hidden 32 over 365 days x 64 cells, forward,
  backward, Adam);
* ``dpl_case2``: one Case 2 dynamic-parameter training step (LSTM 64 + MLP 256 + HBV nmul 16,
  100 basins x 730 days; ``bench_dpl_step``'s ``dynamic_compact``);
* ``sceua``: SCE-UA of HBV (nmul 1, 1095 days) for 20 sites x 600 evaluations (NumPy + C);
* ``vicwb``: the VIC-style model's C loop, 100 sites x 730 days.

Output ``benchmarks/results/threads.json``: every row, the slowdown of each (workload, threads,
wait policy) when busy relative to the best idle configuration, and the policy that the package
sets (:mod:`dplpaper.threads`). Usage: ``python -m benchmarks.bench_threads [--quick]``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORKLOADS = ("hbv", "gz_step", "dpl_case2", "sceua", "vicwb")


def _unit(name: str):
    """Return a no-argument callable: one unit of work of workload ``name``."""
    import torch

    torch.manual_seed(0)
    if name == "hbv":
        from benchmarks.bench_hbv import _pass_fn
        return _pass_fn("fused", 100, 16)
    if name == "gz_step":
        from dplpaper.nets import GZ
        g = torch.Generator().manual_seed(0)
        x = torch.randn(365, 64, 4, generator=g)
        a = torch.randn(64, 10, generator=g)
        y = torch.rand(64, 5, 1, generator=g)
        net = GZ(4, 10, 5, 1, hidden=32, masked_series=[])
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)

        def once():
            opt.zero_grad()
            ((net(x, a) - y) ** 2).mean().backward()
            opt.step()
        return once
    if name == "dpl_case2":
        from benchmarks.bench_dpl_step import _inputs, _model
        forcing, series, attrs, obs = _inputs()
        net, hbv = _model("dynamic_compact")

        def once():
            net.zero_grad()
            q = hbv(forcing, net(series, attrs), warmup=365)["streamflow"]
            ((q - obs) ** 2).mean().backward()
        return once
    if name == "sceua":
        from benchmarks.bench_sceua import run
        return lambda: run(20, 600)
    if name == "vicwb":
        from benchmarks.bench_vicwb import _case
        from dplpaper.models.vicwb import VICStyleModel
        f, p, soil = _case(730, 100)
        m = VICStyleModel(backend="c")
        return lambda: m.run(f, p, warmup=0, soil_properties=soil)
    raise ValueError(name)


def worker(spec: dict) -> dict:
    """Child process: one configuration -> one JSON line."""
    import torch
    once = _unit(spec["workload"])
    once()                                   # warm-up: library loads, allocator
    times = []
    t_end = time.perf_counter() + spec["budget_s"]
    while len(times) < spec["min_reps"] or (time.perf_counter() < t_end and len(times) < 50):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    return {"seconds_min": min(times), "seconds_median": statistics.median(times), "reps": len(times),
            "torch_threads": torch.get_num_threads(), "loadavg": list(os.getloadavg())}


def _busy_process():
    """One competing single-threaded process (a Python busy loop)."""
    return subprocess.Popen([sys.executable, "-c", "x = 0\nwhile True:\n    x += 1\n"])


def run_child(spec: dict, timeout: int = 900) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(spec["threads"]), MKL_NUM_THREADS=str(spec["threads"]),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("DPLPAPER_THREADS", None)
    env.pop("GOMP_SPINCOUNT", None)
    if spec["wait"].startswith("spin"):            # e.g. "spin10000": active, but sleep after N spins
        env["GOMP_SPINCOUNT"] = spec["wait"][4:]
    elif spec["wait"] != "default":
        env["OMP_WAIT_POLICY"] = spec["wait"]
    busy = _busy_process() if spec["busy"] else None
    try:
        time.sleep(0.5 if busy else 0)
        r = subprocess.run([sys.executable, "-m", "benchmarks.bench_threads", "--worker", json.dumps(spec)],
                           capture_output=True, text=True, timeout=timeout, cwd=str(ROOT), env=env)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    for line in reversed(r.stdout.strip().splitlines()):
        if line.startswith("{"):
            return {**spec, **json.loads(line)}
    return {**spec, "error": (r.stderr or r.stdout).strip()[-400:]}


def summarize(rows: list[dict]) -> list[dict]:
    """Per workload: the best idle time, and for each configuration its time and its busy slowdown
    (busy seconds / best idle seconds over all configurations of that workload)."""
    out = []
    for w in sorted({r["workload"] for r in rows}):
        ok = [r for r in rows if r["workload"] == w and "error" not in r]
        idle = [r for r in ok if not r["busy"]]
        if not idle:
            continue
        best_idle = min(r["seconds_median"] for r in idle)
        for r in ok:
            out.append({"workload": w, "threads": r["threads"], "wait": r["wait"], "busy": r["busy"],
                        "seconds_median": r["seconds_median"],
                        "relative_to_best_idle": r["seconds_median"] / best_idle})
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--quick", action="store_true", help="1 s per configuration, workloads hbv and gz_step")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "threads.json"))
    a = ap.parse_args(argv)
    if a.worker:
        print(json.dumps(worker(json.loads(a.worker))), flush=True)
        return {}
    from benchmarks.common import machine_info, write_json
    workloads = ["hbv", "gz_step"] if a.quick else a.workloads.split(",")
    rows = []
    for w in workloads:
        for busy in (False, True):
            for threads in (1, 2):
                for wait in ("default", "passive"):
                    spec = {"workload": w, "threads": threads, "wait": wait, "busy": busy,
                            "budget_s": 1.0 if a.quick else 4.0, "min_reps": 2 if a.quick else 3}
                    r = run_child(spec)
                    rows.append(r)
                    print(json.dumps({k: r.get(k) for k in ("workload", "threads", "wait", "busy",
                                                            "seconds_median", "reps", "error")}), flush=True)
    try:
        from dplpaper import threads as policy
        described = policy.describe()
    except ImportError:
        described = None
    summ = summarize(rows)
    pol = described["configured_threads"] if described else 1
    worst = [s for s in summ if s["busy"] and s["threads"] == pol and s["wait"] == "default"]
    checks = []
    if worst:
        w = max(worst, key=lambda s: s["relative_to_best_idle"])
        checks.append({"what": f"busy-machine slowdown at the package policy ({pol} thread), worst workload "
                               f"({w['workload']}) vs its best idle configuration",
                       "value": w["relative_to_best_idle"], "target": 2.5, "lower_is_better": True,
                       "met": w["relative_to_best_idle"] <= 2.5})
    out = {"machine": machine_info(), "results": rows, "summary": summ, "checks": checks,
           "package_policy": described,
           "note": "median seconds per unit of work; busy = one competing single-threaded Python process"}
    write_json(a.out, out)
    return out


if __name__ == "__main__":
    main()
