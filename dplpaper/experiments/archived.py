"""The archived full-mode runs of Case 2 (``book/full_runs/case2``) as per-basin scores, and the
claims they support, judged with paired statistics (:mod:`dplpaper.verdicts`).

The archive holds, per forcing, median tables (``medians_full_*.csv``: one row per method with
``median_nse``, ``n_seeds``, and for SCE-UA-based baselines ``budget_converged``) and per-basin
tables (``metrics_full_*.csv``: ``site, method, seed, nse, kge``). Methods are selected by their id
through :func:`dplpaper.experiments.streamflow.case2_method_labels`, never by parsing labels.
"""
from __future__ import annotations

import pandas as pd

from dplpaper.results import Claim, archived
from dplpaper.verdicts import compare_paired

__all__ = ["CASE2_ARCHIVES", "case2_archive", "case2_full_claims"]

#: archive stems of Case 2's full runs per forcing (``medians_<stem>.csv`` / ``metrics_<stem>.csv``)
CASE2_ARCHIVES = {"daymet": ("full_daymet", "full_daymet_dynamic", "full_daymet_baselines"),
                  "era5land": ("full_hbv", "full_vic")}

_NB = "20_case2_temporal"


def case2_archive(forcing: str) -> tuple[pd.DataFrame | None, dict[str, pd.Series]]:
    """``(medians, scores)`` of the archived Case 2 runs with ``forcing``: the median tables stacked
    (index: method label) and, per method label, each basin's test NSE (median over seeds)."""
    from dplpaper.experiments.streamflow import basin_medians

    if forcing not in CASE2_ARCHIVES:
        raise ValueError(f"forcing must be one of {list(CASE2_ARCHIVES)}, got {forcing!r}")
    meds, scores = [], {}
    for stem in CASE2_ARCHIVES[forcing]:
        m, _ = archived("case2", f"medians_{stem}.csv")
        if m is not None:
            meds.append(m.set_index("method"))
        t, _ = archived("case2", f"metrics_{stem}.csv")
        if t is not None:
            scores.update(basin_medians(t))
    return (pd.concat(meds) if meds else None), scores


def _converged(medians: pd.DataFrame, label: str) -> bool:
    """A baseline counts as converged only when its archive says so (missing: not shown, so no)."""
    if "budget_converged" not in medians or label not in medians.index:
        return False
    v = medians.loc[label, "budget_converged"]
    if isinstance(v, str):
        return v.strip() == "True"
    return False if pd.isna(v) else bool(v)


def _pair(scores: dict, a: str, b: str):
    sa, sb = scores[a], scores[b]
    sites = sa.index.intersection(sb.index)
    return sa.reindex(sites).values, sb.reindex(sites).values


def case2_full_claims() -> list[Claim]:
    """Claims of the archived full runs: the paper's claim (dPL beats the regionalization) per
    forcing and model, with paired per-basin statistics and the baseline's convergence; dPL against
    per-basin SCE-UA; and each learned method's median NSE (mean over seeds) as a reference row."""
    from dplpaper.experiments.streamflow import Case2Config, case2_method_labels

    labels = case2_method_labels(Case2Config.full())
    out: list[Claim] = []
    for forcing in CASE2_ARCHIVES:
        medians, scores = case2_archive(forcing)
        if medians is None:
            continue
        reg = labels["regionalization"]
        pairs = [(labels["dpl"], reg, "median test NSE, dPL HBV gA vs regionalization HBV (archived full run)",
                  "0.44 vs 0.32 (VIC)", "same model (HBV) on both sides"),
                 (labels["dpl"], labels["sceua"], "median test NSE, dPL HBV gA (16 components) vs per-basin SCE-UA "
                  "HBV (archived full run)", "n/a", "beyond the paper; SCE-UA calibrates one component"),
                 (labels["dpl_nmul1"], labels["sceua"], "median test NSE, dPL HBV gA (one component) vs per-basin "
                  "SCE-UA HBV (archived full run)", "n/a", "like for like: one HBV component on both sides"),
                 (labels["dpl_dynamic"], labels["sceua"], "median test NSE, dPL with dynamic parameters vs per-basin "
                  "SCE-UA HBV (archived full run)", "n/a", "beyond the paper")]
        if "vic_gz" in labels:
            pairs.append((labels["vic_gz"], reg, "median test NSE, dPL (VIC-style, gZ, surrogate) vs regionalization "
                          "(archived full run)", "0.44 (dPL VIC gZ) vs 0.32 (MPR)", "baseline regionalizes HBV"))
        for ours, base, claim, paper, note in pairs:
            if ours not in scores or base not in scores:
                continue
            conv = _converged(medians, base)
            r = compare_paired(*_pair(scores, ours, base), "full", baseline_converged=conv)
            out.append(Claim(case="Case 2", claim=claim, paper=paper, ours=r.summary(), replicated=r.verdict,
                             data="real", mode="full", notebook=_NB,
                             note=f"{forcing} forcing; {note}; baseline budget "
                                  f"{'converged' if conv else 'not shown converged'}; {r.reason}; book/full_runs/case2"))
        if forcing == "daymet":
            for key in ("dpl", "dpl_extra", "dpl_nmul1", "dpl_dynamic"):
                k = labels[key]
                if k in medians.index:
                    row = medians.loc[k]
                    sd = f", seed sd {row['seed_sd_nse']:.3f}" if pd.notna(row.get("seed_sd_nse")) else ""
                    out.append(Claim(case="Case 2", claim=f"median test NSE, {k} (archived full run)", paper="n/a",
                                     ours=f"{row['median_nse']:.3f} (mean of {int(row['n_seeds'])} seeds{sd})",
                                     replicated="n/a", data="real", mode="full", notebook=_NB,
                                     note=f"{int(row['n_basins'])} basins, Daymet; published on the same periods: "
                                          "dPL-HBV 0.75, LSTM 0.74 (dplpaper.experiments.published)"))
    return out
