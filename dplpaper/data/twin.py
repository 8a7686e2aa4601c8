"""Twin experiments: synthetic observations from a known ("true") parameter field on real forcing.

Used where the paper's real targets (full-CONUS SMAP, VIC output, MODIS ET, the Beck et al.
global basins) cannot be had here. Parameter recovery can then be measured exactly.

True parameter field (:func:`true_parameter_field`), for sites with standardized attributes
X [site, n_attr] (NaN -> column mean, constant columns -> 0) and locations (lat, lon):

    H = tanh(X A),                 A ~ N(0, 1/n_attr)   [n_attr, n_hidden]
    z = H B + e,                   B ~ N(0, 1/n_hidden) [n_hidden, n_params]
    e[:, p] ~ N(0, s^2 C),         C_ij = exp(-d_ij / L) (d great-circle km, L = corr_length_km)
    theta = sigmoid(gain * z / std_site(H B))   in (0, 1), shape [site, n_params]

so theta is a smooth, nonlinear, spatially correlated function of the real attributes; the
fraction of variance not explained by attributes is set by ``noise_std`` (s). All draws use
``numpy.random.default_rng(seed)``.

Observations (:func:`make_twin`): ``truth = simulate(forcing[time, site, nf], theta)[key]``;
``obs = truth + N(0, noise_std)`` (additive) or ``truth * exp(N(0, noise_std))`` (multiplicative,
for flow); then NaN wherever the real observations are NaN (the real gaps).
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ._util import set_attrs
from .errors import DataFormatError

EARTH_RADIUS_KM = 6371.0


def haversine_km(lat, lon) -> np.ndarray:
    """Pairwise great-circle distance (km) between points (degrees); shape [n, n]."""
    la = np.deg2rad(np.asarray(lat, float))[:, None]
    lo = np.deg2rad(np.asarray(lon, float))[:, None]
    a = np.sin((la - la.T) / 2) ** 2 + np.cos(la) * np.cos(la.T) * np.sin((lo - lo.T) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def standardize(x: np.ndarray) -> np.ndarray:
    """Column z-scores; NaN -> column mean (0); constant columns -> 0."""
    x = np.asarray(x, float)
    mu = np.nanmean(x, axis=0)
    sd = np.nanstd(x, axis=0)
    z = (x - mu) / np.where(sd > 0, sd, 1.0)
    return np.where(np.isnan(z), 0.0, z)


def spatial_noise(lat, lon, n_fields: int, corr_length_km: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian fields [site, n_fields] with unit variance and covariance exp(-d/L)."""
    c = np.exp(-haversine_km(lat, lon) / corr_length_km)
    l = np.linalg.cholesky(c + 1e-8 * np.eye(len(c)))
    return l @ rng.standard_normal((len(c), n_fields))


def true_parameter_field(attributes: np.ndarray, lat, lon, n_params: int, seed: int = 0, n_hidden: int = 8,
                         noise_std: float = 0.3, corr_length_km: float = 500.0, gain: float = 1.5) -> np.ndarray:
    """True parameters in the unit cube, shape [site, n_params] (see module docstring)."""
    x = standardize(attributes)
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 1 / np.sqrt(max(x.shape[1], 1)), (x.shape[1], n_hidden))
    b = rng.normal(0, 1 / np.sqrt(n_hidden), (n_hidden, n_params))
    signal = np.tanh(x @ a) @ b
    sd = signal.std(axis=0)
    signal = signal / np.where(sd > 0, sd, 1.0)
    z = signal + noise_std * spatial_noise(lat, lon, n_params, corr_length_km, rng)
    return 1 / (1 + np.exp(-gain * z))


def forcing_tensor(ds: xr.Dataset, variables: Sequence[str]) -> np.ndarray:
    """Stack ``variables`` of a (site, time) Dataset into float64 [time, site, n_forcing];
    NaN raises DataFormatError naming site, field and date."""
    out = np.stack([ds[v].transpose("time", "site").values.astype(float) for v in variables], axis=-1)
    bad = np.isnan(out)
    if bad.any():
        t, s, f = np.argwhere(bad)[0]
        raise DataFormatError(f"NaN forcing on {pd.Timestamp(ds['time'].values[t]).date()} "
                              f"({int(bad.sum())} NaN); fill or cut the window first",
                              site=str(ds["site"].values[s]), field=variables[f], file=ds.attrs.get("source"))
    return out


def make_twin(forcing: xr.Dataset, simulate: Callable[[np.ndarray, np.ndarray], Mapping[str, np.ndarray]],
              attributes: xr.Dataset | np.ndarray, n_params: int, *, forcing_vars: Sequence[str] = ("precip", "temp", "pet"),
              attribute_vars: Sequence[str] | None = None, observed: Mapping[str, xr.DataArray | None] | None = None,
              noise_std: Mapping[str, float] | float = 0.0, multiplicative: Mapping[str, bool] | bool = False,
              seed: int = 0, param_names: Sequence[str] | None = None, units: Mapping[str, str] | None = None,
              **field_kwargs) -> xr.Dataset:
    """Build a twin data set.

    forcing: Dataset (site, time) with ``forcing_vars`` (real forcing; NaN not allowed).
    simulate: ``simulate(forcing[time, site, nf], params_unit[site, n_params]) -> {name: [time, site]}``.
    attributes: Dataset (dim site; ``attribute_vars`` or every numeric variable) or array [site, n_attr].
    observed: {output name: real observations DataArray (site, time) or None}; outputs listed are
        observed (NaN copied from the real gaps, matched on site and time); default: every output, no gaps.
    noise_std / multiplicative: per output (or one value): additive N(0, std) in the output's units,
        or multiplicative factor exp(N(0, std)) (keeps flow positive).
    Returns Dataset with ``<name>`` (synthetic obs), ``<name>_true`` (noise-free), ``params_true``
    [site, param] in the unit cube, the forcing variables, coords lat/lon; attrs record the recipe.
    """
    sites = forcing["site"].values
    if isinstance(attributes, xr.Dataset):
        missing = [s for s in sites if s not in set(attributes["site"].values.tolist())]
        if missing:
            raise DataFormatError("site absent from the attributes", site=missing[0], field="site")
        a = attributes.sel(site=sites)
        names = attribute_vars or [v for v in a.data_vars if a[v].dims == ("site",)
                                   and np.issubdtype(a[v].dtype, np.number)]
        x = np.stack([a[v].values.astype(float) for v in names], axis=1)
    else:
        x = np.asarray(attributes, float)
        if x.shape[0] != len(sites):
            raise DataFormatError(f"attributes have {x.shape[0]} rows for {len(sites)} sites", field="attributes")
    lat = forcing["lat"].values
    lon = forcing["lon"].values
    theta = true_parameter_field(x, lat, lon, n_params, seed=seed, **field_kwargs)
    f = forcing_tensor(forcing, forcing_vars)
    out = simulate(f, theta.copy())
    rng = np.random.default_rng([seed, 1])
    ds = xr.Dataset(coords={"site": forcing["site"].values, "time": forcing["time"].values,
                            "lat": ("site", lat), "lon": ("site", lon),
                            "param": list(param_names) if param_names else [f"p{i}" for i in range(n_params)]})
    ds["params_true"] = (("site", "param"), theta)
    set_attrs(ds["params_true"], "1", "true parameters in the unit cube (twin experiment)")
    for v in forcing_vars:
        ds[v] = forcing[v]
    keys = list(out) if observed is None else list(observed)
    for k in out:
        truth = np.asarray(out[k], float)
        if truth.shape != (f.shape[0], f.shape[1]):
            raise DataFormatError(f"simulate returned shape {truth.shape}, expected [time, site] = "
                                  f"{(f.shape[0], f.shape[1])}", field=k)
        unit = (units or {}).get(k, "")
        ds[f"{k}_true"] = (("site", "time"), truth.T)
        set_attrs(ds[f"{k}_true"], unit, f"noise-free simulated {k} (twin truth)")
        if k not in keys:
            continue
        sd = noise_std.get(k, 0.0) if isinstance(noise_std, Mapping) else noise_std
        mult = multiplicative.get(k, False) if isinstance(multiplicative, Mapping) else multiplicative
        eps = rng.standard_normal(truth.shape)
        obs = truth * np.exp(sd * eps) if mult else truth + sd * eps
        real = None if observed is None else observed.get(k)
        if real is not None:
            mask = real.reindex(site=ds["site"].values, time=ds["time"].values).transpose("time", "site").isnull().values
            obs = np.where(mask, np.nan, obs)
        ds[k] = (("site", "time"), obs.T)
        set_attrs(ds[k], unit, f"synthetic observed {k}: {'multiplicative' if mult else 'additive'} "
                               f"Gaussian noise std {sd}, real observation gaps")
    ds.attrs.update(twin_seed=seed, n_params=n_params, forcing_vars=",".join(forcing_vars),
                    recipe="theta = sigmoid(gain * (tanh(X A) B / sd + noise_std * spatial_noise)); see dplpaper.data.twin")
    return ds
