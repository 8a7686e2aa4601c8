"""SMAP dbCsv reader: shipped raw sample and compact NetCDF (always), corrupted copies, full set."""
import shutil

import numpy as np
import pytest

from dplpaper.data import DataFormatError, registry, smap

SQ = registry.locate("smap_conusv4f1_quick")
RAW = SQ / "raw_sample"


def test_raw_sample_values():
    ds = smap.read_smap_dbcsv(RAW)
    assert ds.sizes == {"site": 5, "time": 1096}
    assert str(ds.time.values[0])[:10] == "2015-04-01" and str(ds.time.values[-1])[:10] == "2018-03-31"
    c0 = ds.isel(site=0)
    assert c0["lat"].item() == 49.8666114807 and c0["lon"].item() == -123.423233032
    assert c0["precip"].isel(time=0).item() == pytest.approx(0.18086787 * 24)       # APCP_FORA mm/h -> mm/d
    assert c0["soil_moisture"].isel(time=0).item() == 0.20420624
    assert np.isnan(c0["soil_moisture"].isel(time=1).item())                        # -9999
    assert ds["temp"].isel(site=0).sel(time="2017-04-01").item() == pytest.approx(273.33214 - 273.15)
    assert ds["Sand"].values.tolist() == [51.781614, 58.1, 45.401881, 48.892783, 54.3]
    # missing SMAP days in 2015 per cell, counted by hand (grep -c -- -9999)
    n15 = ds["soil_moisture"].sel(time=slice("2015-04-01", "2016-03-31")).isnull().sum("time").values
    assert n15.tolist() == [224, 222, 225, 215, 238]
    assert ds["soil_moisture"].sel(time="2017-04-01").isnull().all()               # no SMAP after 2017-03
    for v in ds.data_vars:
        assert ds[v].attrs["units"] and ds[v].attrs["long_name"], v


def test_compact_netcdf_matches_raw_sample():
    full = smap.load_smap(quick=True)
    assert full.sizes["site"] == 412 and full.sizes["time"] == 1096
    raw = smap.read_smap_dbcsv(RAW)
    sub = full.isel(site=[0, 100, 200, 300, 411])
    np.testing.assert_allclose(sub["lat"].values, raw["lat"].values, rtol=1e-6)
    tol = {"soil_moisture": 1e-4, "precip": 1e-2, "temp": 0.1, "srad": 1, "lrad": 1, "humidity": 1e-5, "wind": 0.1}
    for v, t in tol.items():
        np.testing.assert_allclose(sub[v].values, raw[v].values, atol=t, equal_nan=True, err_msg=v)
    np.testing.assert_allclose(sub["pet"].values, raw["pet"].values, atol=0.05)
    assert 1.5 < float(full["pet"].mean()) < 4.0 and float(full["pet"].min()) >= 0


def _copy(tmp_path):
    dst = tmp_path / "db"
    shutil.copytree(RAW, dst)
    return dst


def test_corrupted(tmp_path):
    db = _copy(tmp_path)
    f = db / "CONUSv4f1/2016/TMP_2_FORA.csv"
    lines = f.read_text().splitlines(keepends=True)
    f.write_text("".join(lines[:3]))
    with pytest.raises(DataFormatError, match=r"TMP_2_FORA.csv, line 3, field 'rows'.*3 rows, expected 5"):
        smap.read_smap_dbcsv(db)
    f.write_text("".join(lines[:2] + [lines[2].replace("2", "x", 1)] + lines[3:]))
    with pytest.raises(DataFormatError, match=r"TMP_2_FORA.csv, line 3, site 0002, field 'TMP_2_FORA'"):
        smap.read_smap_dbcsv(db)
    vals = lines[1].split(",")
    f.write_text("".join(lines[:1] + [",".join(["15.0"] + vals[1:])] + lines[2:]))    # degC in a Kelvin file
    with pytest.raises(DataFormatError, match=r"line 2, site 0001, field 'TMP_2_FORA'.*wrong units"):
        smap.read_smap_dbcsv(db)
    f.write_text("".join(lines[:1] + [",".join(["-9999"] + vals[1:])] + lines[2:]))
    with pytest.raises(DataFormatError, match=r"site 0001, field 'TMP_2_FORA'.*missing forcing on 2016-04-01"):
        smap.read_smap_dbcsv(db)


def test_full_set(full_data):
    root = full_data("hydrodl_smap_conusv4f1")
    ds = smap.load_smap(root=root)
    assert ds.sizes == {"site": 412, "time": 1096}
    sm = ds["soil_moisture"].sel(time=slice("2015-04-01", "2017-03-31"))
    assert 0.55 < float(sm.isnull().mean()) < 0.61                      # ~58 % missing
    assert ds["row"].max().item() == 17 and ds["col"].max().item() == 37
