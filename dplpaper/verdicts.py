"""Replication verdicts with statistics: paired differences across sites.

A claim "ours beats the baseline" is judged on the per-site differences ``ours - baseline`` (the
same basins or cells on both sides): their median, a bootstrap confidence interval of that median
(percentile, seeded) and a paired Wilcoxon signed-rank test. The verdict is

* ``"no"``: the median difference is not positive;
* ``"yes"``: full mode, the baseline's budget converged, the interval lies above ``margin`` and the
  signed-rank test rejects "no difference" at ``alpha``;
* ``"partly"`` otherwise, with the reason (quick mode, baseline not converged, interval reaching
  ``margin``, test not significant).

Thresholds live in :data:`THRESHOLDS`, one place for every notebook.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["THRESHOLDS", "PairedComparison", "compare_paired", "compare_noninferior", "ReferenceComparison",
           "compare_to_reference", "cap_quick"]

#: named thresholds of the verdicts (NSE/KGE units for the margins)
THRESHOLDS = {
    "alpha": 0.05,            # signed-rank test level and 1 - confidence of the bootstrap interval
    "margin_skill": 0.02,     # a "yes" on NSE/KGE needs the interval of the median gain above this
    "n_boot": 2000,           # bootstrap resamples
    "margin_case1": 0.0,      # Case 1 (soil moisture corr, m3/m3 errors): the paper's gains are small; a "yes"
                              # needs the paired interval above zero (a reliable gain of any size)
    "near_equal_sm": 0.005,   # m3/m3: "nearly identical" ending RMSE (the paper's Fig. 1e-f wording)
    "noninferior_sm": 0.002,  # m3/m3: full-mode Case 1, dPL's ending RMSE "within 0.002 of SCE-UA's or better"
}


@dataclass(frozen=True)
class PairedComparison:
    """Result of :func:`compare_paired` (differences are ``ours - baseline``)."""

    n: int
    median_ours: float
    median_baseline: float
    median_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    share_better: float
    verdict: str
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """One line for a claim's ``ours`` column: medians, the gain and its interval, p."""
        return (f"{self.median_ours:.2f} vs {self.median_baseline:.2f}: median gain {self.median_diff:+.3f} "
                f"[{self.ci_low:+.3f}, {self.ci_high:+.3f}], p={self.p_value:.1g}, n={self.n}")


def _downgrades(mode: str, baseline_converged: bool) -> list[str]:
    """Why a comparison that holds cannot be a "yes": quick mode, an unconverged baseline."""
    why = []
    if mode == "quick":
        why.append("quick mode (few sites, short budgets)")
    if not baseline_converged:
        why.append("the baseline's budget was not shown to converge")
    return why


def compare_paired(ours, baseline, mode: str, *, margin: float | None = None, baseline_converged: bool = True,
                   alpha: float | None = None, n_boot: int | None = None, seed: int = 0) -> PairedComparison:
    """Judge "ours beats the baseline" from per-site scores (higher is better, e.g. NSE or KGE).

    Args:
        ours, baseline: scores per site, the same sites in the same order (``[n]``); pairs with a
            NaN on either side are dropped.
        mode: ``"quick"`` or ``"full"``; quick mode never gives ``"yes"``.
        margin: the least median gain that counts (default ``THRESHOLDS["margin_skill"]``).
        baseline_converged: whether the baseline's budget converged (e.g.
            :func:`dplpaper.calibrate.sceua.budget_convergence`); unconverged baselines cannot be
            beaten with a "yes".
        alpha, n_boot: test level / interval coverage ``1 - alpha`` and bootstrap resamples.
        seed: seed of the bootstrap.
    """
    from scipy.stats import wilcoxon

    margin = THRESHOLDS["margin_skill"] if margin is None else float(margin)
    alpha = THRESHOLDS["alpha"] if alpha is None else float(alpha)
    n_boot = THRESHOLDS["n_boot"] if n_boot is None else int(n_boot)
    if mode not in ("quick", "full"):
        raise ValueError(f"mode must be 'quick' or 'full', got {mode!r}")
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"ours and baseline must be 1-D and of one shape, got {a.shape} and {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    n = int(a.size)
    if n < 3:
        raise ValueError(f"compare_paired needs at least 3 sites with both scores, got {n}")
    d = a - b
    med = float(np.median(d))
    rng = np.random.default_rng(seed)
    boots = np.median(d[rng.integers(0, n, size=(n_boot, n))], axis=1)
    lo, hi = (float(x) for x in np.quantile(boots, [alpha / 2, 1 - alpha / 2]))
    p = float(wilcoxon(d, zero_method="zsplit").pvalue) if np.any(d != 0) else 1.0
    if not med > 0:
        verdict, reason = "no", "the median difference is not positive"
    else:
        why = _downgrades(mode, baseline_converged)
        if not lo > margin:
            why.append(f"the interval of the median gain reaches {margin:g}")
        if not p < alpha:
            why.append(f"signed-rank p = {p:.2g} >= {alpha:g}")
        verdict, reason = ("partly", "; ".join(why)) if why else ("yes", "all conditions met")
    return PairedComparison(n=n, median_ours=float(np.median(a)), median_baseline=float(np.median(b)),
                            median_diff=med, ci_low=lo, ci_high=hi, p_value=p, share_better=float(np.mean(d > 0)),
                            verdict=verdict, reason=reason)



def compare_noninferior(ours, baseline, mode: str, margin: float, *, baseline_converged: bool = True,
                        alpha: float | None = None, n_boot: int | None = None, seed: int = 0) -> PairedComparison:
    """Judge "ours is as good as the baseline, within ``margin``, or better" (non-inferiority; higher
    is better, e.g. negated RMSE) from per-site scores paired as in :func:`compare_paired`:

    * ``"no"``: the median difference ``ours - baseline`` is below ``-margin``;
    * ``"yes"``: full mode, the baseline converged and the bootstrap interval of the median
      difference lies above ``-margin``;
    * ``"partly"`` otherwise (quick mode, baseline not converged, interval reaching ``-margin``).
    The signed-rank p-value is reported (of "no difference"), not used."""
    r = compare_paired(ours, baseline, mode, margin=0.0, baseline_converged=baseline_converged, alpha=alpha,
                       n_boot=n_boot, seed=seed)
    bar = -float(margin)
    if r.median_diff < bar:
        verdict, reason = "no", f"the median difference is below {bar:g}"
    else:
        why = _downgrades(mode, baseline_converged)
        if not r.ci_low > bar:
            why.append(f"the interval of the median difference reaches {bar:g}")
        verdict, reason = ("partly", "; ".join(why)) if why else ("yes", f"within {margin:g} or better")
    return PairedComparison(**{**r.as_dict(), "verdict": verdict, "reason": reason})


@dataclass(frozen=True)
class ReferenceComparison:
    """Result of :func:`compare_to_reference`: the median of our per-site values against a published number."""

    n: int
    median: float
    ci_low: float
    ci_high: float
    reference: float
    verdict: str
    reason: str

    def summary(self) -> str:
        return f"{self.median:.2f} [{self.ci_low:.2f}, {self.ci_high:.2f}] (n={self.n}) vs {self.reference:g}"


def compare_to_reference(values, reference: float, mode: str, *, margin: float = 0.0, alpha: float | None = None,
                         n_boot: int | None = None, seed: int = 0) -> ReferenceComparison:
    """Judge "our median is at least the published ``reference``" (higher is better) from per-site values:
    ``"yes"`` in full mode when the bootstrap interval of the median lies above ``reference - margin``;
    ``"no"`` when the median itself is below it; ``"partly"`` otherwise (quick mode, or an interval
    that reaches below)."""
    alpha = THRESHOLDS["alpha"] if alpha is None else float(alpha)
    n_boot = THRESHOLDS["n_boot"] if n_boot is None else int(n_boot)
    if mode not in ("quick", "full"):
        raise ValueError(f"mode must be 'quick' or 'full', got {mode!r}")
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size < 3:
        raise ValueError(f"compare_to_reference needs at least 3 finite values, got {v.size}")
    rng = np.random.default_rng(seed)
    boots = np.median(v[rng.integers(0, v.size, size=(n_boot, v.size))], axis=1)
    lo, hi = (float(x) for x in np.quantile(boots, [alpha / 2, 1 - alpha / 2]))
    med = float(np.median(v))
    bar = reference - margin
    if med < bar:
        verdict, reason = "no", f"the median is below {bar:g}"
    elif mode == "quick":
        verdict, reason = "partly", "quick mode (few sites, short budgets)"
    elif lo < bar:
        verdict, reason = "partly", f"the interval of the median reaches below {bar:g}"
    else:
        verdict, reason = "yes", "all conditions met"
    return ReferenceComparison(n=int(v.size), median=med, ci_low=lo, ci_high=hi, reference=float(reference),
                               verdict=verdict, reason=reason)


def cap_quick(verdict: str, mode: str) -> str:
    """A rule-based verdict (no per-site statistics) in quick mode counts as "partly" at most."""
    return "partly" if mode == "quick" and verdict == "yes" else verdict
