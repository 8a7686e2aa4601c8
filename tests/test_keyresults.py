"""dplpaper.keyresults: key results compared with a declared tolerance, refreshed on request."""
import json
import math

import numpy as np
import pytest

from dplpaper.keyresults import CHECK_ENV, UPDATE_ENV, KeyResultMismatch, KeyResults, KeyResultWarning, compare


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """Expected files in tmp_path/expected, the results copy in tmp_path/results; refresh off."""
    monkeypatch.setenv("DPLPAPER_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv(UPDATE_ENV, raising=False)
    monkeypatch.setenv(CHECK_ENV, "1")   # as under pytest/nbval (notebooks/conftest.py)
    return tmp_path / "expected"


def test_outside_tests_a_mismatch_warns_and_goes_on(folder, monkeypatch):
    """make reproduce on another machine: a key result off by more than its tolerance is a warning."""
    monkeypatch.delenv(CHECK_ENV)
    _write(folder, "nb", {"nse": {"value": 0.42, "tol": 0.05, "why": ""}})
    with pytest.warns(KeyResultWarning, match="nse: got 0.5"):
        payload = _kr(folder, nse=0.5).check(verbose=False)
    assert payload["nse"]["value"] == 0.5


def _write(folder, name, payload):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(payload))


def _kr(folder, **values):
    """A KeyResults of notebook 'nb' with numbers at tol 0.05 and strings exact."""
    kr = KeyResults("nb", mode="quick", folder=folder)
    for k, v in values.items():
        kr.add(k, v, tol=None if isinstance(v, (str, bool)) else 0.05, why="test")
    return kr


def test_within_tolerance_passes(folder):
    _write(folder, "nb", {"nse": {"value": 0.42, "tol": 0.05, "why": ""}})
    payload = _kr(folder, nse=0.45).check(verbose=False)
    assert payload["nse"]["value"] == 0.45


def test_exactly_at_tolerance_passes(folder):
    _write(folder, "nb", {"nse": {"value": 0.4, "tol": 0.05, "why": ""}})
    _kr(folder, nse=0.45).check(verbose=False)   # 0.45 - 0.4 is 0.05000000000000002 in floating point


def test_outside_tolerance_fails_naming_key_and_both_values(folder):
    _write(folder, "nb", {"nse": {"value": 0.42, "tol": 0.05, "why": ""}, "kge": {"value": 0.5, "tol": 0.05, "why": ""}})
    with pytest.raises(KeyResultMismatch) as err:
        _kr(folder, nse=0.48, kge=0.51).check(verbose=False)
    msg = str(err.value)
    assert "nse" in msg and "0.48" in msg and "0.42" in msg and "0.05" in msg
    assert "kge" not in msg.replace("key result", "")   # only the failing key is listed
    assert "nb.json" in msg


def test_every_mismatch_is_listed(folder):
    _write(folder, "nb", {"a": {"value": 1.0, "tol": 0.1}, "b": {"value": 2.0, "tol": 0.1}})
    with pytest.raises(KeyResultMismatch, match=r"2 key result\(s\)") as err:
        _kr(folder, a=5.0, b=7.0).check(verbose=False)
    assert "a: got 5" in str(err.value) and "b: got 7" in str(err.value)


def test_committed_tolerance_counts_not_the_notebooks(folder):
    _write(folder, "nb", {"nse": {"value": 0.42, "tol": 0.01}})
    kr = KeyResults("nb", folder=folder)
    kr.add("nse", 0.45, tol=1.0)
    with pytest.raises(KeyResultMismatch, match="nse"):
        kr.check(verbose=False)


def test_nan_matches_only_nan(folder):
    _write(folder, "nb", {"epochs": {"value": float("nan"), "tol": 10}})
    _kr(folder, epochs=float("nan")).check(verbose=False)
    _kr(folder, epochs=np.float64("nan")).check(verbose=False)
    with pytest.raises(KeyResultMismatch, match="epochs: got 143"):
        _kr(folder, epochs=143.0).check(verbose=False)


def test_number_vs_expected_nan_and_nan_vs_expected_number_fail(folder):
    _write(folder, "nb", {"epochs": {"value": 170.0, "tol": 60}})
    with pytest.raises(KeyResultMismatch, match="epochs: got nan, expected 170"):
        _kr(folder, epochs=float("nan")).check(verbose=False)


def test_infinity_matches_infinity():
    assert compare("x", math.inf, {"value": math.inf, "tol": 0.0}) is None
    assert compare("x", -math.inf, {"value": math.inf, "tol": 1.0}) is not None
    assert compare("x", 1.0, {"value": math.inf, "tol": 1.0}) is not None


def test_strings_compare_exactly(folder):
    _write(folder, "nb", {"verdict": {"value": "partly", "tol": None}})
    _kr(folder, verdict="partly").check(verbose=False)
    _kr(folder, verdict=np.str_("partly")).check(verbose=False)
    with pytest.raises(KeyResultMismatch, match="verdict: got 'yes', expected 'partly'"):
        _kr(folder, verdict="yes").check(verbose=False)
    with pytest.raises(KeyResultMismatch, match="verdict"):
        _kr(folder, verdict="Partly").check(verbose=False)


def test_bools_compare_exactly_and_not_as_numbers():
    assert compare("b", True, {"value": True}) is None
    assert compare("b", np.bool_(False).item(), {"value": False}) is None
    assert compare("b", False, {"value": True}) is not None
    assert compare("b", 1, {"value": True, "tol": 0}) is not None
    assert compare("b", True, {"value": 1.0, "tol": 0.5}) is not None
    assert compare("s", "1", {"value": 1, "tol": 0}) is not None
    assert compare("n", None, {"value": 0.5, "tol": 1}) is not None
    assert compare("n", 0.5, {"value": None, "tol": None}) is not None
    assert compare("n", None, {"value": None, "tol": None}) is None


def test_integer_counts_with_zero_tolerance(folder):
    _write(folder, "nb", {"n_basins": {"value": 40, "tol": 0.0}})
    kr = KeyResults("nb", folder=folder)
    kr.add("n_basins", np.int64(40), tol=0)
    kr.check(verbose=False)
    kr = KeyResults("nb", folder=folder)
    kr.add("n_basins", 41, tol=0)
    with pytest.raises(KeyResultMismatch, match="n_basins: got 41, expected 40"):
        kr.check(verbose=False)


def test_missing_key_fails(folder):
    _write(folder, "nb", {"nse": {"value": 0.42, "tol": 0.05}, "kge": {"value": 0.5, "tol": 0.05}})
    with pytest.raises(KeyResultMismatch, match="kge: expected but not recorded"):
        _kr(folder, nse=0.42).check(verbose=False)


def test_extra_key_fails(folder):
    _write(folder, "nb", {"nse": {"value": 0.42, "tol": 0.05}})
    with pytest.raises(KeyResultMismatch, match="kge: recorded but not in nb.json"):
        _kr(folder, nse=0.42, kge=0.5).check(verbose=False)


def test_missing_expected_file_fails_and_says_how_to_refresh(folder):
    with pytest.raises(KeyResultMismatch, match="refresh-outputs"):
        _kr(folder, nse=0.42).check(verbose=False)


def test_corrupt_expected_file_names_the_file(folder):
    folder.mkdir(parents=True)
    (folder / "nb.json").write_text("{not json")
    with pytest.raises(KeyResultMismatch, match="nb.json"):
        _kr(folder, nse=0.42).check(verbose=False)


def test_update_mode_writes_the_file_and_then_it_passes(folder, monkeypatch):
    monkeypatch.setenv(UPDATE_ENV, "1")
    kr = KeyResults("nb", folder=folder)
    kr.add("nse", np.float32(0.5), tol=0.05, why="median after training")
    kr.add("verdict", "yes", why="rests on nse")
    kr.add("n_basins", 40, tol=0)
    kr.add("epochs", float("nan"), tol=60)
    kr.check(verbose=False)
    written = json.loads((folder / "nb.json").read_text())
    assert list(written) == ["nse", "verdict", "n_basins", "epochs"]
    assert written["nse"] == {"value": 0.5, "tol": 0.05, "why": "median after training"}
    assert written["verdict"] == {"value": "yes", "tol": None, "why": "rests on nse"}
    assert written["n_basins"]["value"] == 40 and written["n_basins"]["tol"] == 0.0
    assert math.isnan(written["epochs"]["value"])
    # update mode overwrites a stale file instead of comparing
    kr2 = KeyResults("nb", folder=folder)
    kr2.add("nse", 0.9, tol=0.05)
    kr2.check(verbose=False)
    assert list(json.loads((folder / "nb.json").read_text())) == ["nse"]
    # with the variable unset (or "0") the written file is compared
    monkeypatch.setenv(UPDATE_ENV, "0")
    kr3 = KeyResults("nb", folder=folder)
    kr3.add("nse", 0.93, tol=0.05)
    kr3.check(verbose=False)
    monkeypatch.delenv(UPDATE_ENV)
    kr4 = KeyResults("nb", folder=folder)
    kr4.add("nse", 0.5, tol=0.05)
    with pytest.raises(KeyResultMismatch):
        kr4.check(verbose=False)


def test_full_mode_never_compares_nor_writes_the_expected_file(folder, tmp_path, monkeypatch):
    _write(folder, "nb", {"nse": {"value": 0.42, "tol": 0.05}})
    kr = KeyResults("nb", mode="full", folder=folder)
    kr.add("nse", 0.9, tol=0.05)
    kr.add("extra", "anything")
    kr.check(verbose=False)                        # no mismatch raised
    monkeypatch.setenv(UPDATE_ENV, "1")
    kr.check(verbose=False)                        # and no refresh from a full-mode run
    assert json.loads((folder / "nb.json").read_text()) == {"nse": {"value": 0.42, "tol": 0.05}}
    copy = tmp_path / "results" / "key_results" / "nb.full.json"
    assert json.loads(copy.read_text())["nse"]["value"] == 0.9


def test_quick_mode_also_writes_a_copy_to_results(folder, tmp_path):
    _write(folder, "nb", {"nse": {"value": 0.42, "tol": 0.05}})
    _kr(folder, nse=0.43).check(verbose=False)
    copy = tmp_path / "results" / "key_results" / "nb.quick.json"
    assert json.loads(copy.read_text())["nse"]["value"] == 0.43


def test_a_number_needs_a_finite_non_negative_tolerance(folder):
    kr = KeyResults("nb", folder=folder)
    with pytest.raises(ValueError, match="nse.*tolerance"):
        kr.add("nse", 0.42)
    with pytest.raises(ValueError, match="tolerance"):
        kr.add("nse", 0.42, tol=-0.1)
    with pytest.raises(ValueError, match="tolerance"):
        kr.add("nse", 0.42, tol=float("nan"))
    with pytest.raises(ValueError, match="tolerance"):
        kr.add("nse", 0.42, tol=math.inf)
    with pytest.raises(ValueError, match="tolerance"):
        kr.add("n", np.int64(3))
    kr.add("verdict", "yes")                       # strings and bools need none
    kr.add("flag", np.bool_(True))
    assert kr.entries["flag"].value is True and kr.entries["flag"].tol is None


def test_names_are_snake_case_and_unique(folder):
    kr = KeyResults("nb", folder=folder)
    kr.add("median_nse_s8", 0.4, tol=0.05)
    with pytest.raises(ValueError, match="twice"):
        kr.add("median_nse_s8", 0.4, tol=0.05)
    for bad in ("Median NSE", "nse-gz", "", "nse.5"):
        with pytest.raises(ValueError, match="snake_case"):
            kr.add(bad, 0.4, tol=0.05)


def test_non_scalars_are_refused_with_the_key_name(folder):
    kr = KeyResults("nb", folder=folder)
    with pytest.raises(TypeError, match="curve"):
        kr.add("curve", np.array([0.1, 0.2]), tol=0.05)
    with pytest.raises(TypeError, match="table"):
        kr.add("table", {"a": 1}, tol=0.05)
    kr.add("one", np.array([0.1]), tol=0.05)       # a one-element array is a scalar
    assert kr.entries["one"].value == pytest.approx(0.1)


def test_table_is_printed(folder, capsys):
    _write(folder, "nb", {"nse": {"value": 0.42, "tol": 0.05}, "verdict": {"value": "yes", "tol": None}})
    _kr(folder, nse=0.4213, verdict="yes").check()
    out = capsys.readouterr().out
    assert "nse" in out and "0.4213 +/- 0.05" in out and "verdict" in out and "yes" in out


def test_audit_ranks_shift_against_tolerance(folder, tmp_path, capsys, monkeypatch):
    from dplpaper.keyresults import _main, audit
    _write(folder, "nb", {"nse": {"value": 0.42, "tol": 0.05}, "kge": {"value": 0.30, "tol": 0.1},
                          "verdict": {"value": "yes", "tol": None}, "gap": {"value": float("nan"), "tol": 0.1},
                          "gone": {"value": 1.0, "tol": 0.1}})
    run = tmp_path / "run"
    _write(run, "nb.quick", {"nse": {"value": 0.49}, "kge": {"value": 0.31}, "verdict": {"value": "partly"},
                             "gap": {"value": float("nan")}})
    rows = audit(run, folder=folder)
    by = {r.name: r for r in rows}
    assert set(by) == {"nse", "kge", "verdict", "gap"}            # a key the run lacks is left to check()
    assert by["verdict"].ratio == float("inf") and by["gap"].ratio == 0.0
    assert by["nse"].shift == pytest.approx(0.07) and by["nse"].ratio == pytest.approx(1.4)
    assert by["kge"].ratio == pytest.approx(0.1)
    assert [r.name for r in rows][:2] == ["verdict", "nse"]          # largest first
    monkeypatch.setattr("dplpaper.keyresults.EXPECTED_DIR", folder)
    assert _main(["audit", str(run)]) == 1                          # two keys outside their tolerance
    out = capsys.readouterr().out
    assert "1.40  nb  nse" in out and "2 outside their tolerance" in out and "kge" not in out


def test_recorded_spread_widens_the_tolerance_at_refresh(folder, tmp_path, monkeypatch):
    """A measured shift between floating-point paths survives refreshes: the refresh writes
    tol = max(declared, 3 x shift) with the reason, and the check then holds a value that far off."""
    from dplpaper.keyresults import SPREAD_FILE, audit, read_spread, record_spread
    _write(folder, "nb", {"nse": {"value": 0.42, "tol": 0.05}, "kge": {"value": 0.30, "tol": 0.05},
                          "flag": {"value": "yes", "tol": None}})
    run = tmp_path / "run"
    _write(run, "nb.quick", {"nse": {"value": 0.49}, "kge": {"value": 0.30}, "flag": {"value": "no"}})
    data = record_spread(audit(run, folder=folder), "test paths", folder=folder)
    assert data == {"nb": {"nse": {"shift": 0.07, "seen": "test paths"}}}     # no zero shift, no flip
    record_spread(audit(run, folder=folder), "again", folder=folder)           # same shift: first record kept
    assert read_spread(folder)["nb"]["nse"]["seen"] == "test paths"
    monkeypatch.setenv(UPDATE_ENV, "1")
    _kr(folder, nse=0.42, kge=0.30, flag="yes").check()
    written = json.loads((folder / "nb.json").read_text())
    assert written["nse"]["tol"] == pytest.approx(0.21) and "0.07 measured" in written["nse"]["why"]
    assert written["kge"]["tol"] == 0.05 and written["kge"]["why"] == "test"
    monkeypatch.delenv(UPDATE_ENV)
    _kr(folder, nse=0.62, kge=0.30, flag="yes").check()                        # 0.20 off: inside 0.21
    with pytest.raises(KeyResultMismatch, match="nse"):
        _kr(folder, nse=0.64, kge=0.30, flag="yes").check()
    from dplpaper.keyresults import _main                                      # widen: what a refresh writes
    (folder / "nb.json").write_text(json.dumps({"nse": {"value": 0.42, "tol": 0.05, "why": "w"}}))
    assert _main(["widen", "--folder", str(folder)]) == 0
    assert json.loads((folder / "nb.json").read_text())["nse"]["tol"] == pytest.approx(0.21)
    _main(["widen", "--folder", str(folder)])                                  # idempotent
    assert json.loads((folder / "nb.json").read_text())["nse"]["why"].count("measured") == 1
    (folder / SPREAD_FILE).write_text("[1]")
    with pytest.raises(ValueError, match=SPREAD_FILE):
        read_spread(folder)


def test_shifts_are_read_from_a_ci_log(folder, monkeypatch):
    """What `issues ci` shows of a failed run (ANSI colour, a "> " prefix) becomes recorded spreads."""
    from dplpaper.keyresults import _main, read_spread, rows_from_log
    log = ("> \x1b[31mKeyResultMismatch\x1b[39m: 20_case2_temporal: 2 key result(s) differ from /x/20_case2_temporal.json:\n"
           ">   dpl_vic_gz_surrogate_median_nse: got 0.558178, expected 0.506518 +/- 0.05 (off by 0.0517)\n"
           ">   verdict_x: got 'no', expected 'yes' (exact)\n"
           "> 13_case1_parameter_maps: 1 key result(s) differ from /x/13.json:\n"
           ">   morans_i_infilt_sceua: got 0.131346, expected -0.0333592 +/- 0.15 (off by 0.165)\n")
    rows = rows_from_log(log)
    assert [(r.notebook, r.name) for r in rows] == [("20_case2_temporal", "dpl_vic_gz_surrogate_median_nse"),
                                                    ("13_case1_parameter_maps", "morans_i_infilt_sceua")]
    assert rows[1].shift == pytest.approx(0.1647052) and rows[0].ratio == pytest.approx(0.05166 / 0.05)
    path = folder.parent / "ci.txt"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(log)
    monkeypatch.setattr("dplpaper.keyresults.EXPECTED_DIR", folder)
    assert _main(["record-log", str(path), "--seen", "CI log"]) == 0
    assert read_spread(folder)["13_case1_parameter_maps"]["morans_i_infilt_sceua"] == {"shift": 0.1647, "seen": "CI log"}
