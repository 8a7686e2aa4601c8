"""Claims of the archived Case 2 full runs: paired statistics and the baselines' convergence."""
import numpy as np
import pandas as pd

from dplpaper.experiments import archived as ar
from dplpaper.experiments import streamflow as sf


def _write(folder, stem, rows, medians):
    d = folder / "case2"
    d.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(d / f"metrics_{stem}.csv", index=False)
    pd.DataFrame(medians).to_csv(d / f"medians_{stem}.csv", index=False)


def test_case2_full_claims_pair_basins_and_need_converged_baselines(tmp_path, monkeypatch):
    monkeypatch.setenv("DPLPAPER_ARCHIVE", str(tmp_path))
    lab = sf.case2_method_labels(sf.Case2Config.full())
    rng = np.random.default_rng(0)
    sites = [f"{i:08d}" for i in range(60)]
    base = rng.uniform(0.3, 0.7, len(sites))
    rows = []
    for s in (0, 1, 2):
        rows += [dict(site=b, method=lab["dpl"], seed=s, nse=v + 0.1 + 0.01 * s, kge=0.5) for b, v in zip(sites, base)]
    _write(tmp_path, "full_daymet", rows, [dict(method=lab["dpl"], median_nse=0.6, median_kge=0.5, n_basins=60,
                                                n_seeds=3, seed_sd_nse=0.01)])
    rows = [dict(site=b, method=lab["regionalization"], seed=0, nse=v, kge=0.4) for b, v in zip(sites, base)]
    rows += [dict(site=b, method=lab["sceua"], seed=0, nse=v + 0.2, kge=0.4) for b, v in zip(sites, base)]
    _write(tmp_path, "full_daymet_baselines", rows,
           [dict(method=lab["regionalization"], median_nse=0.5, median_kge=0.4, n_basins=60, n_seeds=1,
                 budget_converged=True),
            dict(method=lab["sceua"], median_nse=0.7, median_kge=0.4, n_basins=60, n_seeds=1, budget_converged=False)])
    claims = {c.claim: c for c in ar.case2_full_claims()}
    c = claims["median test NSE, dPL HBV gA vs regionalization HBV (archived full run)"]
    assert c.key == "full_daymet_dpl_vs_regionalization"
    assert c.replicated == "yes" and "converged" in c.note and c.mode == "full" and "gain +0.11" in c.ours
    ref = claims[f"median test NSE, {lab['dpl']} (archived full run)"]
    assert ref.replicated == "n/a" and "mean of 3 seeds" in ref.ours
    # the converged flag missing or False: never a "yes"
    medians, _ = ar.case2_archive("daymet")
    assert not ar._converged(medians, lab["sceua"]) and ar._converged(medians, lab["regionalization"])
    assert not ar._converged(medians, "unknown method")


def test_case2_later_run_supersedes_an_earlier_one(tmp_path, monkeypatch):
    """The regionalization refined to convergence (its own archive) replaces the SCE-UA-only row."""
    monkeypatch.setenv("DPLPAPER_ARCHIVE", str(tmp_path))
    lab = sf.case2_method_labels(sf.Case2Config.full())
    sites = [f"{i:08d}" for i in range(10)]
    reg = lab["regionalization"]
    _write(tmp_path, "full_daymet_baselines", [dict(site=b, method=reg, seed=0, nse=0.1, kge=0.1) for b in sites],
           [dict(method=reg, median_nse=0.1, median_kge=0.1, n_basins=10, n_seeds=1, budget_converged=False)])
    _write(tmp_path, "full_daymet_regionalization", [dict(site=b, method=reg, seed=0, nse=0.3, kge=0.3) for b in sites],
           [dict(method=reg, median_nse=0.3, median_kge=0.3, n_basins=10, n_seeds=1, budget_converged=True)])
    medians, scores = ar.case2_archive("daymet")
    assert list(medians.index) == [reg] and medians.loc[reg, "median_nse"] == 0.3
    assert (scores[reg] == 0.3).all() and ar._converged(medians, reg)


def _pub_table(cfg, gain, converged, n=40, folds=4, seed=0):
    lab = sf.case3_method_labels(cfg)
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 0.6, n)
    rows = []
    for i in range(n):
        f = i % folds
        rows.append(dict(fold=f, site=f"{i:08d}", method=lab["regionalization_8"], attributes="8", seed=0,
                         nse=base[i], kge=base[i], budget_converged=converged, tail_improvement=0.001))
        rows.append(dict(fold=f, site=f"{i:08d}", method=lab["dpl_8"], attributes="8", seed=0,
                         nse=base[i] + gain, kge=base[i] + gain + 0.01 * rng.standard_normal()))
        rows.append(dict(fold=f, site=f"{i:08d}", method=lab["dpl_27"], attributes="27", seed=0,
                         nse=base[i] + gain, kge=base[i] + gain - 0.05))
    return pd.DataFrame(rows)


def test_pub_claims_pair_held_out_basins_and_need_converged_folds():
    cfg = sf.Case3Config.full()
    lab = sf.case3_method_labels(cfg)
    assert lab == {"dpl_8": "dPL gA+HBV (8 attr)", "dpl_27": "dPL gA+HBV (27 attr)",
                   "regionalization_8": "regionalization HBV (8 attr)"}
    claims = ar.pub_claims(_pub_table(cfg, 0.1, True), cfg, "full", "test")
    reg, att = claims
    assert reg.replicated == "yes" and "converged on every fold" in reg.note and "n=40" in reg.ours
    assert (reg.key, att.key) == ("dpl_8_vs_regionalization_8", "dpl_27_vs_dpl_8")
    assert "folds [0, 1, 2, 3]" in reg.note and reg.paper == "0.56 vs 0.48"
    assert att.replicated == "no"                                   # 27 attributes worse by 0.05 here
    # one fold not converged: at most "partly"; quick mode: at most "partly"; no gain: "no"
    t = _pub_table(cfg, 0.1, True)
    t.loc[(t["fold"] == 2) & t["method"].str.startswith("regionalization"), "budget_converged"] = False
    assert ar.pub_claims(t, cfg, "full", "test")[0].replicated == "partly"
    assert ar.pub_claims(t.drop(columns="budget_converged"), cfg, "full", "test")[0].replicated == "partly"
    assert ar.pub_claims(_pub_table(cfg, 0.1, True), cfg, "quick", "test")[0].replicated == "partly"
    assert ar.pub_claims(_pub_table(cfg, -0.1, True), cfg, "full", "test")[0].replicated == "no"
    # a table without the regionalization: only the attribute claim
    only_dpl = _pub_table(cfg, 0.1, True)
    only_dpl = only_dpl[~only_dpl["method"].str.startswith("regionalization")]
    assert [c.claim for c in ar.pub_claims(only_dpl, cfg, "full", "test")] == [
        "median held-out KGE, dPL with 27 vs 8 attributes (PUB)"]


def test_case3_full_claims_from_archives(tmp_path, monkeypatch):
    import pytest

    monkeypatch.setenv("DPLPAPER_ARCHIVE", str(tmp_path))
    cfg = sf.Case3Config.full()
    t = _pub_table(cfg, 0.1, True)
    d = tmp_path / "case3"
    d.mkdir()
    reg = t["method"].str.startswith("regionalization")
    t[~reg].drop(columns=["budget_converged", "tail_improvement"]).to_csv(d / "pub_metrics_full_daymet_dpl.csv", index=False)
    t[reg].to_csv(d / "pub_metrics_full_daymet_reg.csv", index=False)
    table, provs = ar.case3_archive("daymet")
    assert len(table) == len(t) and provs == [{}, {}] and table["site"].str.len().eq(8).all()
    claims = ar.case3_full_claims()
    assert [c.replicated for c in claims] == ["yes", "no", "yes"] and all("daymet forcing" in c.note for c in claims)
    assert [c.key for c in claims] == ["full_daymet_dpl_8_vs_regionalization_8", "full_daymet_dpl_27_vs_dpl_8",
                                       "full_daymet_nse_dpl_8_vs_regionalization_8"]      # the same comparison on NSE
    assert "NSE" in claims[2].claim and "1 - KGE" in claims[2].note
    # one fold's regionalization rerun by a later run supersedes the earlier rows of that fold
    f = int(t.loc[reg, "fold"].iloc[0])
    rerun = t[reg & (t["fold"] == f)].assign(kge=0.99, budget_converged=True)
    rerun.to_csv(d / "pub_metrics_full_daymet_reg_f8.csv", index=False)
    table2, provs2 = ar.case3_archive("daymet")
    assert len(table2) == len(t) and len(provs2) == 3
    got = table2[table2["method"].str.startswith("regionalization") & (table2["fold"] == f)]
    assert len(got) == len(rerun) and got["kge"].eq(0.99).all()
    assert table2[table2["method"].str.startswith("regionalization") & (table2["fold"] != f)]["kge"].lt(0.99).all()
    assert ar.case3_archive("era5land") == (None, [])
    with pytest.raises(ValueError, match="forcing"):
        ar.case3_archive("nldas")


def _scaling_table(curve, n=60, seeds=(0, 1), seed=0):
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 0.6, n)
    rows = []
    for f, gain in curve.items():
        for s in seeds:
            for i in range(n):
                v = base[i] + gain + 0.002 * rng.standard_normal()
                rows.append(dict(fraction=f, seed=s, fold=i % 3, n_train=int(300 * f), site=f"{i:08d}",
                                 method="dPL", nse=v, kge=v))
    return pd.DataFrame(rows), pd.Series(base, index=[f"{i:08d}" for i in range(n)])


def test_scaling_claims_shape_and_matching_share():
    steep, base = _scaling_table({0.02: 0.0, 0.25: 0.15, 1.0: 0.2})
    shape, match = ar.scaling_claims(steep, "full", "test", regionalization=base + 0.1, regionalization_converged=True)
    assert shape.replicated == "yes" and "gain to 25 %" in shape.ours and shape.paper.startswith("0.38")
    assert match.replicated == "yes" and match.ours.startswith("25 %")       # 0.15 >= 0.1 first at 25 %
    assert (shape.key, match.key) == ("scaling_shape", "scaling_matching_share")
    # not converged, or quick: at most "partly"
    assert ar.scaling_claims(steep, "full", "t", base + 0.1, False)[1].replicated == "partly"
    assert [c.replicated for c in ar.scaling_claims(steep, "quick", "t", base + 0.1, True)] == ["partly", "partly"]
    # a late rise as large as the early one is not the paper's shape; a falling curve is a "no"
    linear, _ = _scaling_table({0.02: 0.0, 0.25: 0.05, 1.0: 0.2})
    c = ar.scaling_claims(linear, "full", "t")[0]
    assert c.replicated == "partly" and "not smaller" in c.note
    falling, _ = _scaling_table({0.02: 0.1, 0.25: 0.05, 1.0: 0.0})
    assert ar.scaling_claims(falling, "full", "t")[0].replicated == "no"
    # never reaching the regionalization: "no"; reaching it at the first share: said so
    assert ar.scaling_claims(steep, "full", "t", base + 0.5, True)[1].replicated == "no"
    first = ar.scaling_claims(steep, "full", "t", base - 0.1, True)[1]
    assert "smallest share" in first.ours and first.replicated == "yes"
    # no split share in the table: no shape claim
    two, _ = _scaling_table({0.02: 0.0, 1.0: 0.2})
    assert ar.scaling_claims(two, "full", "t") == []


def test_case2_claims_from_a_run_result():
    cfg = sf.Case2Config.quick()
    lab = sf.case2_method_labels(cfg)
    rng = np.random.default_rng(1)
    sites = [f"{i:08d}" for i in range(40)]
    base = rng.uniform(0.2, 0.6, len(sites))
    gains = {"vic_gz": 0.1, "dpl": 0.15, "regionalization": 0.0, "sceua": 0.2, "dpl_dynamic": 0.25, "lstm": 0.1}
    rows = [dict(site=b, method=lab[m], seed=0, nse=v + g + 0.01 * rng.standard_normal(), kge=0.5, n_obs=100)
            for m, g in gains.items() for b, v in zip(sites, base)]
    metrics = pd.DataFrame(rows)
    med = metrics.groupby("method", sort=False)[["nse", "kge"]].median().rename(
        columns={"nse": "median_nse", "kge": "median_kge"})
    med["n_basins"] = 40
    med["budget_converged"] = pd.Series({lab["regionalization"]: True, lab["sceua"]: False}, dtype=object)
    claims = {c.key: c for c in ar.case2_claims({"metrics": metrics, "medians": med, "basins": sites}, cfg)}
    assert set(claims) == {"vic_gz_vs_regionalization", "dpl_vs_regionalization", "sceua_median_nse",
                           "dpl_dynamic_median_nse", "lstm_median_nse"}
    c = claims["dpl_vs_regionalization"]
    assert c.replicated == "partly" and "quick mode" in c.note and "regionalization converged" in c.note
    assert "n=40" in c.ours and c.mode == "quick"
    assert "not shown converged" in claims["sceua_median_nse"].note
    full = sf.Case2Config.full()
    assert ar.case2_claims({"metrics": metrics, "medians": med}, full)[1].replicated == "yes"


def test_case3_scaling_archive_stacks_runs(tmp_path, monkeypatch):
    import pytest

    monkeypatch.setenv("DPLPAPER_ARCHIVE", str(tmp_path))
    d = tmp_path / "case3"
    d.mkdir()
    a, _ = _scaling_table({0.02: 0.0, 0.25: 0.1, 1.0: 0.2}, seeds=(0, 1))
    b, _ = _scaling_table({0.02: 0.0, 0.25: 0.1, 1.0: 0.2}, seeds=(1, 2), seed=5)
    a.to_csv(d / "scaling_full_daymet_folds.csv", index=False)
    b.to_csv(d / "scaling_full_daymet_folds_s2.csv", index=False)
    table, provs = ar.case3_scaling_archive("daymet")
    assert sorted(table["seed"].unique()) == [0, 1, 2] and len(provs) == 2
    assert len(table) == len(a) + len(b) - (b["seed"] == 1).sum()       # seed 1 archived twice: kept once
    later = table[table["seed"] == 1].sort_values(["fraction", "site"])["kge"].to_numpy()
    np.testing.assert_allclose(later, b[b["seed"] == 1].sort_values(["fraction", "site"])["kge"].to_numpy())
    assert ar.case3_scaling_archive("era5land") == (None, [])
    with pytest.raises(ValueError):
        ar.case3_scaling_archive("nldas")
