"""Tables for the performance page from the benchmark results (``benchmarks/results/*.json``).

Each function takes the parsed JSON of one benchmark (``dplpaper.results.benchmark_results``) and
returns a :class:`pandas.DataFrame` ready to show; ``None`` in gives an empty frame.
"""
from __future__ import annotations

import pandas as pd

__all__ = ["thread_table", "thread_policy_check", "book_runs", "idle_partner", "book_notebooks",
           "case1_cost_table", "case1_cost_ratios", "case1_profile_table", "case1_gap_table",
           "hbv_isa_table"]


def thread_table(threads: dict | None) -> pd.DataFrame:
    """``bench_threads``: per workload and configuration (idle/busy, threads, wait policy) the median
    seconds per unit of work and the time over the workload's best idle configuration (the
    benchmark's own ``summary``, :func:`benchmarks.bench_threads.summarize`)."""
    if not threads:
        return pd.DataFrame()
    df = pd.DataFrame([{"workload": r["workload"], "machine": "busy" if r["busy"] else "idle",
                        "threads": r["threads"], "wait": r["wait"], "seconds": r["seconds_median"],
                        "x best idle": r["relative_to_best_idle"]} for r in threads["summary"]])
    return df.sort_values(["workload", "machine", "threads", "wait"]).reset_index(drop=True)


def thread_policy_check(threads: dict | None, policy_threads: int = 1, wait: str = "default") -> pd.DataFrame:
    """Per workload, for the package's policy (``policy_threads``, OpenMP ``wait``) and for two
    threads: seconds idle, seconds busy, and busy over the best idle time of any configuration."""
    df = thread_table(threads)
    if df.empty:
        return df
    out = []
    for w, g in df[df.wait == wait].groupby("workload"):
        row = {"workload": w}
        for n in sorted({policy_threads, 2}):
            s = g[g.threads == n].set_index("machine")
            if {"idle", "busy"} <= set(s.index):
                row[f"{n} thread(s) idle s"] = s.loc["idle", "seconds"]
                row[f"{n} thread(s) busy s"] = s.loc["busy", "seconds"]
                row[f"{n} thread(s) busy x best idle"] = s.loc["busy", "x best idle"]
        out.append(row)
    return pd.DataFrame(out)


def book_runs(book: dict | None) -> pd.DataFrame:
    """``bench_book``: one row per timed fresh-clone run (what, jobs x threads, idle/busy, commit,
    minutes, exit code, load average at the start)."""
    if not book:
        return pd.DataFrame()
    rows = [{"run": r["label"], "what": r["what"], "jobs": r["jobs"], "threads": r["threads"],
             "machine": "busy" if r["busy"] else "idle", "commit": r["commit"], "minutes": r["wall_s"] / 60,
             "exit": r["returncode"], "load at start": r["loadavg_start"][0], "cpu": r["machine"]["cpu"]}
            for r in book["runs"]]
    return pd.DataFrame(rows)


def idle_partner(runs: list[dict], run: dict) -> dict | None:
    """The idle run of ``runs`` with the same kind, jobs and threads as the busy ``run`` (the first;
    ``None`` if there is none)."""
    for r in runs:
        if not r["busy"] and (r["what"], r["jobs"], r["threads"]) == (run["what"], run["jobs"], run["threads"]):
            return r
    return None


def book_notebooks(book: dict | None) -> pd.DataFrame:
    """``bench_book``: seconds per notebook (rows) in each ``reproduce`` run (columns), and the
    busy/idle ratio where a busy run has an idle partner with the same jobs and threads."""
    if not book:
        return pd.DataFrame()
    cols = {}
    for r in book["runs"]:
        if r["what"] == "reproduce" and "notebooks" in r:
            cols[r["label"]] = {n["notebook"]: n["seconds"] for n in r["notebooks"]}
    df = pd.DataFrame(cols)
    for r in book["runs"]:
        if r["what"] != "reproduce" or not r["busy"] or r["label"] not in df:
            continue
        idle = idle_partner(book["runs"], r)
        if idle is not None and idle["label"] in df:
            df[f"{r['label']} / {idle['label']}"] = df[r["label"]] / df[idle["label"]]
    return df.sort_index()


def case1_cost_table(cost: dict | None) -> pd.DataFrame:
    """``bench_case1_cost``: per variant, density and method, the cost to the RMSE threshold in
    epochs (forward runs per training cell), site-forward-runs and wall seconds side by side, the
    wall time per site-forward-run (microseconds) and the ending test RMSE (m3/m3)."""
    if not cost:
        return pd.DataFrame()
    rows = [{"variant": r["variant"], "density": r["density"], "method": r["method"], "threshold": r["threshold"],
             "training cells": r["n_train"], "epochs to threshold": r["epochs_to_threshold"],
             "site runs to threshold": r["site_forward_runs_to_threshold"],
             "wall s to threshold": r["wall_to_threshold_s"], "us per site run": r.get("us_per_site_run"),
             "ending test RMSE": r["ending_test_rmse"]} for r in cost["rows"]]
    return pd.DataFrame(rows)


def case1_cost_ratios(cost: dict | None) -> pd.DataFrame:
    """SCE-UA's cost over dPL's to the threshold (site-forward-runs and wall time; > 1: dPL cheaper;
    empty where a method did not reach the threshold within its budget)."""
    if not cost:
        return pd.DataFrame()
    return pd.DataFrame(cost.get("ratios", [])).rename(columns={
        "runs_ratio_sceua_over_dpl": "SCE-UA / dPL site runs", "wall_ratio_sceua_over_dpl": "SCE-UA / dPL wall time"})


def case1_profile_table(cost: dict | None) -> pd.DataFrame:
    """Where the time of one site-forward-run goes: a dPL training step (gZ forward, surrogate
    forward, backward + Adam, per cell of the mini-batch) vs one batched SCE-UA objective call."""
    if not cost or not cost.get("profile"):
        return pd.DataFrame()
    rows = []
    for p in cost["profile"]:
        b = p["dpl_batch_cells"]
        rows.append({"variant": p["variant"], "density": p["density"],
                     **{f"dPL {k.replace('_', ' ')} us/run": 1e6 * v / b for k, v in p["dpl_split_s"].items()},
                     "dPL us/run": p["dpl_us_per_site_run"], "SCE-UA us/run": p["sceua_us_per_site_run"],
                     "dPL / SCE-UA per run": p["cost_ratio_per_run_dpl_over_sceua"]})
    return pd.DataFrame(rows)


def case1_gap_table(cost: dict | None) -> pd.DataFrame:
    """Who reaches the Case 1 threshold first in wall time, and why (``bench_case1_cost.gaps``):
    SCE-UA / dPL wall time = epochs ratio / per-run cost ratio; dPL is ahead where its epochs
    advantage exceeds the break-even ratio (its per-run cost). Best test RMSEs (m3/m3) show how far
    a method that missed the threshold stayed above it; "dPL first down to RMSE": the tightest
    threshold from which dPL reaches every looser one first (``bench_case1_cost.crossover``);
    "SCE-UA initial population": its random candidates per cell before any evolution, and the test
    RMSE they already give (at or below the threshold: random sampling alone reached it)."""
    if not cost or not cost.get("gaps"):
        return pd.DataFrame()
    df = pd.DataFrame(cost["gaps"])
    df["ahead"] = [a if isinstance(a, str) else "neither reached" for a in df["ahead"]]
    first = [fp if isinstance(fp, dict) else {} for fp in df.pop("sceua_first_point")] if "sceua_first_point" in df else []
    if first:
        df["SCE-UA initial population (epochs)"] = [fp.get("epoch") for fp in first]
        df["SCE-UA initial population RMSE"] = [fp.get("test_rmse") for fp in first]
    return df.rename(columns={
        "ahead": "ahead in wall time", "wall_ratio_sceua_over_dpl": "SCE-UA / dPL wall time",
        "epochs_ratio_sceua_over_dpl": "SCE-UA / dPL epochs", "cost_ratio_per_run_dpl_over_sceua": "dPL / SCE-UA per run",
        "dpl_best_rmse": "dPL best RMSE",
        "sceua_best_rmse": "SCE-UA best RMSE", "dpl_ahead_down_to": "dPL first down to RMSE"}).drop(
        columns=["dpl_reached", "sceua_reached", "break_even_epochs_ratio"])


def hbv_isa_table(hbv: dict | None) -> pd.DataFrame:
    """``bench_hbv.isa_variants``: fused HBV forward+backward on each x86-64 code path the CPU
    can run (the default clones, and AVX-512, AVX2, baseline SSE2 each built alone): best ms per
    pass, basin-days per second and throughput relative to the default build."""
    rows = [{"code path": r["isa"], "sites": r["B"], "nmul": r["nmul"], "ms (best)": 1e3 * r["seconds_min"],
             "basin-days/s": r["basin_days_per_s_best"], "relative to default": r.get("relative_to_auto")}
            for r in (hbv or {}).get("isa_variants", []) if "seconds_min" in r]
    return pd.DataFrame(rows)
