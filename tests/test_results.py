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
