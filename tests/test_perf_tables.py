"""Performance-page tables (dplpaper/perf.py) and the fresh-clone book checks (benchmarks/bench_book.py)."""
import json
import sys
from pathlib import Path

import pytest

from dplpaper import perf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import bench_book, bench_threads  # noqa: E402


def _thr(workload, threads, busy, s, wait="default"):
    return {"workload": workload, "threads": threads, "wait": wait, "busy": busy, "seconds_median": s}


def test_thread_tables_relative_to_best_idle():
    results = [_thr("hbv", 1, False, 0.04), _thr("hbv", 2, False, 0.02), _thr("hbv", 1, True, 0.05),
               _thr("hbv", 2, True, 0.08), {"workload": "hbv", "threads": 2, "wait": "passive", "busy": True,
                                             "error": "boom"}]
    d = {"results": results, "summary": bench_threads.summarize(results)}
    t = perf.thread_table(d)
    assert len(t) == 4                                           # the failed configuration is left out
    pol = perf.thread_policy_check(d).iloc[0]
    assert pol["1 thread(s) busy x best idle"] == pytest.approx(2.5)     # 0.05 / best idle 0.02
    assert pol["2 thread(s) busy x best idle"] == pytest.approx(4.0)
    assert perf.thread_table(None).empty and perf.book_runs(None).empty and perf.case1_cost_table(None).empty


def _run(label, busy, wall, nbs, rc=0):
    return {"label": label, "what": "reproduce", "jobs": 2, "threads": 1, "busy": busy, "commit": "abc",
            "returncode": rc, "wall_s": wall, "loadavg_start": [0.1], "loadavg_end": [0.2],
            "machine": {"cpu": "x"}, "notebooks": [{"notebook": k, "seconds": v} for k, v in nbs.items()]}


def test_book_checks_and_ratios(tmp_path):
    out = tmp_path / "book.json"
    bench_book.merge(_run("idle", False, 800, {"a.ipynb": 10, "b.ipynb": 100}), out)
    data = bench_book.merge(_run("busy", True, 1500, {"a.ipynb": 30, "b.ipynb": 120}), out)
    checks = {c["what"].split(",")[0]: c for c in data["checks"]}
    assert checks["fresh-clone quick book"]["met"] is True
    worst = [c for c in data["checks"] if c["what"].startswith("busy-machine")][0]
    assert worst["value"] == pytest.approx(3.0) and worst["met"] is False and "a.ipynb" in worst["what"]
    data = bench_book.merge(_run("idle", False, 1000, {"a.ipynb": 10, "b.ipynb": 100}), out)   # replaces by label
    assert [r["label"] for r in data["runs"]] == ["busy", "idle"]
    assert [c["met"] for c in data["checks"] if c["what"].startswith("fresh")] == [False]
    nb = perf.book_notebooks(json.loads(out.read_text()))
    assert nb.loc["a.ipynb", "busy / idle"] == pytest.approx(3.0)


def test_book_test_commands_come_from_the_makefile():
    cmds = bench_book.test_commands("PY", 2)
    assert cmds[0][:3] == ["PY", "-m", "pytest"] and "-n" in cmds[0] and cmds[0][cmds[0].index("-n") + 1] == "2"
    assert any("90_paper_vs_package" in c for c in cmds[-1])        # the results page runs last, alone


def test_case1_profile_table_per_run():
    cost = {"profile": [{"variant": "twin", "density": "s8", "dpl_batch_cells": 50,
                         "dpl_split_s": {"gz_forward": 0.05, "surrogate_forward": 0.05, "backward_and_step": 0.1},
                         "dpl_us_per_site_run": 4000.0, "sceua_us_per_site_run": 500.0,
                         "cost_ratio_per_run_dpl_over_sceua": 8.0}]}
    row = perf.case1_profile_table(cost).iloc[0]
    assert row["dPL gz forward us/run"] == pytest.approx(1000.0)
    assert row["dPL / SCE-UA per run"] == 8.0
