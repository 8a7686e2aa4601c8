"""Where a dPL training step spends its time (Case 2 sizes): network vs HBV, static vs dynamic.

One training iteration of Case 2's full configuration: 100 basins, a window of 365 + 365 warm-up
days, HBV with nmul = 16 (routing on), loss = MSE on the last 365 days, forward + backward:

* ``static``: gA (MLP 27 -> 256 -> 256 -> 15 x 16) + HBV (parameters ``[site, n, nmul]``);
* ``dynamic_full``: GDynamic (LSTM 64 over forcing + attributes -> BETA, BETAET daily; MLP ->
  the rest) handing HBV the full ``[time, site, n, nmul]`` tensor, LSTM backward over all 730 days
  (the implementation before ``DynamicParams``);
* ``dynamic_compact``: the same network with ``compact=True, no_grad_days=365`` (the package's
  configuration): HBV's fused kernel gets the two daily rows apart from the static ones and the
  LSTM's backward stops at the end of the warm-up.

For each: seconds per iteration (min and median over repetitions) and the split into network
forward, HBV forward (+ routing) and the backward pass of both. Threads: ``torch.get_num_threads()``
(set ``OMP_NUM_THREADS``). Usage: ``python -m benchmarks.bench_dpl_step [--reps N] [--out PATH]``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import machine_info, write_json  # noqa: E402


def _inputs(T=730, B=100, seed=0):
    g = torch.Generator().manual_seed(seed)
    P = torch.rand(T, B, generator=g) * 12 * (torch.rand(T, B, generator=g) < 0.4)
    day = torch.arange(T, dtype=torch.float32)[:, None]
    Tm = 10 * torch.sin(2 * torch.pi * day / 365) + 5 + 3 * torch.randn(T, B, generator=g)
    E = torch.clamp(2 + 2 * torch.sin(2 * torch.pi * day / 365), min=0) + 0 * Tm
    forcing = torch.stack([P, Tm, E], -1)
    series = (forcing - forcing.mean((0, 1))) / forcing.std((0, 1))
    return forcing, series, torch.randn(B, 27, generator=g), torch.rand(T - 365, B, generator=g)


def _model(kind: str):
    from dplpaper.models.hbv import HBV
    from dplpaper.nets import GA, GDynamic
    torch.manual_seed(0)
    use_betaet = kind != "static"
    hbv = HBV(nmul=16, use_betaet=use_betaet)
    n = hbv.n_params
    if kind == "static":
        return GA(27, n, 16, hidden=256, n_layers=2), hbv
    rows = [hbv.parameter_table.index("BETA"), hbv.parameter_table.index("BETAET")]
    compact = kind == "dynamic_compact"
    net = GDynamic(3, 27, n, 16, dynamic=rows, hidden=64, static_hidden=256, static_layers=2,
                   compact=compact, no_grad_days=365 if compact else 0)
    return net, hbv


def bench(kind: str, reps: int = 5) -> dict:
    forcing, series, attrs, obs = _inputs()
    net, hbv = _model(kind)
    parts = {"network_forward": [], "hbv_forward": [], "backward": [], "total": []}
    for r in range(reps + 1):
        net.zero_grad()
        t0 = time.perf_counter()
        p = net(attrs) if kind == "static" else net(series, attrs)
        t1 = time.perf_counter()
        q = hbv(forcing, p, warmup=365)["streamflow"]
        t2 = time.perf_counter()
        ((q - obs) ** 2).mean().backward()
        t3 = time.perf_counter()
        if r == 0:
            continue  # warm-up (kernel compilation, allocator)
        for k, v in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
            parts[k].append(v)
    return {"kind": kind, "reps": reps,
            **{f"{k}_s_min": min(v) for k, v in parts.items()},
            **{f"{k}_s_median": statistics.median(v) for k, v in parts.items()}}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="2 repetitions")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dpl_step.json"))
    a = ap.parse_args(argv)
    reps = 2 if a.quick else a.reps
    rows = [bench(k, reps) for k in ("static", "dynamic_full", "dynamic_compact")]
    for r in rows:
        print(f"{r['kind']:16s} {r['total_s_min']:.3f} s/iteration (network fwd {r['network_forward_s_min']:.3f}, "
              f"HBV fwd {r['hbv_forward_s_min']:.3f}, backward {r['backward_s_min']:.3f})", flush=True)
    by = {r["kind"]: r for r in rows}
    out = {"machine": machine_info(), "results": rows,
           "speedup_compact_vs_full": by["dynamic_full"]["total_s_min"] / by["dynamic_compact"]["total_s_min"],
           "note": "one Case 2 training iteration (100 basins, 365 + 365 days, nmul 16), forward + backward"}
    write_json(a.out, out)
    return out


if __name__ == "__main__":
    main()
