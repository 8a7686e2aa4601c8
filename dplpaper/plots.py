"""Figures used across the book: CONUS maps (offline cartopy), hydrographs, CDFs, learning curves.

Maps use the Natural Earth 110m layers shipped in ``dplpaper/plots_data`` (public domain), so
cartopy never downloads. Always pass an explicit scale ("110m"): the automatic scale would ask
for 50m data, which is not shipped.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import matplotlib

if not os.environ.get("DISPLAY") and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

NATURAL_EARTH_DIR = Path(__file__).parent / "plots_data"
CONUS_EXTENT = (-125.0, -66.5, 24.0, 50.0)  # lon_min, lon_max, lat_min, lat_max (degrees)


def use_shipped_natural_earth() -> Path:
    """Point cartopy at the shipped Natural Earth layers (unless the user set CARTOPY_DATA_DIR)."""
    import cartopy

    if not os.environ.get("CARTOPY_DATA_DIR"):
        cartopy.config["pre_existing_data_dir"] = NATURAL_EARTH_DIR
    return Path(cartopy.config["pre_existing_data_dir"])


def conus_axes(ax=None, fig=None, subplot=(1, 1, 1), states: bool = True):
    """An Albers-equal-area CONUS map axis with coastline, borders and state lines (110m, offline).

    Returns the cartopy ``GeoAxes``. Plot data on it with ``transform=ccrs.PlateCarree()``.
    """
    import cartopy.crs as ccrs
    import cartopy.feature as cfeature

    use_shipped_natural_earth()
    proj = ccrs.AlbersEqualArea(central_longitude=-96, central_latitude=37.5,
                                standard_parallels=(29.5, 45.5))
    if ax is None:
        fig = fig or plt.figure(figsize=(8, 4.8))
        ax = fig.add_subplot(*subplot, projection=proj)
    ax.set_extent(CONUS_EXTENT, crs=ccrs.PlateCarree())
    ax.add_feature(cfeature.NaturalEarthFeature("physical", "coastline", "110m"),
                   edgecolor="0.3", facecolor="none", linewidth=0.6)
    ax.add_feature(cfeature.NaturalEarthFeature("cultural", "admin_0_boundary_lines_land", "110m"),
                   edgecolor="0.3", facecolor="none", linewidth=0.6)
    if states:
        ax.add_feature(cfeature.NaturalEarthFeature("cultural", "admin_1_states_provinces_lines", "110m"),
                       edgecolor="0.6", facecolor="none", linewidth=0.4)
    return ax


def site_map(lat: Sequence[float], lon: Sequence[float], values: Sequence[float] | None = None, *,
             ax=None, title: str = "", cmap: str = "viridis", vmin=None, vmax=None,
             label: str = "", size: float = 14, marker: str = "o", colorbar: bool = True, color: str = "tab:blue"):
    """Scatter sites (degrees north/east) on a CONUS map, coloured by ``values`` if given (else all in ``color``)."""
    import cartopy.crs as ccrs

    ax = conus_axes(ax=ax)
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    if lat.shape != lon.shape:
        raise ValueError(f"lat {lat.shape} and lon {lon.shape} must have the same shape")
    kw = dict(transform=ccrs.PlateCarree(), s=size, marker=marker, edgecolors="none")
    if values is None:
        sc = ax.scatter(lon, lat, color=color, **kw)
    else:
        sc = ax.scatter(lon, lat, c=np.asarray(values, dtype=float), cmap=cmap, vmin=vmin, vmax=vmax, **kw)
        if colorbar:
            plt.colorbar(sc, ax=ax, shrink=0.7, label=label)
    if title:
        ax.set_title(title)
    return ax


def hydrograph(time, series: dict[str, np.ndarray], *, ax=None, ylabel: str = "streamflow (mm/day)",
               title: str = ""):
    """Line plot of one or more daily series against time (dict label -> values)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3))
    for label, values in series.items():
        ax.plot(time, values, label=label, linewidth=0.8)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if len(series) > 1:
        ax.legend(frameon=False)
    return ax


def quantile_sites(scores, quantiles: Sequence[float] = (0.1, 0.25, 0.5, 0.75, 0.9)) -> list[tuple[float, str]]:
    """``[(q, site)]``: for each quantile ``q``, the site whose score is nearest to the ``q``-quantile of
    ``scores`` (a pandas Series by site; NaN dropped), each site at most once, in the order of ``quantiles``."""
    s = scores.dropna().sort_values()
    if s.empty:
        raise ValueError("quantile_sites: no finite score")
    out, used = [], set()
    for q in quantiles:
        target = float(s.quantile(q))
        for site in (s - target).abs().sort_values(kind="stable").index:
            if site not in used:
                used.add(site)
                out.append((float(q), str(site)))
                break
    return out


def hydrograph_gallery(obs, sims: dict, scores, *, quantiles: Sequence[float] = (0.1, 0.25, 0.5, 0.75, 0.9),
                       period: slice | None = None, score_name: str = "NSE", method: str = ""):
    """Observed and simulated daily streamflow of the basins at several quantiles of ``scores``.

    Args:
        obs: ``xr.DataArray`` with dims ``site`` and ``time`` (mm/day).
        sims: label -> ``xr.DataArray`` (``site``, ``time``; mm/day), e.g. one per method.
        scores: pandas Series by site (e.g. test NSE of ``method``) that picks the basins
            (:func:`quantile_sites`).
        period: the time slice shown (e.g. one water year).
    Returns:
        the matplotlib Figure, one row per quantile, each titled with the basin, its score and quantile.
    """
    picks = quantile_sites(scores, quantiles)
    fig, axes = plt.subplots(len(picks), 1, figsize=(10, 2.1 * len(picks)), sharex=True, squeeze=False)
    for ax, (q, site) in zip(axes[:, 0], picks):
        o = obs.sel(site=site)
        if period is not None:
            o = o.sel(time=period)
        ax.plot(o["time"].values, o.values, color="k", linewidth=1.0, label="observed")
        for label, da in sims.items():
            v = da.sel(site=site)
            if period is not None:
                v = v.sel(time=period)
            ax.plot(v["time"].values, v.values, linewidth=0.8, label=label)
        ax.set_ylabel("Q (mm/day)")
        ax.set_title(f"basin {site}: {method + ' ' if method else ''}{score_name} {scores[site]:.2f} "
                     f"({100 * q:g}th percentile of the basins)", fontsize=9)
    axes[0, 0].legend(frameon=False, fontsize=7, ncol=min(4, len(sims) + 1))
    fig.tight_layout()
    return fig


def cdf_plot(samples: dict[str, np.ndarray], *, ax=None, xlabel: str = "", xlim=None, title: str = "",
             digits: int = 2):
    """Empirical CDFs across sites (dict label -> per-site metric); NaNs are dropped; the legend gives each
    median with ``digits`` decimals."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    for label, values in samples.items():
        v = np.sort(np.asarray(values, dtype=float)[~np.isnan(np.asarray(values, dtype=float))])
        if v.size == 0:
            continue
        ax.plot(v, np.arange(1, v.size + 1) / v.size, label=f"{label} (median {np.median(v):.{digits}f})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of sites")
    if xlim is not None:
        ax.set_xlim(*xlim)
    if title:
        ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def learning_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], *, ax=None,
                    xlabel: str = "epochs (forward runs per site)", ylabel: str = "test RMSE",
                    threshold: float | None = None, logx: bool = True, title: str = ""):
    """Learning curves on one epoch axis: dict label -> (epochs, metric)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    for label, (x, y) in curves.items():
        ax.plot(x, y, label=label, marker=".")
    if threshold is not None:
        ax.axhline(threshold, color="0.5", linestyle="--", linewidth=0.8)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    ax.grid(alpha=0.3)
    return ax
