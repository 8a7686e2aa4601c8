"""Case 1's claims as library code: paired statistics over cells, rules capped in quick mode."""
import json

import numpy as np
import pandas as pd
import pytest

from dplpaper.experiments import case1_claims as cc
from dplpaper.verdicts import cap_quick, compare_to_reference


def _gen(gz_gain=0.05, n=60, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    base_corr = rng.uniform(0.5, 0.9, n)
    base_ub = rng.uniform(0.02, 0.05, n)
    for test in ("temporal", "spatial"):
        for m, g in (("default", -0.1), ("sceua", 0.0), ("gz", gz_gain), ("ga", gz_gain / 2)):
            noise = 0.002 * rng.standard_normal(n)
            for i in range(n):
                rows.append(dict(test=test, method=m, site=f"c{i:03d}", corr=base_corr[i] + g + noise[i],
                                 ubrmse=base_ub[i] - g / 10 + abs(noise[i]) / 10,
                                 bias=(0.01 if m == "sceua" else 0.002) * rng.standard_normal(), rmse=base_ub[i]))
    return pd.DataFrame(rows)


def test_generalization_claims_are_paired_by_cell():
    claims = {c.key: c for c in cc.generalization_claims(_gen(0.05), "twin", "full", "s8")}
    assert set(claims) == {"twin_temporal_corr_gz_vs_sceua", "twin_spatial_ubrmse_gz_vs_sceua",
                           "twin_spatial_bias_spread", "twin_spatial_corr_gz_vs_ga"}
    assert claims["twin_temporal_corr_gz_vs_sceua"].replicated == "yes"
    assert "paired gain" in claims["twin_temporal_corr_gz_vs_sceua"].ours
    assert claims["twin_spatial_ubrmse_gz_vs_sceua"].replicated == "yes"
    assert claims["twin_spatial_bias_spread"].replicated == "yes"        # SCE-UA's bias 5x more spread
    # quick mode: never "yes"; dPL worse: "no"
    assert all(c.replicated != "yes" for c in cc.generalization_claims(_gen(0.05), "twin", "quick", "s8"))
    worse = {c.key: c for c in cc.generalization_claims(_gen(-0.05), "real", "full", "s8")}
    assert worse["real_temporal_corr_gz_vs_sceua"].replicated == "no"
    assert worse["real_spatial_ubrmse_gz_vs_sceua"].replicated == "no"
    et = pd.DataFrame({"median_corr": [0.8, 0.7]}, index=["gz", "sceua"])
    c = cc.generalization_claims(_gen(0.05), "twin", "full", "s8", et_summary=et)[-1]
    assert c.key == "twin_uncalibrated_et" and c.replicated == "yes" and c.data == "twin"


def test_learning_claims_rules_and_quick_cap():
    scal = pd.DataFrame({"dpl_epochs_to_threshold": [30.0, 10.0, 5.0], "sceua_epochs_to_threshold": [80.0, np.nan, 40.0],
                         "dpl_ending_rmse": [0.050, 0.045, 0.040], "sceua_ending_rmse": [0.049, 0.047, 0.041]},
                        index=["s16", "s8", "s4"])
    full = {c.key: c for c in cc.learning_claims(scal, 0.05, "s8", "twin", "full")}
    assert [c.replicated for c in full.values()] == ["yes", "yes", "yes", "yes"]
    assert "dPL 30, 10, 5 vs SCE-UA 80, n/r, 40 (s16, s8, s4" in full["twin_epochs_to_threshold"].ours
    assert full["twin_epochs_fall_with_density"].ours == "30 > 10 > 5"
    quick = cc.learning_claims(scal, 0.05, "s8", "twin", "quick")
    assert [c.replicated for c in quick] == ["partly"] * 4
    slow = scal.assign(dpl_epochs_to_threshold=[90.0, 100.0, np.nan], sceua_epochs_to_threshold=[80.0, 50.0, 40.0],
                       dpl_ending_rmse=[0.05, 0.06, 0.07])
    assert [c.replicated for c in cc.learning_claims(slow, 0.05, "s8", "real", "full")] == ["no", "no", "no", "no"]


def test_surrogate_seed_and_coherence_claims():
    acc = {"table": pd.DataFrame({"corr_sm": np.linspace(0.93, 0.99, 50), "corr_et": np.linspace(0.5, 0.95, 50)})}
    sm, et = cc.surrogate_claims(acc, "full")
    assert (sm.replicated, et.replicated) == ("yes", "no") and sm.key == "surrogate_corr_sm"
    assert cc.surrogate_claims(acc, "quick")[0].replicated == "partly"
    summ = pd.concat({"mean": pd.DataFrame({"temporal_corr": [0.70, 0.60]}, index=["gz", "sceua"]),
                      "std": pd.DataFrame({"temporal_corr": [0.01, 0.02]}, index=["gz", "sceua"])}, axis=1)
    assert cc.seed_claim(summ, 3, "twin", "full").replicated == "yes"
    assert cc.seed_claim(summ, 1, "twin", "full").replicated == "no"
    coh = pd.DataFrame({"dPL gZ": [0.5, 0.6], "SCE-UA": [0.1, 0.2]}, index=["INFILT", "mean"])
    assert cc.coherence_claims(coh, "real", "full")[0].replicated == "yes"
    assert cc.coherence_claims(coh, "real", "quick")[0].replicated == "partly"
    assert cc.coherence_claims(coh.assign(**{"SCE-UA": [0.58, 0.58]}), "real", "full")[0].replicated == "partly"
    assert cc.coherence_claims(coh.assign(**{"SCE-UA": [0.9, 0.9]}), "real", "full")[0].replicated == "no"


def test_compare_to_reference_and_cap():
    assert compare_to_reference(np.full(20, 0.95) + np.linspace(0, 0.01, 20), 0.91, "full").verdict == "yes"
    assert compare_to_reference(np.linspace(0.8, 0.9, 20), 0.91, "full").verdict == "no"
    wide = np.r_[np.full(10, 0.80), np.full(11, 0.95)]                  # median 0.95, interval reaching 0.80
    assert compare_to_reference(wide, 0.91, "full").verdict == "partly"
    with pytest.raises(ValueError):
        compare_to_reference([0.9, np.nan], 0.91, "full")
    assert cap_quick("yes", "quick") == "partly" and cap_quick("yes", "full") == "yes" and cap_quick("no", "quick") == "no"


def _archive(tmp_path, gz_extra=0.0005, flat_sceua=True, n=80, seeds=(0, 1, 2), stem="real_full_s1", prov=None):
    """A synthetic archived full run: gZ's RMSE = SCE-UA's + gz_extra per cell (+ small noise)."""
    rng = np.random.default_rng(5)
    base = rng.uniform(0.03, 0.08, n)
    rows, curves = [], []
    for s in seeds:
        for d in ("s8", "s4"):
            for m, extra in (("sceua", 0.0), ("gz", gz_extra), ("ga", gz_extra + 0.002)):
                for test in ("temporal", "spatial") if d == "s8" else ("temporal",):
                    v = base + extra + 2e-4 * rng.standard_normal(n)
                    rows.append(pd.DataFrame({"seed": s, "method": m, "density": d, "test": test,
                                              "site": [f"{i:05d}" for i in range(n)], "rmse_surrogate": v,
                                              "rmse_legacy": v + 0.001, "corr_surrogate": 0.7 - v,
                                              "corr_legacy": 0.7 - v, "ubrmse_legacy": v, "bias_legacy": 0.0}))
                ep = np.arange(0, 101, 10, dtype=float)
                tail = 0.0 if flat_sceua else 0.01
                curves.append(pd.DataFrame({"seed": s, "method": m, "density": d, "epoch": ep, "wall_time_s": ep,
                                            "test_rmse": 0.05 + tail * (1 - ep / 100) + 0.02 * (ep < 50)}))
    d = tmp_path / "case1"
    d.mkdir(parents=True, exist_ok=True)
    pd.concat(rows).to_csv(d / f"cells_{stem}.csv", index=False)
    pd.concat(curves).to_csv(d / f"curves_{stem}.csv", index=False)
    pd.DataFrame({"seed": list(seeds), "method": "gz"}).to_csv(d / f"runs_{stem}.csv", index=False)
    if prov is not None:
        (d / f"provenance_cells_{stem}.json").write_text(json.dumps(prov))


def test_archives_of_single_seeds_join_into_one_run(tmp_path, monkeypatch):
    monkeypatch.setenv("DPLPAPER_ARCHIVE", str(tmp_path))
    assert cc.case1_archive() is None
    _archive(tmp_path, seeds=(0,), prov={"wall_time_s": 100.0, "command": "a"})
    one = cc.case1_archive()
    assert one["provenance"]["seeds"] == [0] and one["provenance"]["archives"] == {"real_full_s1": [0]}
    # seed 1 run apart; a later archive's seed 0 (gZ 0.005 worse) replaces the first archive's seed 0
    _archive(tmp_path, seeds=(1,), stem="real_full_seed1", prov={"wall_time_s": 50.0, "command": "b"})
    _archive(tmp_path, seeds=(0, 2), stem="real_full_seed2", gz_extra=0.005, prov={"wall_time_s": 20.0, "command": "c"})
    arc = cc.case1_archive()
    assert arc["provenance"]["archives"] == {"real_full_seed1": [1], "real_full_seed2": [0, 2]}
    assert arc["provenance"]["seeds"] == [0, 1, 2] and arc["provenance"]["wall_time_s"] == 70.0
    assert arc["provenance"]["command"] == "c" and [p["command"] for p in arc["provenance"]["parts"]] == ["b", "c"]
    for k in ("cells", "runs", "curves"):
        assert sorted(arc[k]["seed"].unique()) == [0, 1, 2]
    c = arc["cells"]
    gap = (c[(c.method == "gz") & (c.seed == 0)]["rmse_legacy"].mean()
           - c[(c.method == "sceua") & (c.seed == 0)]["rmse_legacy"].mean())
    assert gap > 0.004                                        # seed 0 is the later archive's
    assert len(c) == 3 * len(c[c.seed == 1])                  # one copy of every seed


def test_full_claims_from_the_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("DPLPAPER_ARCHIVE", str(tmp_path))
    assert cc.case1_full_claims() == []                       # nothing archived: no rows
    _archive(tmp_path)
    claims = {c.key: c for c in cc.case1_full_claims()}
    assert set(claims) == {f"full_real_ending_rmse_{w}_{d}" for w in ("legacy", "surrogate") for d in ("s8", "s4")} | {
        "full_real_spatial_ubrmse_gz_vs_sceua", "full_real_spatial_corr_gz_vs_ga"}
    c = claims["full_real_ending_rmse_legacy_s8"]
    assert c.replicated == "yes" and c.mode == "full" and "per-seed medians" in c.ours and "converged" in c.note
    assert claims["full_real_spatial_ubrmse_gz_vs_sceua"].replicated == "no"       # gZ worse at the neighbours
    assert claims["full_real_spatial_corr_gz_vs_ga"].replicated == "yes"
    # gZ 0.005 worse: "no"; SCE-UA still improving: at most "partly"
    _archive(tmp_path, gz_extra=0.005)
    assert {c.key: c for c in cc.case1_full_claims()}["full_real_ending_rmse_legacy_s8"].replicated == "no"
    _archive(tmp_path, flat_sceua=False)
    c = {c.key: c for c in cc.case1_full_claims()}["full_real_ending_rmse_legacy_s8"]
    assert c.replicated == "partly" and "not converged" in c.note
    with pytest.raises(ValueError, match="variant"):
        cc.case1_archive("nldas")


def test_sweep_claims_cost_to_sceua_accuracy():
    def sweep(gz_rmse, gz_wall, sce_rmse=(0.060, 0.052, 0.050), sce_wall=(10.0, 40.0, 150.0)):
        rows = [dict(method="gz", lr=1e-2, budget=b, wall_s=w, rmse_legacy=r, rmse_surrogate=r, share_at_bounds=0.1,
                     n_cells=100, density="s8") for b, r, w in zip((30, 100, 300), gz_rmse, gz_wall)]
        rows += [dict(method="sceua", lr=np.nan, budget=b, wall_s=w, rmse_legacy=r, rmse_surrogate=r - 0.01 * i,
                      share_at_bounds=0.2 * i, n_cells=100, density="s8")
                 for i, (b, r, w) in enumerate(zip((150, 500, 2000), sce_rmse, sce_wall))]
        return pd.DataFrame(rows)

    # target 0.050 + 0.002 = 0.052: dPL's 100-epoch run (20 s) reaches it, SCE-UA's 500-evaluation run (40 s)
    c = cc.sweep_claims(sweep((0.06, 0.051, 0.049), (5.0, 20.0, 60.0)), "real", "full")[0]
    assert c.replicated == "yes" and c.timing and "dPL gZ 20 s vs SCE-UA 40 s" in c.ours and c.key == "real_sweep_cost_s8"
    assert cc.sweep_claims(sweep((0.06, 0.051, 0.049), (5.0, 20.0, 60.0)), "real", "quick")[0].replicated == "partly"
    assert cc.sweep_claims(sweep((0.06, 0.051, 0.049), (5.0, 50.0, 60.0)), "real", "full")[0].replicated == "no"
    never = cc.sweep_claims(sweep((0.07, 0.065, 0.06), (5.0, 20.0, 60.0)), "real", "full")[0]
    assert never.replicated == "no" and "never (best 0.0600)" in never.ours
    diag = cc.sweep_claims(sweep((0.06, 0.051, 0.049), (5.0, 20.0, 60.0)), "real", "full")[1]
    assert diag.key == "real_sweep_diagnosis_s8" and diag.replicated == "n/a"
    assert "SCE-UA 150 -> 2000: surrogate 0.0600 -> 0.0300, VIC-style model 0.0600 -> 0.0500, at bounds 0% -> 40%" in diag.ours


def _truth_scores(gain, n=60):
    rng = np.random.default_rng(3)
    base = rng.uniform(0.004, 0.01, n)
    rows = []
    for test in ("temporal", "spatial"):
        for m, extra in (("gz", -gain), ("sceua", 0.0)):
            rows.append(pd.DataFrame({"method": m, "test": test, "site": [f"{i:05d}" for i in range(n)],
                                      "rmse_truth": base + extra + 1e-4 * rng.standard_normal(n),
                                      "rmse_obs": 0.0201 + 1e-4 * rng.standard_normal(n), "noise_floor": 0.02}))
    return pd.concat(rows, ignore_index=True)


def test_truth_claims_judge_the_error_against_the_truth():
    full = {c.key: c for c in cc.truth_claims(_truth_scores(0.002), "full")}
    assert set(full) == {"twin_truth_rmse_gz_vs_sceua_temporal", "twin_truth_rmse_gz_vs_sceua_spatial"}
    c = full["twin_truth_rmse_gz_vs_sceua_temporal"]
    assert c.replicated == "yes" and c.data == "twin" and "noise floor 0.0200" in c.ours
    assert {c.replicated for c in cc.truth_claims(_truth_scores(0.002), "quick")} == {"partly"}
    assert {c.replicated for c in cc.truth_claims(_truth_scores(-0.002), "full")} == {"no"}


def test_identifiability_claims_name_the_parameters_and_the_bounds():
    t = pd.DataFrame({"sensitivity": [0.002, 0.0, 0.0, 0.0, 0.02], "snr": [0.8, 0.0, 0.0, 0.0, 11.0],
                      "share_identifiable": [0.1, 0.0, 0.0, 0.0, 0.98], "at_bounds_gz": [0.1, 0.9, 0.5, 0.8, 0.0]},
                     index=["INFILT", "Dsmax", "Ds", "Ws", "EXPT"])
    ident, bounds = cc.identifiability_claims(t, "real", "quick")
    assert ident.ours.startswith("identifiable: EXPT; not: INFILT, Dsmax, Ds, Ws") and ident.replicated == "n/a"
    assert bounds.ours.startswith("gz at the bounds: identifiable 0% of cells, not identifiable 57% (gz INFILT 10%,")
    assert bounds.key == "real_bounds_explained"


def test_full_claims_name_each_seeds_surrogate_when_archives_trained_their_own(tmp_path, monkeypatch):
    monkeypatch.setenv("DPLPAPER_ARCHIVE", str(tmp_path))
    _archive(tmp_path, seeds=(0,))
    _archive(tmp_path, seeds=(1,), stem="real_full_seed1")
    d = tmp_path / "case1"
    for stem, seed, corr in (("real_full_s1", 0, 0.99759), ("real_full_seed1", 1, 0.99755)):
        pd.DataFrame({"seed": [seed], "method": ["gz"], "surrogate_corr_sm": [corr],
                      "surrogate_rmse_sm": [0.00407]}).to_csv(d / f"runs_{stem}.csv", index=False)
    note = cc.case1_full_claims()[0].note
    assert "surrogate per seed (held-out corr / RMSE): 0: 0.99759 / 0.00407, 1: 0.99755 / 0.00407" in note
    pd.DataFrame({"seed": [1], "method": ["gz"], "surrogate_corr_sm": [0.99759],     # one surrogate: not named
                  "surrogate_rmse_sm": [0.00407]}).to_csv(d / "runs_real_full_seed1.csv", index=False)
    assert "surrogate per seed" not in cc.case1_full_claims()[0].note
