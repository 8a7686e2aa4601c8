import pytest

from dplpaper.results import Claim, read_claims, write_claims


def test_claims_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("DPLPAPER_RESULTS", str(tmp_path))
    c = Claim("Case 2", "median NSE", "0.44 vs 0.32", "0.50 vs 0.30", "yes", "real", "quick", "20_case2")
    write_claims("20_case2", [c])
    df = read_claims()
    assert len(df) == 1 and df.loc[0, "ours"] == "0.50 vs 0.30" and df.loc[0, "data"] == "real"


def test_claim_rejects_unknown_labels():
    with pytest.raises(ValueError, match="replicated"):
        Claim("Case 1", "x", "1", "2", "maybe", "real", "quick", "nb")
    with pytest.raises(ValueError, match="data"):
        Claim("Case 1", "x", "1", "2", "yes", "synthetic", "quick", "nb")


def test_verdict():
    from dplpaper.results import verdict
    assert verdict(-0.1, "full") == "no"
    assert verdict(float("nan"), "full") == "no"
    assert verdict(0.1, "quick") == "partly"
    assert verdict(0.01, "full") == "partly"
    assert verdict(0.1, "full") == "yes"
    assert verdict(0.01, "full", margin=0.0) == "yes"


def test_benchmark_results_reads_json(tmp_path):
    from dplpaper.results import benchmark_results
    (tmp_path / "hbv.json").write_text('{"a": 1}')
    res = benchmark_results(("hbv", "sceua"), folder=tmp_path)
    assert res == {"hbv": {"a": 1}, "sceua": None}


def test_timing_claims_flagged(tmp_path, monkeypatch):
    monkeypatch.setenv("DPLPAPER_RESULTS", str(tmp_path))
    write_claims("nb", [Claim("Case 1", "wall", "1", "2", "yes", "real", "quick", "nb", timing=True),
                        Claim("Case 1", "rmse", "1", "2", "no", "twin", "quick", "nb")])
    df = read_claims()
    assert df["timing"].tolist() == [True, False]


def test_claims_html_is_a_coloured_escaped_table():
    import pandas as pd
    from dplpaper.results import VERDICT_COLOURS, claims_html
    df = pd.DataFrame([dict(claim="dPL < SCE-UA & co", paper="0.44", ours="0.50", replicated="yes", data="real",
                            mode="full", note=None),
                       dict(claim="b", paper="1", ours="2", replicated="no", data="twin", mode="quick", note="n")])
    html = claims_html(df)
    assert html.count("<table") == 1 and html.count("<tr>") == 3           # header + 2 rows
    for col in ("claim", "paper", "ours", "replicated", "data", "mode", "note"):
        assert f">{col}</th>" in html
    assert "dPL &lt; SCE-UA &amp; co" in html and "|---|" not in html    # escaped, no raw markdown
    assert VERDICT_COLOURS["yes"] in html and VERDICT_COLOURS["no"] in html
    assert claims_html(df) == html                                          # stable ids
    with pytest.raises(ValueError, match="columns"):
        claims_html(df.drop(columns="note"))


def test_describe_provenance_names_what_is_recorded():
    from dplpaper.results import describe_provenance

    assert describe_provenance(None) == "no provenance recorded"
    cli = {"command": "dplpaper run case3 --mode full", "git_commit": "a" * 40, "git_dirty": True,
           "finished_utc": "2026-12-01T01:00:00+00:00", "n_basins": 426, "k_folds": 10, "folds": [0, 1],
           "methods": ["regionalization"], "regionalization_max_evals": 2000, "regionalization_refine_steps": 1500,
           "wall_time_s": 3600.0, "cpu_count": 2}
    text = describe_provenance(cli)
    for part in ("`dplpaper run case3 --mode full`", "commit aaaaaaaaaa (with local changes)", "426 basins in 10 folds",
                 "tested folds [0, 1]", "2000 SCE-UA evaluations + 1500 gradient steps", "60 min on 2 CPU cores"):
        assert part in text, part
    assert "dPL" not in text
    device = {"command": "bash x.sh", "n_runs": 2, "wall_time_per_run_s": [60.0, 120.0], "threads_per_run": 1,
              "cpu_count": 16, "methods": ["dpl"], "dpl_epochs": 100}
    text = describe_provenance(device)
    assert "2 runs of 1.0-2.0 min, 1 thread each, side by side on 16 CPU cores" in text and "dPL 100 epochs" in text
    scaling = dict(cli, parts=["scaling"], scaling_baseline=False, methods=["dpl", "regionalization"], dpl_epochs=100)
    assert "SCE-UA" not in describe_provenance(scaling)


def test_page_summary_lists_claims_by_mode():
    from dplpaper.results import Claim, page_summary

    claims = [Claim("Case 2", "median NSE, A vs B", "0.44 vs 0.32", "0.70 vs 0.60", "partly", "real", "quick", "nb"),
              Claim("Case 2", "median NSE, A", "n/a", "0.70", "n/a", "real", "quick", "nb"),
              Claim("Case 2", "median NSE, A vs B (archived)", "0.44 vs 0.32", "0.75 vs 0.58", "yes", "real", "full", "nb")]
    md = page_summary(claims, "What the page shows.")
    assert md.startswith("What the page shows.")
    assert md.index("This run (quick mode)") < md.index("Archived full runs")
    assert "- median NSE, A vs B: 0.70 vs 0.60 (paper: 0.44 vs 0.32) — replicated: **partly**" in md
    assert "- median NSE, A: 0.70\n" in md
    assert page_summary([]) == "\n"


def test_run_store_writes_remembers_and_archives(tmp_path, monkeypatch):
    import json

    import pandas as pd
    import pytest

    from dplpaper.results import RunStore

    monkeypatch.setenv("DPLPAPER_RESULTS", str(tmp_path / "results"))
    store = RunStore("case3", "full", "_daymet_f8")
    assert store.path("pub_metrics").name == "pub_metrics_full_daymet_f8.csv"
    with pytest.raises(ValueError, match="no file"):
        store.write_provenance({})
    store.write_table("pub_metrics", pd.DataFrame({"a": [1]}))
    store.write_table("scaling", pd.DataFrame({"b": [2]}))
    store.add("simulations", "nc").write_text("not a table")
    prov = store.write_provenance({"command": "x"})
    assert prov.name == "provenance_pub_metrics_full_daymet_f8.json" and json.loads(prov.read_text()) == {"command": "x"}
    dest = store.archive({"command": "x"}, folder=tmp_path / "arch")
    assert sorted(p.name for p in dest.iterdir()) == ["provenance_pub_metrics_full_daymet_f8.json",
                                                     "pub_metrics_full_daymet_f8.csv", "scaling_full_daymet_f8.csv"]
    only = store.archive({}, kinds=["scaling"], folder=tmp_path / "arch2")
    assert sorted(p.name for p in only.iterdir()) == ["provenance_scaling_full_daymet_f8.json", "scaling_full_daymet_f8.csv"]
    assert RunStore("case1", "real_full").path("cells").name == "cells_real_full.csv"
    with pytest.raises(ValueError):
        RunStore("", "full")
