"""HBV forward+backward throughput: reference PyTorch loop vs fused C backend (vs hydrodl2's HBV).

Measures basin-days per second (sites x days / wall time of one forward + backward pass of
``streamflow.sum()``) for B in {100, 531} sites, T = 1095 days, nmul in {1, 16}, float32,
with ``torch.get_num_threads()`` threads (default: all cores), plus the forward-only NumPy
path used by SCE-UA, and the peak resident-memory increase during the timed repetitions
(sampled from /proc/self/statm by a background thread; Linux only). The timed repetitions follow
an untimed warm-up call, so memory the allocator kept from the warm-up is not counted: the
figure is growth beyond one pass (about 0 means no growth), not the footprint of one pass.

hydrodl2 (the dPL authors' library; non-commercial licence, benchmark-only) is timed on the
same forcing and the same unit-cube parameters (passed as logits, since it applies a sigmoid)
when it is installed; by default only at B = 100 because one pass of its B = 100, nmul = 16
case takes tens of seconds; ``--full`` times it everywhere. Its HBV variant differs in details
(near-zero clamps, parameter order), so only speed is compared.

Usage: ``python benchmarks/bench_hbv.py [--full] [--quick] [--out benchmarks/results/hbv.json]``.
Writes the numbers with machine information (CPU, cores, torch version, date, load average:
on a shared machine, other processes disturb the timings — the load average says how much).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dplpaper.models import hbv_fused  # noqa: E402
from dplpaper.models.hbv import HBV  # noqa: E402

T_DAYS = 1095


class PeakRSS:
    """Context manager: peak increase of resident memory (MiB) while the block runs."""

    def __init__(self, interval=0.002):
        self.interval = interval
        self.page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def _rss(self):
        try:
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1]) * self.page
        except OSError:
            return 0

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(self.interval)

    def __enter__(self):
        self.base = self._rss()
        self.peak = self.base
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)
        self._th.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._th.join()
        self.peak = max(self.peak, self._rss())
        self.mib = (self.peak - self.base) / 2 ** 20


def make_inputs(B, nmul, seed=0):
    g = torch.Generator().manual_seed(seed)
    T = T_DAYS
    day = torch.arange(T, dtype=torch.float32)[:, None]
    P = torch.rand(T, B, generator=g) * 20 * (torch.rand(T, B, generator=g) < 0.35)
    Tm = 10 * torch.sin(2 * np.pi * day / 365) + 3 * torch.randn(T, B, generator=g)
    E = torch.clamp(2 + 2 * torch.sin(2 * np.pi * day / 365) + 0.3 * torch.randn(T, B, generator=g), min=0)
    forcing = torch.stack([P, Tm, E], -1)
    u = 0.05 + 0.9 * torch.rand(B, 14, nmul, generator=g)
    return forcing, u


def time_fwd_bwd(fn, reps):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def run_ours(backend, forcing, u, nmul, reps):
    model = HBV(nmul=nmul, backend=backend)

    def once():
        p = u.clone().requires_grad_()
        model(forcing, p)["streamflow"].sum().backward()
        return p.grad

    once()  # warm-up (compilation, allocator)
    with PeakRSS() as mem:
        times = time_fwd_bwd(once, reps)
    return times, mem.mib


def run_numpy_forward(forcing, u, nmul, reps):
    tab = HBV(nmul=nmul).parameter_table
    phys = tab.to_physical(u.numpy(), dim=-2).astype(np.float32)
    f = forcing.numpy()
    hbv_fused.hbv_forward_numpy(f, phys)
    return time_fwd_bwd(lambda: hbv_fused.hbv_forward_numpy(f, phys), reps)


def run_hydrodl2(forcing, u, nmul, reps):
    from hydrodl2.models.hbv.hbv import Hbv  # benchmark-only peer; never imported by the package

    model = Hbv(config={"nmul": nmul, "warmup": 0, "routing": True, "dynamic_params": {"Hbv": []}},
                device=torch.device("cpu"))
    n_phy = len(model.parameter_bounds)
    B = forcing.shape[1]
    # same unit-cube values; hydrodl2 applies a sigmoid, so pass logits; [T, B, n_phy*nmul + 2]
    core = u[:, :n_phy, :].reshape(B, n_phy * nmul)
    route = u[:, -2:, :].mean(-1)
    raw = torch.logit(torch.cat([core, route], 1)).unsqueeze(0).expand(forcing.shape[0], -1, -1).contiguous()

    def once():
        p = raw.clone().requires_grad_()
        model({"x_phy": forcing}, p)["streamflow"].sum().backward()

    with PeakRSS() as mem:
        times = time_fwd_bwd(once, reps)
    return times, mem.mib


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def summarize(times, B):
    best = min(times)
    med = statistics.median(times)
    return {"reps": len(times), "seconds_min": best, "seconds_median": med,
            "basin_days_per_s_best": B * T_DAYS / best, "basin_days_per_s_median": B * T_DAYS / med}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="time hydrodl2 at B=531 too (slow)")
    ap.add_argument("--quick", action="store_true", help="B=100 only, no hydrodl2")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "hbv.json"))
    args = ap.parse_args(argv)

    try:
        import hydrodl2  # noqa: F401
        have_hdl2 = not args.quick
        hdl2_version = getattr(hydrodl2, "__version__", "unknown")
    except Exception as e:  # not installed: skip gracefully
        have_hdl2, hdl2_version = False, f"not available ({type(e).__name__})"

    info = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
        "platform": platform.platform(), "fused_available": hbv_fused.available(),
        "hydrodl2": hdl2_version,
        "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "dtype": "float32", "T_days": T_DAYS,
        "note": ("wall-clock timings on a shared machine; see loadavg for the background load. "
                 "peak_rss_mib = RSS growth during the timed reps, after an untimed warm-up call"),
    }
    print(json.dumps(info, indent=1))
    results = []
    sizes = [100] if args.quick else [100, 531]
    for B in sizes:
        for nmul in (1, 16):
            forcing, u = make_inputs(B, nmul)
            row = {"B": B, "nmul": nmul}
            ref_reps = 1 if B * nmul > 2000 else 2
            t, mem = run_ours("torch", forcing, u, nmul, ref_reps)
            row["reference"] = {**summarize(t, B), "peak_rss_mib": mem}
            if hbv_fused.available():
                t, mem = run_ours("fused", forcing, u, nmul, 15)
                row["fused"] = {**summarize(t, B), "peak_rss_mib": mem}
                row["fused_forward_numpy"] = summarize(run_numpy_forward(forcing, u, nmul, 15), B)
                row["speedup_fused_vs_reference"] = (row["reference"]["seconds_min"] / row["fused"]["seconds_min"])
            if have_hdl2 and (B == 100 or args.full):
                try:
                    t, mem = run_hydrodl2(forcing, u, nmul, 1)
                    row["hydrodl2"] = {**summarize(t, B), "peak_rss_mib": mem}
                    if "fused" in row:
                        row["speedup_fused_vs_hydrodl2"] = row["hydrodl2"]["seconds_min"] / row["fused"]["seconds_min"]
                    row["speedup_reference_vs_hydrodl2"] = (row["hydrodl2"]["seconds_min"]
                                                            / row["reference"]["seconds_min"])
                except Exception as e:  # peer failed: record why, keep going
                    row["hydrodl2"] = {"error": f"{type(e).__name__}: {e}"[:300]}
            results.append(row)
            brief = {k: (v.get("basin_days_per_s_best") if isinstance(v, dict) else v) for k, v in row.items()}
            print(json.dumps(brief), flush=True)
    info["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    out = {"machine": info, "results": results,
           "targets": {"fused_nmul16_B100_basin_days_per_s": 5e6, "fused_vs_reference_nmul16": 30,
                       "fused_nmul1_basin_days_per_s": 5e7}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
