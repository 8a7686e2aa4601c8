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
    assert c.replicated == "yes" and "converged" in c.note and c.mode == "full" and "gain +0.11" in c.ours
    ref = claims[f"median test NSE, {lab['dpl']} (archived full run)"]
    assert ref.replicated == "n/a" and "mean of 3 seeds" in ref.ours
    # the converged flag missing or False: never a "yes"
    medians, _ = ar.case2_archive("daymet")
    assert not ar._converged(medians, lab["sceua"]) and ar._converged(medians, lab["regionalization"])
    assert not ar._converged(medians, "unknown method")
