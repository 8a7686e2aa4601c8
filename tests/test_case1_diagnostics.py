"""legacy_check on a tiny twin: the surrogate and the legacy model score the same parameters."""
import numpy as np
import pytest

from dplpaper.experiments import case1_diagnostics as cd
from dplpaper.experiments import soil_moisture as sm


class _Run:
    def __init__(self, params):
        self.params = params

    def params_at(self, idx, data):
        return self.params[np.asarray(idx)]


def test_legacy_check_uses_the_legacy_model_and_counts_bounds(monkeypatch):
    rng = np.random.default_rng(0)
    T, S = 200, 6
    obs = rng.uniform(0.1, 0.4, (T, S))

    class Data:
        def __init__(self):
            self.obs = obs
            self.test_period = None

    data = Data()
    legacy = obs + 0.01
    monkeypatch.setattr(sm, "period_slice", lambda d, p: slice(None))
    monkeypatch.setattr(sm, "training_cells", lambda d, dens, cfg, m: np.arange(4))
    monkeypatch.setattr(sm, "simulate_surrogate", lambda d, s, idx, p, per, cfg: {"soil_moisture": obs[:, idx] + 0.03})
    monkeypatch.setattr(sm, "simulate_legacy", lambda d, idx, p, per: {"soil_moisture": legacy[:, idx]})
    params = np.full((S, 5), 0.5)
    params[:2, 0] = 0.0           # 2 of 20 values at a bound for the training cells 0-3
    out = cd.legacy_check(None, data, None, {"gz": _Run(params)}, "s8")
    row = out.loc["gz"]
    assert row["rmse_surrogate"] == pytest.approx(0.03) and row["rmse_legacy"] == pytest.approx(0.01)
    assert row["surrogate_error_rmse"] == pytest.approx(0.02)
    assert row["share_at_bounds"] == pytest.approx(2 / 20) and row["n_cells"] == 4
