"""The VIC-style model's time loop: compiled C against the NumPy reference.

Workload: the per-basin SCE-UA of Case 2's VIC-style model and the surrogate's training set run
the model on many basins x parameter sets over years; here ``sites`` columns x ``days`` days
(synthetic forcing with snow, 3-layer soils from random textures), forward only, float64.
Reports seconds and million basin-days per second for each backend, the speed-up, and whether
the two backends agree (max absolute difference over all outputs). One thread (the C loop is
serial; NumPy's element-wise ops are too). Usage: ``python -m benchmarks.bench_vicwb [--quick]``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import machine_info, write_json  # noqa: E402


def _case(T: int, S: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    precip = rng.gamma(0.5, 8.0, (T, S)) * (rng.random((T, S)) < 0.4)
    temp = 8 + 14 * np.sin(np.arange(T) / 58.0)[:, None] + rng.normal(0, 4, (T, S))
    pet = rng.uniform(0, 6, (T, S))
    soil = {"sand": rng.uniform(5, 55, S), "clay": rng.uniform(5, 40, S)}
    return np.stack([precip, temp, pet], -1), rng.random((S, 5)), soil


def bench(T: int, S: int, reps: int) -> dict:
    from dplpaper.models import vicwb_c
    from dplpaper.models.vicwb import VICStyleModel

    f, p, soil = _case(T, S)
    row = {"days": T, "sites": S, "c_available": vicwb_c.available()}
    outs = {}
    for backend in ("numpy", "c"):
        if backend == "c" and not vicwb_c.available():
            continue
        m = VICStyleModel(backend=backend)
        times = []
        for r in range(reps + (1 if backend == "c" else 0)):   # C: first call builds/loads the library
            t0 = time.perf_counter()
            outs[backend] = m.run(f, p, warmup=0, soil_properties=soil)
            times.append(time.perf_counter() - t0)
        best = min(times[1:] if backend == "c" else times)
        row[f"{backend}_s"] = best
        row[f"{backend}_mbasin_days_per_s"] = T * S / best / 1e6
    if "c" in outs:
        row["speedup_c_vs_numpy"] = row["numpy_s"] / row["c_s"]
        row["max_abs_diff"] = max(float(np.abs(outs["c"][k] - outs["numpy"][k]).max()) for k in outs["numpy"])
    return row


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "vicwb.json"))
    a = ap.parse_args(argv)
    sizes = [(730, 100)] if a.quick else [(3650, 100), (3650, 1000)]
    rows = [bench(T, S, 2 if a.quick else 3) for T, S in sizes]
    for r in rows:
        print(r, flush=True)
    checks = [{"what": f"VIC-style C loop speed-up over NumPy ({r['days']} days x {r['sites']} sites)",
               "value": r.get("speedup_c_vs_numpy"), "target": 10.0, "met": (r.get("speedup_c_vs_numpy") or 0) >= 10}
              for r in rows]
    out = {"machine": machine_info(), "results": rows, "checks": checks,
           "note": "VIC-style model forward, float64, one thread; C and NumPy must agree (max_abs_diff)"}
    write_json(a.out, out)
    return out


if __name__ == "__main__":
    main()
