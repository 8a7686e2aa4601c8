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


def _cost_row(variant, density, method, e, w, us, best):
    return {"variant": variant, "density": density, "method": method, "threshold": 0.05, "epochs_to_threshold": e,
            "wall_to_threshold_s": w, "us_per_site_run": us, "best_test_rmse": best}


def test_case1_gaps_factor_wall_time_into_epochs_and_cost():
    from benchmarks import bench_case1_cost as bc
    rows = [_cost_row("twin", "s8", "gz", 2.0, 1.0, 1500.0, 0.02), _cost_row("twin", "s8", "sceua", 20.0, 2.5, 500.0, 0.02),
            _cost_row("twin", "s4", "gz", 6.0, 3.0, 1500.0, 0.02), _cost_row("twin", "s4", "sceua", 12.0, 1.5, 500.0, 0.02),
            _cost_row("real", "s16", "gz", None, None, 1500.0, 0.056), _cost_row("real", "s16", "sceua", None, None, 500.0, 0.055),
            _cost_row("real", "s8", "gz", None, None, 1500.0, 0.052), _cost_row("real", "s8", "sceua", 77.0, 7.0, 500.0, 0.047)]
    g = {(r["variant"], r["density"]): r for r in bc.gaps(rows)}
    assert g[("twin", "s8")]["ahead"] == "dPL" and g[("twin", "s8")]["wall_ratio_sceua_over_dpl"] == pytest.approx(2.5)
    assert g[("twin", "s8")]["epochs_ratio_sceua_over_dpl"] == pytest.approx(10.0)
    assert g[("twin", "s8")]["break_even_epochs_ratio"] == pytest.approx(3.0)      # dPL costs 3x per run
    assert g[("twin", "s4")]["ahead"] == "SCE-UA" and g[("twin", "s4")]["wall_ratio_sceua_over_dpl"] == pytest.approx(0.5)
    assert g[("real", "s16")]["ahead"] is None and g[("real", "s16")]["wall_ratio_sceua_over_dpl"] is None
    assert g[("real", "s8")]["ahead"] == "SCE-UA" and not g[("real", "s8")]["dpl_reached"]
    curves = [{"variant": "twin", "density": "s8", "method": m, "epoch": [0.0, 22.0], "wall_time_s": [0.0, 1.0],
               "test_rmse": [0.03, 0.024]} for m in ("gz", "sceua")]
    gc = bc.gaps(rows, curves)
    assert gc[0]["sceua_first_point"] == {"epoch": 0.0, "wall_time_s": 0.0, "test_rmse": 0.03}
    assert gc[1]["sceua_first_point"] is None and gc[1]["dpl_ahead_down_to"] is None
    t = perf.case1_gap_table({"gaps": gc})
    assert list(t["SCE-UA initial population RMSE"][:2].fillna(-1)) == [0.03, -1]
    assert list(t["ahead in wall time"]) == ["dPL", "SCE-UA", "neither reached", "SCE-UA"] and "dpl_reached" not in t


def test_machine_info_records_the_vector_isa(monkeypatch):
    from benchmarks import common
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    isa = common.machine_info()["isa"]
    assert isa["pins"]["MKL_CBWR"] == "COMPATIBLE" and set(isa["cpu_flags"]) <= set(common.VECTOR_FLAGS)
    assert isinstance(isa["torch_capability"], str) and isa["torch_capability"]


def test_case1_crossover_reads_the_learning_curves_on_a_time_axis():
    bc = perf
    # dPL falls fast to 0.055 and stalls there; SCE-UA starts at 0.060 (its initial population, 2 s) and goes on to 0.047
    dpl = {"wall_time_s": [0.0, 1.0, 2.0, 3.0], "test_rmse": [0.097, 0.070, 0.058, 0.055]}
    sce = {"wall_time_s": [2.5, 5.0, 9.0], "test_rmse": [0.060, 0.050, 0.047]}
    assert bc.first_wall(dpl, 0.058) == 2.0 and bc.first_wall(dpl, 0.05) is None
    c = bc.crossover(dpl, sce)
    assert c["verdicts"][0.07] == "dPL" and c["verdicts"][0.059] == "dPL" and c["verdicts"][0.055] == "dPL"
    assert c["verdicts"][0.054] == "SCE-UA" and c["verdicts"][0.047] == "SCE-UA" and 0.046 not in c["verdicts"]
    assert c["dpl_ahead_down_to"] == 0.055 and max(c["verdicts"]) < 0.097
    sce_fast = {"wall_time_s": [0.5, 5.0], "test_rmse": [0.060, 0.047]}      # SCE-UA first already at the loosest
    assert bc.crossover(dpl, sce_fast)["dpl_ahead_down_to"] is None


def test_archived_cost_table_per_seed_and_density():
    import pandas as pd
    rows = []
    for seed, (dpl_w, sce_w) in {0: ((1.0, 2.0, 3.0), (2.5, 5.0)), 1: ((1.0, 2.0, 3.0), (0.5, 5.0))}.items():
        for e, w, r in zip((0, 1, 2, 3), (0.0,) + dpl_w, (0.097, 0.070, 0.058, 0.049)):
            rows.append({"seed": seed, "method": "gz", "density": "s8", "epoch": e, "wall_time_s": w, "test_rmse": r})
        for e, w, r in zip((22, 44), sce_w, (0.060, 0.047)):
            rows.append({"seed": seed, "method": "sceua", "density": "s8", "epoch": e, "wall_time_s": w, "test_rmse": r})
    t = perf.archived_cost_table(pd.DataFrame(rows)).set_index("seed")
    assert t.loc[0, "dPL s to threshold"] == 3.0 and t.loc[0, "SCE-UA s to threshold"] == 5.0 and t.loc[0, "first"] == "dPL"
    assert t.loc[0, "dPL first down to RMSE"] == pytest.approx(0.049)        # below its best (0.049) only SCE-UA
    assert t.loc[1, "dPL first down to RMSE"] is None or pd.isna(t.loc[1, "dPL first down to RMSE"])
    assert t.loc[1, "SCE-UA initial population (epochs)"] == 22 and t.loc[1, "SCE-UA initial population RMSE"] == 0.060
    assert perf.archived_cost_table(None).empty
