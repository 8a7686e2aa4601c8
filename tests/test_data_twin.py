"""Twin generator with a linear-reservoir model written here (no dependency on HBV/VIC modules)."""
import numpy as np
import pytest
import xarray as xr

from dplpaper.data import DataFormatError, caravan, load_camels_attributes, make_twin, true_parameter_field


def linear_reservoir(forcing, params):
    """S' = P - a*PET - k S; Q = k S; a in [0.2, 1], k in [0.01, 0.5] 1/day. forcing [time, site, 3]."""
    p, pet = forcing[..., 0], forcing[..., 2]
    a = 0.2 + 0.8 * params[:, 0]
    k = 0.01 + 0.49 * params[:, 1]
    s = np.zeros(forcing.shape[1])
    q = np.empty(forcing.shape[:2])
    for t in range(forcing.shape[0]):
        s = np.maximum(s + p[t] - a * pet[t], 0.0)
        q[t] = k * s
        s = s - q[t]
    return {"streamflow": q, "storage": q / k}


@pytest.fixture(scope="module")
def real():
    ds = caravan.load_caravan(quick=True).isel(time=slice(0, 730))
    attrs = load_camels_attributes(ds.site.values, groups=("clim", "topo"), quick=True)
    return ds, attrs


def test_twin(real):
    ds, attrs = real
    tw = make_twin(ds, linear_reservoir, attrs, 2, observed={"streamflow": ds["streamflow"]},
                   noise_std={"streamflow": 0.1}, multiplicative={"streamflow": True}, seed=7,
                   param_names=["a", "k"], units={"streamflow": "mm/day", "storage": "mm"})
    assert tw["params_true"].shape == (40, 2) and float(tw.params_true.min()) > 0 and float(tw.params_true.max()) < 1
    # truth reproduces a direct model run with the true parameters
    f = np.stack([ds[v].transpose("time", "site").values for v in ("precip", "temp", "pet")], -1).astype(float)
    direct = linear_reservoir(f, tw["params_true"].values)["streamflow"]
    np.testing.assert_allclose(tw["streamflow_true"].transpose("time", "site").values, direct)
    # real gaps copied exactly; elsewhere obs = truth * lognormal noise with the requested std
    real_gap = ds["streamflow"].isnull().values
    assert np.array_equal(tw["streamflow"].isnull().values, real_gap) and real_gap.any()
    ok = ~real_gap & (tw["streamflow_true"].values > 0)
    logr = np.log(tw["streamflow"].values[ok] / tw["streamflow_true"].values[ok])
    assert abs(logr.std() - 0.1) < 0.005 and abs(logr.mean()) < 0.005
    assert "storage" not in tw and "storage_true" in tw
    assert tw["streamflow"].attrs["units"] == "mm/day"
    # seeded: same seed same field, other seed other field
    tw2 = make_twin(ds, linear_reservoir, attrs, 2, seed=7)
    np.testing.assert_array_equal(tw2["params_true"].values, tw["params_true"].values)
    assert not np.allclose(make_twin(ds, linear_reservoir, attrs, 2, seed=8)["params_true"], tw["params_true"])


def test_parameter_field_depends_on_attributes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    lat, lon = rng.uniform(30, 48, 200), rng.uniform(-120, -70, 200)
    th = true_parameter_field(x, lat, lon, 3, seed=1, noise_std=0.0)
    # noise-free field is a deterministic smooth function of attributes: identical rows -> identical params
    x2 = np.vstack([x, x[:1]])
    th2 = true_parameter_field(x2, np.r_[lat, 40.0], np.r_[lon, -100.0], 3, seed=1, noise_std=0.0)
    assert np.allclose(th2[-1], th2[0]) and th.std(axis=0).min() > 0.1


def test_twin_errors(real):
    ds, attrs = real
    bad = ds.copy(deep=True)
    bad["pet"][3, 10] = np.nan
    with pytest.raises(DataFormatError, match=rf"site {ds.site.values[3]}, field 'pet'.*1981-01-11"):
        make_twin(bad, linear_reservoir, attrs, 2)
    with pytest.raises(DataFormatError, match="site absent"):
        make_twin(ds, linear_reservoir, attrs.isel(site=slice(0, 5)), 2)
    with pytest.raises(DataFormatError, match="shape"):
        make_twin(ds, lambda f, p: {"q": f[:, :, 0].T}, attrs, 2)
