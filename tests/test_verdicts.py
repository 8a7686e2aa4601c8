"""Verdicts from paired per-site differences (bootstrap interval, signed-rank test)."""
import numpy as np
import pytest

from dplpaper.verdicts import THRESHOLDS, compare_paired


def _scores(gain, n=300, noise=0.1, seed=1):
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 0.8, n)
    return base + gain + noise * rng.standard_normal(n), base


def test_clear_gain_full_mode_is_yes():
    ours, base = _scores(0.08)
    r = compare_paired(ours, base, "full")
    assert r.verdict == "yes" and r.ci_low > THRESHOLDS["margin_skill"] and r.p_value < 1e-6
    assert r.ci_low < r.median_diff < r.ci_high and r.n == 300
    assert "gain +0.0" in r.summary()


def test_each_condition_downgrades_to_partly():
    ours, base = _scores(0.08)
    assert compare_paired(ours, base, "quick").verdict == "partly"
    r = compare_paired(ours, base, "full", baseline_converged=False)
    assert r.verdict == "partly" and "converge" in r.reason
    small, base2 = _scores(0.01)        # positive but within the margin
    r = compare_paired(small, base2, "full")
    assert r.verdict == "partly" and "interval" in r.reason
    # the rule that made 0.942 vs 0.941 a "yes" is gone: a tiny, noisy gain is not a win
    tiny, base3 = _scores(0.001, n=50, noise=0.05)
    assert compare_paired(tiny, base3, "full").verdict in ("partly", "no")


def test_no_when_not_better_and_nan_pairs_dropped():
    ours, base = _scores(-0.05)
    assert compare_paired(ours, base, "full").verdict == "no"
    o, b = _scores(0.1, n=20)
    o[3], b[7] = np.nan, np.nan
    assert compare_paired(o, b, "full").n == 18


def test_seeded_and_validated():
    ours, base = _scores(0.03)
    assert compare_paired(ours, base, "full", seed=4) == compare_paired(ours, base, "full", seed=4)
    with pytest.raises(ValueError, match="shape"):
        compare_paired(ours, base[:-1], "full")
    with pytest.raises(ValueError, match="mode"):
        compare_paired(ours, base, "fast")
    with pytest.raises(ValueError, match="at least 3"):
        compare_paired([1.0, np.nan], [0.0, 0.0], "full")


def test_noninferiority_within_the_margin():
    from dplpaper.verdicts import compare_noninferior

    rng = np.random.default_rng(3)
    base = rng.uniform(0.03, 0.08, 300)
    # ours 0.0005 worse everywhere (RMSE; negated scores): within 0.002 -> "yes" in full mode only
    close = compare_noninferior(-(base + 0.0005 + 1e-4 * rng.standard_normal(300)), -base, "full", 0.002)
    assert close.verdict == "yes" and close.median_diff < 0 and close.ci_low > -0.002
    assert compare_noninferior(-(base + 0.0005), -base, "quick", 0.002).verdict == "partly"
    assert compare_noninferior(-(base + 0.0005), -base, "full", 0.002, baseline_converged=False).verdict == "partly"
    # 0.005 worse: "no"; straddling the margin: "partly"
    assert compare_noninferior(-(base + 0.005), -base, "full", 0.002).verdict == "no"
    mixed = -(base + 0.0018 + 0.004 * rng.standard_normal(300))
    r = compare_noninferior(mixed, -base, "full", 0.002)
    assert r.verdict == "partly" and "reaches" in r.reason
    # better is fine too
    assert compare_noninferior(-(base - 0.003), -base, "full", 0.002).verdict == "yes"
