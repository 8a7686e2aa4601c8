"""Maps draw offline from the shipped Natural Earth layers; pytest turns any download into an error."""
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from dplpaper import plots


def test_conus_map_draws_offline(tmp_path):
    ax = plots.site_map([40.0, 35.0, 45.0], [-100.0, -90.0, -110.0], [0.1, 0.5, 0.9], title="t")
    out = tmp_path / "map.png"
    ax.figure.savefig(out, dpi=50)
    assert out.stat().st_size > 1000
    # the state lines layer really has geometries (drawn, not silently empty)
    import cartopy.io.shapereader as shpreader
    path = shpreader.natural_earth("110m", "cultural", "admin_1_states_provinces_lines")
    assert str(plots.NATURAL_EARTH_DIR) in str(path)
    geoms = list(shpreader.Reader(path).geometries())
    assert len(geoms) > 40
    plt.close("all")


def test_download_attempt_fails(monkeypatch, tmp_path):
    """A layer that is not shipped (50m) would need a download: that must fail the test run."""
    import cartopy.io.shapereader as shpreader
    import cartopy
    monkeypatch.setitem(cartopy.config, "data_dir", tmp_path)
    plots.use_shipped_natural_earth()
    with pytest.raises(cartopy.io.DownloadWarning):
        shpreader.natural_earth("50m", "physical", "coastline")


def test_site_map_rejects_mismatched_coordinates():
    with pytest.raises(ValueError, match="same shape"):
        plots.site_map([1.0, 2.0], [3.0])
    plt.close("all")


def test_cdf_and_learning_curves():
    ax = plots.cdf_plot({"a": np.array([0.1, np.nan, 0.5, 0.3])}, xlabel="NSE")
    assert "median 0.30" in ax.get_legend().get_texts()[0].get_text()
    ax = plots.learning_curves({"dPL": (np.array([1, 2, 4]), np.array([0.1, 0.07, 0.04]))}, threshold=0.05)
    assert ax.get_xscale() == "log"
    plt.close("all")


def test_quantile_sites_and_hydrograph_gallery():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd
    import xarray as xr

    from dplpaper import plots

    scores = pd.Series([0.1, 0.5, 0.9, 0.3, np.nan, 0.7], index=list("abcdef"))
    picks = plots.quantile_sites(scores, (0.0, 0.5, 1.0))
    assert picks == [(0.0, "a"), (0.5, "b"), (1.0, "c")]
    # the same site is never picked twice, even for equal quantiles
    twice = [s for _, s in plots.quantile_sites(scores, (0.5, 0.5))]
    assert twice[0] == "b" and len(set(twice)) == 2
    with pytest.raises(ValueError):
        plots.quantile_sites(pd.Series([np.nan], index=["x"]))
    time = pd.date_range("2000-01-01", periods=30)
    obs = xr.DataArray(np.random.default_rng(0).random((6, 30)), dims=("site", "time"),
                       coords={"site": list("abcdef"), "time": time})
    fig = plots.hydrograph_gallery(obs, {"model": obs * 0.9}, scores, quantiles=(0.25, 0.75),
                                   period=slice("2000-01-05", "2000-01-20"), method="dPL")
    axes = fig.get_axes()
    assert len(axes) == 2 and all(ax.get_ylabel() == "Q (mm/day)" for ax in axes)
    assert "percentile" in axes[0].get_title() and len(axes[0].get_lines()) == 2
    assert len(axes[0].get_lines()[0].get_xdata()) == 16
