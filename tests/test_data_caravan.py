"""Caravan CSV reader: shipped subset (always) and corrupted copies; full set when found."""
import gzip

import numpy as np
import pytest

from dplpaper.data import DataFormatError, caravan, registry

Q = registry.locate("caravan_camels_us_quick") / "Caravan-CAMELS"


def test_shipped_subset():
    ds = caravan.load_caravan(["01022500", "02053200"], quick=True)
    assert ds.sizes == {"site": 2, "time": 12418}
    assert str(ds.time.values[0])[:10] == "1981-01-01" and str(ds.time.values[-1])[:10] == "2014-12-31"
    first = ds.sel(site="01022500").isel(time=0)                  # first line "0,-16.5,1.6,1.27"
    assert (first["precip"].item(), first["temp"].item()) == (0.0, -16.5)
    assert first["pet"].item() == pytest.approx(1.6) and first["streamflow"].item() == pytest.approx(1.27)
    last = ds.sel(site="01022500").isel(time=-1)                  # last line "0.01,-9.84,9.62,NA"
    assert np.isnan(last["streamflow"].item()) and last["temp"].item() == pytest.approx(-9.84)
    assert int(ds["streamflow"].sel(site="01022500").isnull().sum()) == 92
    assert ds["lat"].sel(site="01022500").item() == 44.60797
    for v in ds.data_vars:
        assert ds[v].attrs["units"] and ds[v].attrs["long_name"]
    assert len(caravan.list_caravan_basins(quick=True)) == 40


def test_corrupted(tmp_path):
    text = gzip.decompress((Q / "01022500.csv.gz").read_bytes()).decode()
    lines = text.splitlines(keepends=True)
    f = tmp_path / "01022500.csv"
    f.write_text("".join(lines[:-10]))
    with pytest.raises(DataFormatError, match=r"01022500.csv, line 12408, field 'row count'.*12408 rows"):
        caravan.read_caravan_file(f)
    bad = list(lines)
    bad[4] = "NA" + bad[4][bad[4].index(","):]
    f.write_text("".join(bad))
    with pytest.raises(DataFormatError, match=r"line 5, field 'P'.*missing forcing"):
        caravan.read_caravan_file(f)
    bad = list(lines)
    bad[6] = bad[6].replace(",", ";", 1)
    f.write_text("".join(bad))
    with pytest.raises(DataFormatError, match=r"line 7"):
        caravan.read_caravan_file(f)
    g = tmp_path / "01022500.csv.gz"
    g.write_bytes((Q / "01022500.csv.gz").read_bytes()[:20000])
    with pytest.raises(DataFormatError, match=r"01022500.csv.gz.*(gzip|truncated)"):
        caravan.read_caravan_file(g)
    with pytest.raises(DataFormatError, match=r"site 99999999, field 'gauge_id'"):
        caravan.load_caravan(["99999999"], quick=True)


def test_full_set(full_data):
    root = full_data("caravan_camels_us")
    assert len(caravan.list_caravan_basins(root=root)) == 482
