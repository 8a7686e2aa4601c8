"""The portable runner (exact input export, one fold/seed anywhere, collecting and archiving the
outputs of a machine that sends back one file) and the published-reference table."""
from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest

from dplpaper.experiments import portable
from dplpaper.experiments import streamflow as sf
from dplpaper.experiments.published import published_camels


def _fake_run(d, key, method, seed, nse, extra_table=None):
    d.mkdir(parents=True, exist_ok=True)
    prov = {"method": method, "seed": seed, "settings": {"lstm_hidden": 64, "hidden": 256, "epochs": 30, "lr": 3e-3},
            "median_nse": nse, "median_kge": nse - 0.01, "wall_time_s": 10.0 + seed, "machine": "m", "threads": 2,
            "torch": "x"}
    (d / f"provenance_{key}.json").write_text(json.dumps(prov))
    pd.DataFrame({"site": ["01022500", "02053200"], "nse": [nse, nse], "kge": [0.1, 0.2], "n_obs": [3, 3]}).to_csv(
        d / f"metrics_{key}.csv", index=False)
    if extra_table is not None:
        extra_table.to_csv(d / f"pub_{key}.csv", index=False)


def test_collect_summary_and_archive(tmp_path):
    _fake_run(tmp_path / "A", "dpl_dynamic_s0", "dpl_dynamic", 0, 0.70)
    _fake_run(tmp_path / "A", "dpl_dynamic_s1", "dpl_dynamic", 1, 0.72)
    pub = pd.DataFrame({"fold": [3], "site": ["01022500"], "method": ["dPL"], "nse": [0.5], "kge": [0.4]})
    _fake_run(tmp_path / "B", "case3_f3_a8_s0", "dpl", 0, 0.5, extra_table=pub)
    out = portable.collect_runs([tmp_path / "A", tmp_path / "B"], tmp_path / "all.json")
    runs = json.loads(out.read_text())["runs"]
    assert [r["key"] for r in runs] == ["dpl_dynamic_s0", "dpl_dynamic_s1", "case3_f3_a8_s0"]
    assert runs[0]["metrics"]["site"] == ["01022500", "02053200"]       # ids keep their leading zero
    assert "pub" in runs[2] and "pub" not in runs[0]
    summ = portable.collected_summary(out)
    assert list(summ["median_nse"]) == [0.70, 0.72, 0.5]
    assert summ.loc[0, "hidden"] == 64 and summ.loc[2, "hidden"] == 256  # the dynamic net's LSTM vs the MLP
    with pytest.raises(ValueError, match="no 'pub' table"):
        portable.archive_collected(out, "pub", "case3", "x.csv", "cmd", "abc", folder=tmp_path / "arch")
    path = portable.archive_collected(out, "metrics", "case2", "m.csv", "cmd", "abc", folder=tmp_path / "arch",
                                      forcing="daymet")
    t = pd.read_csv(path, dtype={"site": str})
    assert len(t) == 6 and t["site"].iloc[0] == "01022500"
    prov = json.loads((path.parent / "provenance_m.json").read_text())
    assert prov["n_runs"] == 3 and prov["wall_time_s"] == 11.0 and prov["forcing"] == "daymet"


def test_case3_pub_fold_runner_matches_the_cli_driver(tmp_path, monkeypatch):
    """One fold through the portable runner = the same fold through run_pub_folds on the loader's data."""
    basins = sf.camels_caravan_basins(quick=True)[:10]
    ds, attrs = sf.load_streamflow_data(basins, quick=True)
    names = tuple(dict.fromkeys(tuple(sf.ATTRIBUTES_27) + tuple(sf.BECK_ATTRIBUTES_CAMELS)))
    portable.export_streamflow_inputs(ds, attrs, tmp_path / "in.npz", portable.EXPORT_PERIOD, names)
    full = sf.Case3Config.full
    tiny = sf.DPLSettings(nmul=2, hidden=16, n_layers=1, epochs=2, batch_sites=9, window_days=200, warmup_days=60,
                          lr=0.02)

    def small(seed=0):
        return replace(full(seed), dpl=tiny, period=("2001-10-01", "2002-09-30"), warmup_days=60, k_folds=5)

    monkeypatch.setattr(sf.Case3Config, "full", staticmethod(small))
    path = portable.run_case3_pub_fold(tmp_path / "in.npz", 2, "8", tmp_path / "out", threads=1)
    prov = json.loads(path.read_text())
    got = pd.read_csv(tmp_path / "out" / "pub_case3_f2_a8_s0.csv", dtype={"site": str})
    cfg = small()
    cfg = replace(cfg, attribute_sets={"8": cfg.attribute_sets["8"]})
    folds = sf.pub_folds_for(basins, cfg.k_folds, cfg.fold_seed)
    ref = sf.run_pub_folds(ds, attrs, folds, cfg, methods=("dpl",), write=False, fold_indices=[2])
    assert prov["fold"] == 2 and set(got["site"]) == set(folds[2])
    pd.testing.assert_frame_equal(got[["site", "nse", "kge"]], ref[["site", "nse", "kge"]].astype({"site": str}),
                                  check_exact=False, rtol=1e-6)
    with pytest.raises(ValueError, match="attribute_set"):
        portable.run_case3_pub_fold(tmp_path / "in.npz", 0, "12", tmp_path / "out")
    with pytest.raises(ValueError, match="fold must be"):
        portable.run_case3_pub_fold(tmp_path / "in.npz", 7, "8", tmp_path / "out")


def test_published_table():
    t = published_camels()
    assert {"system", "median_nse", "source", "same_split"} <= set(t.columns)
    same = published_camels(same_split_only=True)
    assert len(same) >= 3 and same["same_split"].all() and len(same) < len(t)
    assert t["median_nse"].between(0.5, 0.9).all() and t["source"].str.len().gt(5).all()
