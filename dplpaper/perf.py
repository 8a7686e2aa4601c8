"""Tables for the performance page from the benchmark results (``benchmarks/results/*.json``).

Each function takes the parsed JSON of one benchmark (``dplpaper.results.benchmark_results``) and
returns a :class:`pandas.DataFrame` ready to show; ``None`` in gives an empty frame. The Case 1
cost reading of learning curves (:func:`first_wall`, :func:`crossover`) lives here too, shared by
``benchmarks/bench_case1_cost.py`` and :func:`archived_cost_table` (archived full runs).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["thread_table", "thread_policy_check", "book_runs", "idle_partner", "book_notebooks",
           "case1_cost_table", "case1_cost_ratios", "case1_profile_table", "case1_gap_table",
           "hbv_isa_table", "first_to_reach", "first_wall", "crossover", "archived_cost_table"]


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


def first_to_reach(dpl_s: float | None, sceua_s: float | None) -> str | None:
    """``"dPL"`` or ``"SCE-UA"``: the method that reached a threshold first, given each one's wall
    seconds to it (None: not reached); None when neither did."""
    if dpl_s is None and sceua_s is None:
        return None
    return "dPL" if sceua_s is None or (dpl_s is not None and dpl_s < sceua_s) else "SCE-UA"


def first_wall(curve: dict, threshold: float) -> float | None:
    """Wall seconds of the first point of a learning curve (``curves`` entry: lists ``wall_time_s``
    and ``test_rmse``) at or below ``threshold``; None if never reached."""
    for w, r in zip(curve["wall_time_s"], curve["test_rmse"]):
        if r <= threshold:
            return float(w)
    return None


def crossover(dpl: dict, sce: dict, step: float = 0.001) -> dict:
    """Who reaches each threshold first in wall time, over a grid of thresholds (m3/m3, ``step``
    apart) from below the methods' best test RMSE up to just below the untrained network's RMSE
    (the curves' first point at zero wall time; above it dPL would win at no cost).

    Returns ``verdicts`` ({threshold: "dPL" | "SCE-UA"}, thresholds neither reached left out) and
    ``dpl_ahead_down_to``: the tightest threshold from which dPL is first at every looser one on
    the grid (None if SCE-UA is first already at the loosest): the paper's Fig. 1e-f read on a
    time axis, as one number."""
    start = [c["test_rmse"][0] for c in (dpl, sce) if c["wall_time_s"] and c["wall_time_s"][0] == 0.0]
    hi = min(start) if start else max(max(dpl["test_rmse"]), max(sce["test_rmse"]))
    lo = min(min(dpl["test_rmse"]), min(sce["test_rmse"]))
    grid = np.round(np.arange(np.floor(lo / step) * step, hi, step), 6)
    verdicts = {}
    for t in grid[grid < hi]:
        who = first_to_reach(first_wall(dpl, t), first_wall(sce, t))
        if who is not None:
            verdicts[float(t)] = who
    down_to = None
    for t in sorted(verdicts, reverse=True):
        if verdicts[t] != "dPL":
            break
        down_to = t
    return {"verdicts": verdicts, "dpl_ahead_down_to": down_to}


def archived_cost_table(curves: pd.DataFrame | None, threshold: float = 0.05) -> pd.DataFrame:
    """The cost reading of archived full Case 1 runs (``case1_archive(...)["curves"]``: columns seed,
    method, density, epoch, wall_time_s, test_rmse): per seed and density, dPL (gZ) and SCE-UA wall
    seconds to ``threshold`` (NaN: not reached), who was first, the tightest threshold dPL reaches
    first at every looser one (:func:`crossover`), and SCE-UA's first point (its random initial
    population: epochs and test RMSE). Both methods of a seed ran in one process, one after the
    other; seeds ran side by side, so compare within a row, not across rows."""
    if curves is None or curves.empty:
        return pd.DataFrame()
    rows = []
    for (seed, dens), g in curves.groupby(["seed", "density"], sort=True):
        cur = {m: {k: list(c[k]) for k in ("epoch", "wall_time_s", "test_rmse")}
               for m, c in g.sort_values("epoch").groupby("method")}
        if "gz" not in cur or "sceua" not in cur:
            continue
        wd, ws = first_wall(cur["gz"], threshold), first_wall(cur["sceua"], threshold)
        first = first_to_reach(wd, ws)
        rows.append({"seed": int(seed), "density": dens, "dPL s to threshold": wd, "SCE-UA s to threshold": ws,
                     "first": first or "neither", "dPL first down to RMSE": crossover(cur["gz"], cur["sceua"])["dpl_ahead_down_to"],
                     "SCE-UA initial population (epochs)": cur["sceua"]["epoch"][0],
                     "SCE-UA initial population RMSE": cur["sceua"]["test_rmse"][0]})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    spacing = df["density"].str.extract(r"(\d+)$")[0].astype(float)      # s16 (sparsest) first, as in the paper
    return df.assign(_k=-spacing).sort_values(["seed", "_k"], kind="stable").drop(columns="_k").reset_index(drop=True)
