"""Tests of dplpaper.metrics: hand values, peers (hydroeval, HydroErr), NaN masks, torch."""
import math

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from dplpaper import metrics as M

NAMES = ["bias", "corr", "rmse", "ubrmse", "nse", "kge", "kge2012"]


def _rand(seed=0, n_t=200, n_s=6):
    rng = np.random.default_rng(seed)
    obs = rng.gamma(2.0, 1.5, (n_t, n_s))
    sim = 0.8 * obs + rng.normal(0.3, 0.7, (n_t, n_s))
    return sim, obs


# --------------------------------------------------------------------------- hand values
def test_hand_values_unbiased_case():
    sim = np.array([1.0, 2.0, 3.0, 4.0])
    obs = np.array([1.0, 3.0, 2.0, 4.0])
    assert M.bias(sim, obs) == pytest.approx(0.0)
    assert M.rmse(sim, obs) == pytest.approx(math.sqrt(0.5))
    assert M.ubrmse(sim, obs) == pytest.approx(math.sqrt(0.5))
    assert M.nse(sim, obs) == pytest.approx(0.6)          # 1 - 0.5 / 1.25
    assert M.corr(sim, obs) == pytest.approx(0.8)         # cov 1 / var 1.25
    assert M.kge(sim, obs) == pytest.approx(0.8)          # r=.8, alpha=beta=1
    assert M.kge(sim, obs, variant="2012") == pytest.approx(0.8)


def test_hand_values_scaled_case():
    obs = np.array([1.0, 2.0, 3.0])
    sim = 2 * obs
    assert M.bias(sim, obs) == pytest.approx(2.0)
    assert M.rmse(sim, obs) == pytest.approx(math.sqrt(14 / 3))
    assert M.ubrmse(sim, obs) == pytest.approx(math.sqrt(2 / 3))
    assert M.nse(sim, obs) == pytest.approx(-6.0)          # 1 - 14 / 2
    assert M.corr(sim, obs) == pytest.approx(1.0)
    assert M.kge(sim, obs) == pytest.approx(1 - math.sqrt(2))   # alpha = beta = 2
    assert M.kge(sim, obs, variant="2012") == pytest.approx(0.0)  # gamma = 1, beta = 2


def test_perfect_and_degenerate():
    obs = np.array([[1.0, 5.0], [2.0, 5.0], [4.0, 5.0]])
    res = M.nse(obs, obs)
    assert res[0] == 1.0 and np.isnan(res[1])              # constant obs -> NSE undefined
    assert M.kge(obs, obs)[0] == pytest.approx(1.0)
    assert np.isnan(M.corr(obs, obs)[1])
    assert M.rmse(obs, obs).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="variant"):
        M.kge(obs, obs, variant="2010")
    with pytest.raises(ValueError, match="shapes differ"):
        M.nse(obs, obs[:2])


# --------------------------------------------------------------------------- peers
def test_agrees_with_hydroeval():
    he = pytest.importorskip("hydroeval")
    sim, obs = _rand(1)
    for j in range(sim.shape[1]):
        s, o = sim[:, j], obs[:, j]
        assert M.nse(s, o) == pytest.approx(float(np.ravel(he.nse(s, o))[0]), rel=1e-12)
        assert M.rmse(s, o) == pytest.approx(float(np.ravel(he.rmse(s, o))[0]), rel=1e-12)
        assert M.kge(s, o) == pytest.approx(float(np.ravel(he.kge(s, o)[0])[0]), rel=1e-12)
        assert M.kge(s, o, variant="2012") == pytest.approx(float(np.ravel(he.kgeprime(s, o)[0])[0]), rel=1e-12)


def test_agrees_with_hydroerr():
    he = pytest.importorskip("HydroErr")
    sim, obs = _rand(2)
    for j in range(sim.shape[1]):
        s, o = sim[:, j], obs[:, j]
        assert M.nse(s, o) == pytest.approx(he.nse(s, o), rel=1e-12)
        assert M.rmse(s, o) == pytest.approx(he.rmse(s, o), rel=1e-12)
        assert M.kge(s, o) == pytest.approx(he.kge_2009(s, o), rel=1e-12)
        assert M.kge(s, o, variant="2012") == pytest.approx(he.kge_2012(s, o), rel=1e-12)
        assert M.corr(s, o) == pytest.approx(np.corrcoef(s, o)[0, 1], rel=1e-12)


# --------------------------------------------------------------------------- NaN masks, axes
def test_nan_pairs_are_dropped():
    sim, obs = _rand(3, n_t=50, n_s=4)
    rng = np.random.default_rng(9)
    sim_n, obs_n = sim.copy(), obs.copy()
    sim_n[rng.random(sim.shape) < 0.2] = np.nan
    obs_n[rng.random(obs.shape) < 0.2] = np.nan
    for name in NAMES:
        got = M.METRICS[name](sim_n, obs_n)
        for j in range(4):
            ok = ~(np.isnan(sim_n[:, j]) | np.isnan(obs_n[:, j]))
            want = M.METRICS[name](sim[ok, j], obs[ok, j])
            assert got[j] == pytest.approx(want, rel=1e-12, abs=1e-14), (name, j)


def test_min_obs_gives_nan():
    obs = np.array([[1.0, 1.0], [2.0, np.nan], [3.0, np.nan], [5.0, 2.0]])
    sim = obs + 0.5
    for name in NAMES:                       # site 1 has exactly 2 valid pairs: still defined
        out = M.METRICS[name](sim, obs)
        assert np.isfinite(out).all(), name
    out = M.rmse(sim, obs, min_obs=3)
    assert np.isfinite(out[0]) and np.isnan(out[1])
    allnan = np.full((5, 1), np.nan)
    for name in NAMES:
        assert np.isnan(M.METRICS[name](allnan, allnan)[0])


def test_axis_and_ndim():
    sim, obs = _rand(4, n_t=30, n_s=3)
    np.testing.assert_allclose(M.nse(sim.T, obs.T, axis=1), M.nse(sim, obs))
    s3 = np.stack([sim, sim + 1]).transpose(1, 0, 2)      # [time, 2, site]
    o3 = np.stack([obs, obs]).transpose(1, 0, 2)
    out = M.kge(s3, o3)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out[0], M.kge(sim, obs))


def test_xarray():
    sim, obs = _rand(5, n_t=40, n_s=3)
    t = pd.date_range("2000-01-01", periods=40)
    sites = ["01013500", "01022500", "01030500"]
    da_s = xr.DataArray(sim.T, dims=("site", "time"), coords={"site": sites, "time": t})
    da_o = xr.DataArray(obs.T, dims=("site", "time"), coords={"site": sites, "time": t})
    out = M.nse(da_s, da_o)
    assert out.dims == ("site",)
    np.testing.assert_allclose(out.values, M.nse(sim, obs))
    tab = M.metrics_table(da_s, da_o)
    assert isinstance(tab, xr.Dataset)
    np.testing.assert_allclose(tab["kge"].values, M.kge(sim, obs))
    assert tab["n_obs"].values.tolist() == [40, 40, 40]


def test_metrics_table_dataframe():
    sim, obs = _rand(6, n_t=40, n_s=3)
    obs[:10, 1] = np.nan
    tab = M.metrics_table(sim, obs, sites=["a", "b", "c"])
    assert list(tab.columns) == NAMES + ["n_obs"]
    assert tab.loc["b", "n_obs"] == 30
    for name in NAMES:
        np.testing.assert_allclose(tab[name].values, M.METRICS[name](sim, obs))
    tab_t = M.metrics_table(torch.tensor(sim), torch.tensor(obs))
    np.testing.assert_allclose(tab_t.values, tab.values)


# --------------------------------------------------------------------------- torch
def _nan_data(seed=7, n_t=25, n_s=5):
    sim, obs = _rand(seed, n_t, n_s)
    rng = np.random.default_rng(seed)
    obs[rng.random(obs.shape) < 0.25] = np.nan
    obs[:, 3] = np.nan                    # all-NaN site
    obs[:, 4] = 2.0                       # constant obs site
    obs[::3, 4] = np.nan
    return sim, obs


def test_torch_equals_numpy():
    sim, obs = _nan_data()
    for name in NAMES:
        want = M.METRICS[name](sim, obs)
        got = M.METRICS[name](torch.tensor(sim), torch.tensor(obs)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14, equal_nan=True, err_msg=name)
    got32 = M.nse(torch.tensor(sim, dtype=torch.float32), torch.tensor(obs, dtype=torch.float32))
    assert got32.dtype == torch.float32
    np.testing.assert_allclose(got32.numpy(), M.nse(sim, obs), rtol=1e-4, equal_nan=True)


@pytest.mark.parametrize("name", NAMES)
def test_torch_gradients_finite_and_match_fd(name):
    sim, obs = _nan_data()
    s = torch.tensor(sim, requires_grad=True)
    o = torch.tensor(obs)
    f = M.METRICS[name]
    val = f(s, o)
    ok = ~torch.isnan(val)
    assert ok.sum() >= 2
    val[ok].sum().backward()
    g = s.grad
    assert torch.isfinite(g).all()
    assert (g[torch.isnan(o)] == 0).all()       # masked pairs get exactly zero gradient

    def scalar(x):
        v = f(x, o)
        return torch.where(ok, v, torch.zeros_like(v)).sum()

    assert torch.autograd.gradcheck(scalar, (torch.tensor(sim, requires_grad=True),), eps=1e-6, atol=1e-6)


def test_losses_values():
    sim, obs = _nan_data()
    obs[:, 4] = np.where(np.isnan(obs[:, 4]), np.nan, np.linspace(1, 3, obs.shape[0]))
    s, o = torch.tensor(sim), torch.tensor(obs)
    ok = ~(np.isnan(sim) | np.isnan(obs))
    err = (sim - obs)[ok]
    assert float(M.rmse_loss(s, o)) == pytest.approx(np.sqrt(np.mean(err ** 2)), rel=1e-12)
    assert float(M.rmse_loss(s, o, reduction="site")) == pytest.approx(np.nanmean(M.rmse(sim, obs)), rel=1e-12)
    assert float(M.nse_loss(s, o)) == pytest.approx(np.nanmean(1 - M.nse(sim, obs)), rel=1e-12)
    assert float(M.kge_loss(s, o)) == pytest.approx(np.nanmean(1 - M.kge(sim, obs)), rel=1e-12)
    std = np.array([1.0, 2.0, 0.5, 1.0, 3.0])
    w = np.broadcast_to(1 / (std + 0.1) ** 2, sim.shape)[ok]
    assert float(M.nse_loss(s, o, variant="nse_star", site_std=torch.tensor(std))) == pytest.approx(
        np.mean(err ** 2 * w), rel=1e-12)
    # rmse_logflow, written out independently
    tr = lambda q: np.log10(np.sqrt(np.clip(q, 0, None) + 1e-6) + 0.1)
    want = 0.75 * np.sqrt(np.mean(err ** 2)) + 0.25 * np.sqrt(np.mean((tr(sim) - tr(obs))[ok] ** 2))
    assert float(M.rmse_logflow_loss(s, o)) == pytest.approx(want, rel=1e-12)
    with pytest.raises(ValueError, match="unknown loss"):
        M.get_loss("mae")


@pytest.mark.parametrize("name", ["rmse", "nse", "kge", "rmse_logflow"])
def test_losses_gradients(name):
    sim, obs = _nan_data(11)
    s = torch.tensor(sim, requires_grad=True)
    o = torch.tensor(obs)
    loss = M.get_loss(name)(s, o)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()
    assert (s.grad[torch.isnan(o)] == 0).all()
    assert s.grad.abs().sum() > 0
    assert torch.autograd.gradcheck(lambda x: M.get_loss(name)(x, o), (torch.tensor(sim, requires_grad=True),),
                                    eps=1e-6, atol=1e-6)
    # nothing valid -> zero loss with zero gradient, not NaN
    s2 = torch.tensor(sim, requires_grad=True)
    l2 = M.get_loss(name)(s2, torch.full_like(o, float("nan")))
    l2.backward()
    assert float(l2.detach()) == 0.0 and (s2.grad == 0).all()


def test_perfect_fit_gradient_is_finite():
    obs = torch.tensor(np.linspace(1, 3, 10)[:, None])
    s = obs.clone().requires_grad_(True)
    for name in ["rmse", "kge", "rmse_logflow"]:
        s.grad = None
        M.get_loss(name)(s, obs).backward()
        assert torch.isfinite(s.grad).all(), name
