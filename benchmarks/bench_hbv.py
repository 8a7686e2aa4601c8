"""HBV forward+backward throughput and peak memory: reference loop vs fused C backend vs hydrodl2,
plus the parameter-network (LSTM) vs HBV split of a dPL training step, and the fused kernel on
each x86-64 code path the CPU can run (``isa_variants``: AVX-512, AVX2, baseline SSE2, each built
alone, against the default clones).

Throughput: basin-days per second (sites x days / wall time of one forward + backward pass of
``streamflow.sum()`` through ``HBV(nmul)`` from unit-cube parameters, routing included) for
B in {100, 531} sites, T = 1095 days, nmul in {1, 16}, float32, ``torch.get_num_threads()``
threads; plus the forward-only NumPy path used by SCE-UA. ``seconds_min`` (the least disturbed
repetition) is the headline; ``seconds_median`` shows the spread.

Memory: every (backend, B, nmul) configuration runs in a fresh subprocess; ``peak_rss_mib`` is
that process's peak resident set (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) at the end,
``peak_delta_mib`` the growth of that peak over the value measured just before the first pass
(after imports and input creation) — i.e. what one pass (and its autograd graph) adds on top of
the interpreter, torch and the inputs.

hydrodl2 (the dPL authors' library; non-commercial licence, benchmark-only, never imported by the
package) is timed on the same forcing and unit-cube parameters (as logits: it applies a sigmoid)
at B = 100 by default (``--full``: also B = 531). Its HBV variant differs in details, so only speed
and memory are compared.

LSTM split (``lstm_split``): ``GZ`` (dplpaper.nets: Linear -> LSTM -> Linear -> sigmoid; 4 series
+ 20 attributes in, 14 x 16 parameters out) with hidden 256 and 64 over 1095 days for 100 basins,
then HBV(nmul=16); forward+backward of the whole chain, of the network alone and of HBV alone.

Usage: ``python -m benchmarks.bench_hbv [--full] [--quick] [--out benchmarks/results/hbv.json]``.
Timings come from a shared machine: the load average (``os.getloadavg``) is recorded with them.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import machine_info, write_json  # noqa: E402
from dplpaper.models import hbv_fused  # noqa: E402
from dplpaper.models.hbv import HBV  # noqa: E402

T_DAYS = 1095
TARGETS = {"fused_nmul16_B100_basin_days_per_s": 5e6, "fused_vs_reference_nmul16_B100": 30.0,
           "fused_vs_hydrodl2_nmul16_B100": 30.0, "fused_nmul1_B100_basin_days_per_s": 5e7}


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


def _maxrss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _timed(fn, reps):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def _pass_fn(backend, B, nmul):
    forcing, u = make_inputs(B, nmul)
    if backend in ("torch", "fused"):
        model = HBV(nmul=nmul, backend=backend)

        def once():
            p = u.clone().requires_grad_()
            model(forcing, p)["streamflow"].sum().backward()
        return once
    if backend == "numpy_forward":
        phys = HBV(nmul=nmul).parameter_table.to_physical(u.numpy(), dim=-2).astype(np.float32)
        f = forcing.numpy()
        return lambda: hbv_fused.hbv_forward_numpy(f, phys)
    if backend == "hydrodl2":
        from hydrodl2.models.hbv.hbv import Hbv  # benchmark-only peer; never imported by the package

        model = Hbv(config={"nmul": nmul, "warmup": 0, "routing": True, "dynamic_params": {"Hbv": []}},
                    device=torch.device("cpu"))
        n_phy = len(model.parameter_bounds)
        core = u[:, :n_phy, :].reshape(B, n_phy * nmul)
        route = u[:, -2:, :].mean(-1)
        raw = torch.logit(torch.cat([core, route], 1)).unsqueeze(0).expand(forcing.shape[0], -1, -1).contiguous()

        def once():
            p = raw.clone().requires_grad_()
            model({"x_phy": forcing}, p)["streamflow"].sum().backward()
        return once
    raise ValueError(backend)


def worker(spec):
    """Child process: one configuration -> one JSON line on stdout (``spec["isa"]``: the fused
    kernel's code path, ``$DPLPAPER_HBV_ISA``, set before the library is first built or loaded)."""
    backend, B, nmul, reps = spec["backend"], spec["B"], spec["nmul"], spec["reps"]
    if spec.get("isa"):
        os.environ["DPLPAPER_HBV_ISA"] = spec["isa"]
    torch.manual_seed(0)
    once = _pass_fn(backend, B, nmul)
    base = _maxrss_mib()
    t_first = None
    if spec.get("warmup", True):
        t_first = _timed(once, 1)[0]  # first pass (allocator, compilation of the C library if needed)
    times = _timed(once, reps)
    peak = _maxrss_mib()
    best, med = min(times), statistics.median(times)
    return {"reps": reps, "seconds_min": best, "seconds_median": med, "seconds_first": t_first,
            "basin_days_per_s_best": B * T_DAYS / best, "basin_days_per_s_median": B * T_DAYS / med,
            "peak_rss_mib": peak, "peak_delta_mib": peak - base, "loadavg": list(os.getloadavg())}


def run_child(spec, timeout=600):
    cmd = [sys.executable, "-m", "benchmarks.bench_hbv", "--worker", json.dumps(spec)]
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(ROOT), env=env)
    for line in reversed(r.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"error": (r.stderr or r.stdout).strip()[-400:]}


#: the fused kernel's code paths (``hbv_fused.ISA_FLAGS``) and the CPU flag each needs
ISA_PATHS = (("auto", None), ("avx512", "avx512f"), ("avx2", "avx2"), ("baseline", None))


def isa_variants(B=100, nmul=16, reps=50):
    """Fused forward+backward throughput of each code path the CPU can run: the default build
    (``auto``: AVX-512/AVX2/baseline clones chosen at load time) and each clone built alone, so
    that a CPU without AVX-512 knows what it gets (``relative_to_auto``; same bits on every path)."""
    from benchmarks.common import vector_isa
    flags = set(vector_isa()["cpu_flags"])
    rows = []
    for path, need in ISA_PATHS:
        if need is not None and need not in flags:
            continue
        r = run_child({"backend": "fused", "B": B, "nmul": nmul, "reps": reps, "isa": path})
        rows.append({"isa": path, "B": B, "nmul": nmul, **r})
        print(json.dumps({"isa": path, "basin_days_per_s_best": r.get("basin_days_per_s_best", r.get("error"))}), flush=True)
    auto = next((r for r in rows if r["isa"] == "auto" and "seconds_min" in r), None)
    for r in rows:
        if auto is not None and "seconds_min" in r:
            r["relative_to_auto"] = auto["seconds_min"] / r["seconds_min"]
    return rows


def lstm_split(hidden_sizes=(256, 64), B=100, nmul=16, reps=1):
    """fwd+bwd seconds of GZ(hidden) -> HBV(nmul) on B basins x 1095 days, and of each part alone."""
    from dplpaper.nets import GZ

    forcing, _ = make_inputs(B, nmul)
    g = torch.Generator().manual_seed(1)
    series = torch.cat([forcing, torch.rand(T_DAYS, B, 1, generator=g)], -1)
    attrs = torch.rand(B, 20, generator=g)
    hbv = HBV(nmul=nmul, backend="fused" if hbv_fused.available() else "torch")
    out = []
    for h in hidden_sizes:
        torch.manual_seed(0)
        net = GZ(4, 20, len(hbv.parameter_table), nmul, hidden=h)

        def net_only():
            net.zero_grad()
            net(series, attrs).sum().backward()

        def chain():
            net.zero_grad()
            hbv(forcing, net(series, attrs))["streamflow"].sum().backward()

        with torch.no_grad():
            u = net(series, attrs).detach()

        def hbv_only():
            p = u.clone().requires_grad_()
            hbv(forcing, p)["streamflow"].sum().backward()

        row = {"hidden": h, "B": B, "nmul": nmul, "T_days": T_DAYS,
               "n_weights": sum(p.numel() for p in net.parameters())}
        for name, fn in (("network_s", net_only), ("hbv_s", hbv_only), ("chain_s", chain)):
            if name == "hbv_s":  # cheap: warm up and take the best of 5
                fn()
                row[name] = min(_timed(fn, 5))
            else:  # one LSTM pass takes seconds: the first call is timed too (no warm-up)
                row[name] = min(_timed(fn, reps))
        row["network_share"] = row["network_s"] / (row["network_s"] + row["hbv_s"])
        row["loadavg"] = list(os.getloadavg())
        out.append(row)
        print(json.dumps(row), flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="time hydrodl2 at B=531 too (slow)")
    ap.add_argument("--quick", action="store_true", help="B=100 only, no hydrodl2, no LSTM split")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "hbv.json"))
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))), flush=True)
        return None

    try:
        import hydrodl2  # noqa: F401
        have_hdl2 = not args.quick
        hdl2_version = getattr(hydrodl2, "__version__", "unknown")
    except Exception as e:  # not installed: skip gracefully
        have_hdl2, hdl2_version = False, f"not available ({type(e).__name__})"
    info = machine_info()
    info.update({"fused_available": hbv_fused.available(), "hydrodl2": hdl2_version, "dtype": "float32",
                 "T_days": T_DAYS,
                 "note": ("wall-clock timings on a shared machine; loadavg_* and each row's loadavg give the "
                          "background load. seconds_min is the least disturbed repetition. Memory: one fresh "
                          "process per configuration; peak_delta_mib = growth of ru_maxrss over the value "
                          "after imports and inputs.")})
    print(json.dumps(info, indent=1), flush=True)
    hbv_fused.available()  # compile once here, not in the children
    results = []
    for B in ([100] if args.quick else [100, 531]):
        for nmul in (1, 16):
            row = {"B": B, "nmul": nmul}
            plan = [("reference", "torch", 1 if B * nmul > 2000 else 2)]
            if hbv_fused.available():
                plan += [("fused", "fused", 100), ("fused_forward_numpy", "numpy_forward", 60)]
            if have_hdl2 and (B == 100 or args.full):
                plan.append(("hydrodl2", "hydrodl2", 1))
            for key, backend, reps in plan:  # slow ones (hydrodl2; reference at B*nmul > 2000): one pass, no warm-up
                slow = backend == "hydrodl2" or (backend == "torch" and B * nmul > 2000)
                row[key] = run_child({"backend": backend, "B": B, "nmul": nmul, "reps": reps, "warmup": not slow})
            ok = lambda k: k in row and "seconds_min" in row[k]  # noqa: E731
            if ok("fused") and ok("reference"):
                row["speedup_fused_vs_reference"] = row["reference"]["seconds_min"] / row["fused"]["seconds_min"]
            if ok("fused") and ok("hydrodl2"):
                row["speedup_fused_vs_hydrodl2"] = row["hydrodl2"]["seconds_min"] / row["fused"]["seconds_min"]
            if ok("reference") and ok("hydrodl2"):
                row["speedup_reference_vs_hydrodl2"] = row["hydrodl2"]["seconds_min"] / row["reference"]["seconds_min"]
            results.append(row)
            brief = {k: (v.get("basin_days_per_s_best", v.get("error")) if isinstance(v, dict) else v)
                     for k, v in row.items()}
            print(json.dumps(brief), flush=True)
    isa_rows = [] if args.quick else isa_variants()
    split = [] if args.quick else lstm_split()
    info["loadavg_end"] = list(os.getloadavg())
    out = {"machine": info, "results": results, "isa_variants": isa_rows, "lstm_split": split, "targets": TARGETS,
           "checks": checks(results)}
    write_json(args.out, out)
    print(f"wrote {args.out}")
    return out


def checks(results):
    """Targets met / missed, from the numbers (None when a number is missing)."""
    def get(B, nmul, *keys):
        for r in results:
            if r["B"] == B and r["nmul"] == nmul:
                v = r
                for k in keys:
                    if not isinstance(v, dict) or k not in v:
                        return None
                    v = v[k]
                return v
        return None

    rows = [
        ("HBV fwd+bwd nmul=16 B=100 (basin-days/s)", get(100, 16, "fused", "basin_days_per_s_best"),
         TARGETS["fused_nmul16_B100_basin_days_per_s"]),
        ("fused / reference loop, nmul=16 B=100 (x)", get(100, 16, "speedup_fused_vs_reference"),
         TARGETS["fused_vs_reference_nmul16_B100"]),
        ("fused / hydrodl2, nmul=16 B=100 (x)", get(100, 16, "speedup_fused_vs_hydrodl2"),
         TARGETS["fused_vs_hydrodl2_nmul16_B100"]),
        ("HBV fwd+bwd nmul=1 B=100 (basin-days/s)", get(100, 1, "fused", "basin_days_per_s_best"),
         TARGETS["fused_nmul1_B100_basin_days_per_s"]),
    ]
    return [{"what": w, "value": v, "target": t, "met": None if v is None else bool(v >= t)} for w, v, t in rows]


if __name__ == "__main__":
    main()
