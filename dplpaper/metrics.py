"""Evaluation metrics and training losses (paper equations 10-15).

Every metric is computed **per site over time**. Inputs may be

* NumPy arrays ``[time, site]`` (time on ``axis=0`` by default; any ``axis`` works, a 1-D
  array is one site and gives a scalar), computed in float64;
* ``xarray.DataArray`` objects with a ``"time"`` dimension (result keeps the other dims);
* ``torch.Tensor`` ``[time, site]`` (``axis=0`` by default): differentiable, in the tensor's
  dtype and device.

NaN handling (the same for every backend): a time step counts only when *both* ``sim`` and
``obs`` are not NaN; the other pairs are dropped. A site with fewer than ``min_obs`` valid
pairs (default 2) gets NaN, explicitly and on purpose. A metric whose denominator is zero at a
site (zero variance of ``obs`` for NSE; zero variance of either series for the correlation
and KGE; zero mean for KGE's bias ratio) is also NaN there. With torch these NaN values are
produced by ``torch.where`` from finite placeholders, so gradients stay finite: masked
entries get exactly zero gradient, and NaN in ``obs`` never enters a multiplication.

Definitions (``s`` simulated, ``o`` observed, means and standard deviations over the valid
pairs of one site, population form with divisor ``n``):

* ``bias   = mean(s - o)``                                   (eq. 10)
* ``ubrmse = sqrt(mean(((s - mean s) - (o - mean o))**2))``  (eq. 11)
* ``corr   = cov(s, o) / (std s * std o)`` (Pearson)         (eq. 12)
* ``nse    = 1 - sum((s - o)**2) / sum((o - mean o)**2)``    (eq. 13)
* ``rmse   = sqrt(mean((s - o)**2))``
* ``kge    = 1 - sqrt((r - 1)**2 + (a - 1)**2 + (b - 1)**2)`` with ``r = corr``,
  ``b = mean s / mean o`` and, for ``variant="2009"`` (default, Gupta et al. 2009)
  ``a = std s / std o``; for ``variant="2012"`` (Kling et al. 2012, KGE')
  ``a = (std s / mean s) / (std o / mean o)``, the ratio of coefficients of variation.
  Note that the paper's equation 15 writes the variability ratio as the ratio of
  coefficients of variation, i.e. the 2012 form.

Losses (torch only, used by :mod:`dplpaper.train`; each returns a 0-d tensor, ignores NaN obs
and sites without enough data, and is zero with zero gradient when nothing is valid):
:func:`rmse_loss`, :func:`nse_loss`, :func:`kge_loss`, :func:`rmse_logflow_loss`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import torch
import xarray as xr

__all__ = [
    "bias", "corr", "rmse", "ubrmse", "nse", "kge", "metrics_table", "METRICS",
    "rmse_loss", "nse_loss", "kge_loss", "rmse_logflow_loss", "LOSSES", "get_loss",
]


# ----------------------------------------------------------------------------- backend helpers
def _xp(x):
    return torch if isinstance(x, torch.Tensor) else np


def _where(xp, cond, a, b):
    return xp.where(cond, a, b)


def _safe_div(xp, num, den, ok):
    """``num / den`` where ``ok``, NaN elsewhere; the denominator is replaced by 1 where not
    ``ok`` *before* dividing, so no inf/NaN reaches the backward pass."""
    den_s = xp.where(ok, den, xp.ones_like(den))
    return xp.where(ok, num / den_s, xp.full_like(num, float("nan")))


def _safe_sqrt(xp, x):
    """``sqrt(x)`` for ``x > 0``, 0 for ``x <= 0``; gradient zero (not inf) at 0."""
    pos = x > 0
    root = xp.sqrt(xp.where(pos, x, xp.ones_like(x)))
    return xp.where(pos, root, xp.zeros_like(x))


def _prepare(sim, obs, axis):
    """Check shapes, move time to axis 0 (numpy -> float64). Returns (xp, sim, obs)."""
    if isinstance(sim, torch.Tensor) != isinstance(obs, torch.Tensor):
        raise TypeError("sim and obs must both be torch tensors or both be array-likes "
                        f"(got {type(sim).__name__} and {type(obs).__name__})")
    if isinstance(sim, torch.Tensor):
        if sim.shape != obs.shape:
            raise ValueError(f"sim and obs shapes differ: {tuple(sim.shape)} vs {tuple(obs.shape)}")
        if not sim.is_floating_point():
            sim = sim.double()
        obs = obs.to(sim.dtype)
        return torch, torch.movedim(sim, axis, 0), torch.movedim(obs, axis, 0)
    sim = np.asarray(sim, dtype=np.float64)
    obs = np.asarray(obs, dtype=np.float64)
    if sim.shape != obs.shape:
        raise ValueError(f"sim and obs shapes differ: {sim.shape} vs {obs.shape}")
    if sim.ndim == 0:
        raise ValueError("metrics need at least one (time) axis")
    return np, np.moveaxis(sim, axis, 0), np.moveaxis(obs, axis, 0)


def _moments(xp, sim, obs, min_obs):
    """Masked per-site moments; time is axis 0. All outputs have the site shape."""
    mask = ~(xp.isnan(sim) | xp.isnan(obs))
    zero = xp.zeros_like(sim)
    n = mask.sum(0)
    n = n.to(sim.dtype) if xp is torch else n.astype(sim.dtype)
    ok = n >= max(int(min_obs), 1)
    n_safe = xp.where(ok, n, xp.ones_like(n))
    s0 = xp.where(mask, sim, zero)
    o0 = xp.where(mask, obs, zero)
    mu_s = s0.sum(0) / n_safe
    mu_o = o0.sum(0) / n_safe
    ds = xp.where(mask, sim - mu_s, zero)
    do = xp.where(mask, obs - mu_o, zero)
    err = xp.where(mask, sim - obs, zero)
    return dict(
        ok=ok, n=n, mu_s=mu_s, mu_o=mu_o,
        var_s=(ds * ds).sum(0) / n_safe,
        var_o=(do * do).sum(0) / n_safe,
        cov=(ds * do).sum(0) / n_safe,
        mse=(err * err).sum(0) / n_safe,
        ubmse=((ds - do) ** 2).sum(0) / n_safe,
        abs_s=xp.abs(s0).sum(0) / n_safe,
        abs_o=xp.abs(o0).sum(0) / n_safe,
    )


#: a mean (standard deviation) smaller than this many machine epsilons times the series' mean
#: absolute value counts as zero in KGE: rounding noise, not a ratio to divide by
_ZERO_REL = 1000.0


def _nonzero(xp, x, scale):
    """``|x| > _ZERO_REL * eps * scale`` (eps of x's dtype): x is not rounding noise of zero."""
    eps = float(torch.finfo(x.dtype).eps) if xp is torch else float(np.finfo(np.asarray(x).dtype).eps)
    return xp.abs(x) > _ZERO_REL * eps * scale


def _nan_where_not(xp, ok, x):
    return xp.where(ok, x, xp.full_like(x, float("nan")))


def _finish(xp, out):
    if xp is np and out.ndim == 0:
        return float(out)
    return out


# ----------------------------------------------------------------------------- core metrics
def _bias(xp, m):
    return _nan_where_not(xp, m["ok"], m["mu_s"] - m["mu_o"])


def _rmse(xp, m):
    return _nan_where_not(xp, m["ok"], _safe_sqrt(xp, m["mse"]))


def _ubrmse(xp, m):
    return _nan_where_not(xp, m["ok"], _safe_sqrt(xp, m["ubmse"]))


def _corr(xp, m):
    ok = m["ok"] & (m["var_s"] > 0) & (m["var_o"] > 0)
    den = _safe_sqrt(xp, m["var_s"]) * _safe_sqrt(xp, m["var_o"])
    return _safe_div(xp, m["cov"], den, ok)


def _nse(xp, m):
    ok = m["ok"] & (m["var_o"] > 0)
    return 1.0 - _safe_div(xp, m["mse"], m["var_o"], ok)


def _kge(xp, m, variant):
    # zero mean or zero variance, also when rounding leaves ~1e-17 instead of 0: NaN, not noise
    sd_s, sd_o = _safe_sqrt(xp, m["var_s"]), _safe_sqrt(xp, m["var_o"])
    ok = m["ok"] & _nonzero(xp, sd_s, m["abs_s"]) & _nonzero(xp, sd_o, m["abs_o"]) \
        & _nonzero(xp, m["mu_o"], m["abs_o"])
    r = _corr(xp, m)
    beta = _safe_div(xp, m["mu_s"], m["mu_o"], ok)
    if variant == "2009":
        alpha = _safe_div(xp, sd_s, sd_o, ok)
    elif variant == "2012":
        ok = ok & _nonzero(xp, m["mu_s"], m["abs_s"])
        alpha = _safe_div(xp, sd_s * m["mu_o"], sd_o * m["mu_s"], ok)
    else:
        raise ValueError(f"kge variant must be '2009' or '2012', got {variant!r}")
    ed2 = (xp.where(ok, r, xp.zeros_like(r)) - 1) ** 2 \
        + (xp.where(ok, alpha, xp.zeros_like(alpha)) - 1) ** 2 \
        + (xp.where(ok, beta, xp.zeros_like(beta)) - 1) ** 2
    return _nan_where_not(xp, ok, 1.0 - _safe_sqrt(xp, ed2))


def _dispatch(core: Callable, sim, obs, axis, min_obs, **kw):
    if isinstance(sim, xr.DataArray) or isinstance(obs, xr.DataArray):
        dim = "time" if axis == 0 else axis
        if not isinstance(dim, str):
            raise ValueError("for xarray inputs pass axis='time' (a dimension name) or leave the default")
        sim_a, obs_a = xr.align(xr.DataArray(sim) if not isinstance(sim, xr.DataArray) else sim,
                                obs if isinstance(obs, xr.DataArray) else xr.DataArray(obs),
                                join="exact")
        return xr.apply_ufunc(
            lambda s, o: _dispatch(core, s, o, -1, min_obs, **kw),
            sim_a, obs_a, input_core_dims=[[dim], [dim]], dask="forbidden")
    xp, s, o = _prepare(sim, obs, axis)
    return _finish(xp, core(xp, _moments(xp, s, o, min_obs), **kw))


def bias(sim, obs, axis=0, min_obs: int = 2):
    """Mean error ``mean(sim - obs)`` per site (eq. 10), units of the data."""
    return _dispatch(_bias, sim, obs, axis, min_obs)


def rmse(sim, obs, axis=0, min_obs: int = 2):
    """Root-mean-square error per site, units of the data."""
    return _dispatch(_rmse, sim, obs, axis, min_obs)


def ubrmse(sim, obs, axis=0, min_obs: int = 2):
    """Unbiased RMSE per site (eq. 11): RMSE of the anomalies about each series' mean."""
    return _dispatch(_ubrmse, sim, obs, axis, min_obs)


def corr(sim, obs, axis=0, min_obs: int = 2):
    """Pearson correlation per site (eq. 12), dimensionless."""
    return _dispatch(_corr, sim, obs, axis, min_obs)


def nse(sim, obs, axis=0, min_obs: int = 2):
    """Nash-Sutcliffe efficiency per site (eq. 13), dimensionless, 1 is perfect."""
    return _dispatch(_nse, sim, obs, axis, min_obs)


def kge(sim, obs, axis=0, min_obs: int = 2, variant: str = "2009"):
    """Kling-Gupta efficiency per site (eqs. 14-15); ``variant`` "2009" (Gupta et al. 2009,
    variability ratio ``std s / std o``) or "2012" (Kling et al. 2012, ratio of coefficients
    of variation, the form written in the paper's eq. 15)."""
    return _dispatch(_kge, sim, obs, axis, min_obs, variant=variant)


METRICS: dict[str, Callable] = {
    "bias": bias, "corr": corr, "rmse": rmse, "ubrmse": ubrmse, "nse": nse, "kge": kge,
    "kge2012": lambda s, o, axis=0, min_obs=2: kge(s, o, axis=axis, min_obs=min_obs, variant="2012"),
}


def metrics_table(sim, obs, axis=0, min_obs: int = 2, sites=None):
    """All metrics per site, plus ``n_obs`` (number of valid pairs).

    numpy / torch ``[time, site]`` -> ``pandas.DataFrame`` indexed by site (``sites`` labels
    or 0..n-1), columns ``bias, corr, rmse, ubrmse, nse, kge, kge2012, n_obs``.
    ``xarray.DataArray`` with dim ``"time"`` -> ``xarray.Dataset`` with one variable per metric.
    """
    if isinstance(sim, xr.DataArray) or isinstance(obs, xr.DataArray):
        out = {k: f(sim, obs, min_obs=min_obs) for k, f in METRICS.items()}
        valid = (sim.notnull() & obs.notnull()).sum("time")
        out["n_obs"] = valid
        return xr.Dataset(out)
    if isinstance(sim, torch.Tensor):
        sim = sim.detach().cpu().double().numpy()
    if isinstance(obs, torch.Tensor):
        obs = obs.detach().cpu().double().numpy()
    sim = np.moveaxis(np.asarray(sim, dtype=np.float64), axis, 0)
    obs = np.moveaxis(np.asarray(obs, dtype=np.float64), axis, 0)
    if sim.ndim == 1:
        sim, obs = sim[:, None], obs[:, None]
    if sim.ndim != 2:
        raise ValueError(f"metrics_table expects [time, site] arrays, got shape {sim.shape}")
    cols = {k: np.atleast_1d(f(sim, obs, min_obs=min_obs)) for k, f in METRICS.items()}
    cols["n_obs"] = (~(np.isnan(sim) | np.isnan(obs))).sum(0)
    index = pd.Index(sites if sites is not None else np.arange(sim.shape[1]), name="site")
    return pd.DataFrame(cols, index=index)


# ----------------------------------------------------------------------------- torch losses
def _check_torch(sim, obs):
    if not (isinstance(sim, torch.Tensor) and isinstance(obs, torch.Tensor)):
        raise TypeError("losses take torch tensors [time, site]")
    if sim.shape != obs.shape:
        raise ValueError(f"sim and obs shapes differ: {tuple(sim.shape)} vs {tuple(obs.shape)}")


def _zero_like_graph(sim):
    """A 0-d zero that stays connected to ``sim``'s graph (gradient exactly zero)."""
    return torch.where(torch.isnan(sim), torch.zeros_like(sim), sim).sum() * 0.0


def _pooled_rmse(sim, obs):
    mask = ~(torch.isnan(sim) | torch.isnan(obs))
    n = mask.sum()
    if int(n) == 0:
        return _zero_like_graph(sim)
    err = torch.where(mask, sim - torch.where(mask, obs, torch.zeros_like(obs)), torch.zeros_like(sim))
    mse = (err * err).sum() / n
    return _safe_sqrt(torch, mse)


def _site_mean(values, ok, sim):
    if int(ok.sum()) == 0:
        return _zero_like_graph(sim)
    v = torch.where(ok, values, torch.zeros_like(values))
    return v.sum() / ok.sum()


def rmse_loss(sim, obs, reduction: str = "pooled", min_obs: int = 2, **_):
    """RMSE loss over a batch ``[time, site]``.

    ``reduction="pooled"`` (default, the domain-wide loss): one RMSE over all valid
    (time, site) pairs of the batch. ``"site"``: mean over sites of the per-site RMSE
    (sites with fewer than ``min_obs`` pairs are left out).
    """
    _check_torch(sim, obs)
    if reduction == "pooled":
        return _pooled_rmse(sim, obs)
    if reduction == "site":
        m = _moments(torch, sim, obs, min_obs)
        return _site_mean(_safe_sqrt(torch, m["mse"]), m["ok"], sim)
    raise ValueError(f"reduction must be 'pooled' or 'site', got {reduction!r}")


def nse_loss(sim, obs, variant: str = "site", site_std=None, eps: float = 0.1, min_obs: int = 2, **_):
    """NSE-based loss over a batch ``[time, site]``.

    ``variant="site"`` (default): mean over sites of ``1 - NSE`` = ``sum (s-o)^2 / sum (o-mean o)^2``
    with the batch's own obs mean and variance at each site (sites with zero obs variance or
    fewer than ``min_obs`` pairs are left out).

    ``variant="nse_star"``: the normalized squared error of Kratzert et al. (2019, HESS,
    "NSE*"): mean over all valid pairs of ``(s - o)^2 / (std_site + eps)^2``, where ``std_site``
    ``[site]`` is each site's obs standard deviation over the whole training period (pass it as
    ``site_std``; the trainer does) — computed from the batch when not given — and ``eps``
    (default 0.1, in the data's units) keeps low-variance sites from dominating.
    """
    _check_torch(sim, obs)
    if variant == "site":
        m = _moments(torch, sim, obs, min_obs)
        ok = m["ok"] & (m["var_o"] > 0)
        return _site_mean(_safe_div(torch, m["mse"], m["var_o"], ok), ok, sim)
    if variant == "nse_star":
        if site_std is None:
            m = _moments(torch, obs, obs, min_obs)
            site_std = _safe_sqrt(torch, m["var_o"])
        site_std = torch.as_tensor(site_std, dtype=sim.dtype, device=sim.device)
        site_std = torch.where(torch.isnan(site_std), torch.zeros_like(site_std), site_std)
        mask = ~(torch.isnan(sim) | torch.isnan(obs))
        if int(mask.sum()) == 0:
            return _zero_like_graph(sim)
        err = torch.where(mask, sim - torch.where(mask, obs, torch.zeros_like(obs)), torch.zeros_like(sim))
        w = 1.0 / (site_std + eps) ** 2
        return (err * err * w).sum() / mask.sum()
    raise ValueError(f"nse_loss variant must be 'site' or 'nse_star', got {variant!r}")


def kge_loss(sim, obs, variant: str = "2009", min_obs: int = 2, **_):
    """Mean over sites of ``1 - KGE`` (sites where KGE is undefined are left out)."""
    _check_torch(sim, obs)
    m = _moments(torch, sim, obs, min_obs)
    k = _kge(torch, m, variant)
    ok = ~torch.isnan(k)
    return _site_mean(1.0 - torch.where(ok, k, torch.zeros_like(k)), ok, sim)


def rmse_logflow_loss(sim, obs, alpha: float = 0.25, beta: float = 1e-6, **_):
    """Combined streamflow loss: ``(1 - alpha) * RMSE(Q) + alpha * RMSE(log10(sqrt(Q + beta) + 0.1))``.

    Both RMSEs are pooled over the valid (time, site) pairs of the batch; ``Q`` (mm/day) is
    clipped at 0 before the transform. The square-root-then-log transform weights low flows
    (recessions, baseflow) that a plain RMSE on flow ignores; this convex combination with
    ``alpha = 0.25`` is, to our reading, the loss used in the MHPI group's later dPL streamflow
    studies (e.g. Feng et al., 2022, Water Resources Research), written here from that
    description. ``beta`` keeps the square root's gradient finite at zero flow.
    """
    _check_torch(sim, obs)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")

    def tr(q):
        return torch.log10(torch.sqrt(torch.clamp(q, min=0.0) + beta) + 0.1)

    obs_t = torch.where(torch.isnan(obs), obs, tr(torch.where(torch.isnan(obs), torch.zeros_like(obs), obs)))
    sim_t = tr(torch.where(torch.isnan(sim), torch.zeros_like(sim), sim))
    sim_t = torch.where(torch.isnan(sim), sim, sim_t)
    return (1.0 - alpha) * _pooled_rmse(sim, obs) + alpha * _pooled_rmse(sim_t, obs_t)


LOSSES: dict[str, Callable] = {
    "rmse": rmse_loss, "nse": nse_loss, "kge": kge_loss, "rmse_logflow": rmse_logflow_loss,
}


def get_loss(name: str) -> Callable:
    """Loss function by name (``rmse``, ``nse``, ``kge``, ``rmse_logflow``)."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; known: {sorted(LOSSES)}") from None


# ============================================================================ spatial statistics
# (sites given by latitude/longitude in degrees; neighbours by great-circle distance)
def knn_weights(lat, lon, k: int) -> np.ndarray:
    from dplpaper.data.twin import haversine_km  # here: importing the metrics does not load the data package

    d = haversine_km(lat, lon)
    np.fill_diagonal(d, np.inf)
    nn = np.argsort(d, axis=1, kind="stable")[:, :k]
    w = np.zeros_like(d)
    np.put_along_axis(w, nn, 1.0 / k, axis=1)
    return w


def morans_i(values, lat, lon, k: int = 4) -> float:
    """Moran's I of ``values [site]`` with row-standardized k-nearest-neighbour weights
    (great-circle distance). About 0 for a random field (expectation -1/(n-1)), near 1 for a
    smooth one."""
    x = np.asarray(values, float)
    z = x - x.mean()
    w = knn_weights(lat, lon, k)
    den = (z ** 2).sum()
    if den == 0:
        return float("nan")
    return float(len(x) / w.sum() * (z @ w @ z) / den)


def mean_neighbour_difference(values, lat, lon, k: int = 4) -> float:
    """Mean absolute difference between each cell's value and its k nearest neighbours'."""
    x = np.asarray(values, float)
    w = knn_weights(lat, lon, k)
    return float((w * np.abs(x[:, None] - x[None, :])).sum() / len(x))
