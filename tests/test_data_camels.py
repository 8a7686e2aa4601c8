"""CAMELS readers: values read by hand from the shipped files (always run) and corrupted copies."""
import shutil

import numpy as np
import pytest

from dplpaper.data import DataFormatError, camels, registry

Q = registry.locate("camels_us_quick")
DAYMET = Q / "basin_mean_forcing/daymet/01/01022500_lump_cida_forcing_leap.txt"
FLOW = Q / "usgs_streamflow/01/01022500_streamflow_qc.txt"


def test_attributes_shipped():
    a = camels.load_camels_attributes(quick=True)
    assert a.sizes["site"] == 671
    assert a["site"].values[0] == "01013500" and a["site"].dtype == object
    assert a["area_gages2"].sel(site="01022500").item() == 573.6          # camels_topo.txt line 3
    assert a["lat"].sel(site="01013500").item() == 47.23739
    assert a["area_gages2"].attrs["units"] == "km2" and "long_name" in a["p_mean"].attrs
    assert int(a["root_depth_50"].isnull().sum()) == 24                  # 24 NA rows in camels_vege
    assert int(a["q_mean"].isnull().sum()) == 1 and np.isnan(a["q_mean"].sel(site="03281100"))
    # 141 NA rows in camels_geol: 138 in geol_2nd_class (text -> ""), 3 in geol_porostiy (-> NaN)
    assert int((a["geol_2nd_class"] == "").sum()) == 138 and int(a["geol_porostiy"].isnull().sum()) == 3
    assert a["dom_land_cover"].sel(site="01013500").item() == "Mixed Forests"  # leading spaces stripped
    assert a["huc_02"].sel(site="01013500").item() == "01"
    assert a["gauge_name"].sel(site="01013500").item() == "Fish River near Fort Kent, Maine"


def test_basin_lists_and_folds():
    b = camels.load_basin_list("531", quick=True)
    assert len(b) == 531 and b[:2] == ["01022500", "01031500"]
    folds = camels.load_mhpi_pub_folds(quick=True)
    assert [len(f) for f in folds] == [67] * 9 + [68]
    assert sum(map(len, folds)) == 671 and len({x for f in folds for x in f}) == 671
    assert "02027000" in folds[0]                                          # int 2027000 regains its zero


def test_daymet_shipped():
    d = camels.load_camels_daymet("01022500", quick=True)
    assert d.sizes == {"site": 1, "time": 12784}
    assert str(d.time.values[0])[:10] == "1980-01-01" and str(d.time.values[-1])[:10] == "2014-12-31"
    assert d["time"].dtype == "datetime64[ns]"
    day = d.sel(site="01022500", time="1999-10-01")                          # file line 7218
    assert day["precip"].item() == 3.76 and day["tmax"].item() == 18.77 and day["vp"].item() == 856.42
    assert day["temp"].item() == pytest.approx((18.77 + 4.69) / 2)
    assert d["forcing_lat"].item() == 44.82 and d["forcing_area"].item() == 587675987
    assert d["lat"].item() == 44.60797                                       # gauge_lat from camels_topo
    for v in d.data_vars:
        assert {"units", "long_name"} <= set(d[v].attrs), v
    assert d["pet"].attrs["units"] == "mm/day" and float(d["pet"].min()) >= 0


def test_streamflow_shipped_and_conversion():
    q = camels.load_camels_streamflow("01022500", quick=True)
    assert q.sizes["time"] == 12784
    assert int(q["streamflow"].isnull().sum()) == 92                          # 92 lines "-999.00 M"
    v = q["streamflow_cfs"].sel(site="01022500", time="1999-10-01").item()    # line 7214: 217.00 A
    assert v == 217.0
    hand = 217.0 * 0.0283168 * 86400 / (573.6 * 1e6) * 1000                   # = 0.92557 mm/day
    assert q["streamflow"].sel(site="01022500", time="1999-10-01").item() == pytest.approx(hand, rel=1e-12)
    assert hand == pytest.approx(0.925568, rel=1e-5)   # 217 * 2.4465715 / 573.6
    assert q["flag"].sel(site="01022500", time="2014-12-31").item() == "M"


def test_multi_basin():
    d = camels.load_camels_daymet(["01022500", "01031500", "02053200"], quick=True, pet=False)
    assert list(d.site.values) == ["01022500", "01031500", "02053200"] and "pet" not in d


def _corrupt(tmp_path, src, edit, name=None):
    dst = tmp_path / (name or src.name)
    lines = src.read_text().splitlines(keepends=True)
    dst.write_text("".join(edit(lines)))
    return dst


def test_forcing_errors(tmp_path):
    trunc = tmp_path / "01022500_lump_cida_forcing_leap.txt"
    trunc.write_text(DAYMET.read_text()[:5000].rsplit("\t", 2)[0])
    with pytest.raises(DataFormatError, match=r"01022500_lump.*line \d+.*field"):
        camels.read_camels_forcing_file(trunc)

    def badnum(lines):
        lines[9] = lines[9].replace("0.00", "O.00", 1)
        return lines
    with pytest.raises(DataFormatError, match=r"line 10, field 'precip'.*'O.00'"):
        camels.read_camels_forcing_file(_corrupt(tmp_path, DAYMET, badnum))

    def dup(lines):
        return lines[:10] + [lines[9]] + lines[10:]
    with pytest.raises(DataFormatError, match=r"line 11, field 'date'.*duplicate date 1980-01-06"):
        camels.read_camels_forcing_file(_corrupt(tmp_path, DAYMET, dup))

    def gap(lines):
        return lines[:10] + lines[11:]
    with pytest.raises(DataFormatError, match=r"line 11, field 'date'.*missing dates"):
        camels.read_camels_forcing_file(_corrupt(tmp_path, DAYMET, gap))

    def units(lines):
        lines[3] = lines[3].replace("tmax(C)", "tmax(K)")
        return lines
    with pytest.raises(DataFormatError, match=r"line 4, field 'tmax\(K\)'.*wrong units"):
        camels.read_camels_forcing_file(_corrupt(tmp_path, DAYMET, units))


def test_streamflow_errors(tmp_path):
    def neg(lines):
        lines[2] = lines[2].replace("  310.00", "  -31.00")
        return lines
    with pytest.raises(DataFormatError, match=r"line 3, field 'Q_cfs'.*negative"):
        camels.read_camels_streamflow_file(_corrupt(tmp_path, FLOW, neg))

    def other_id(lines):
        lines[4] = lines[4].replace("01022500", "01031500")
        return lines
    with pytest.raises(DataFormatError, match=r"line 5, field 'gauge_id'"):
        camels.read_camels_streamflow_file(_corrupt(tmp_path, FLOW, other_id), "01022500")


def test_attribute_errors(tmp_path):
    src = Q / "camels_attributes_v2.0"
    folder = tmp_path / "camels_attributes_v2.0"
    shutil.copytree(src, folder)
    topo = folder / "camels_topo.txt"
    good = topo.read_text()
    topo.write_text(good.replace("01022500;44.60797;-67.93524;92.68;17.79072;573.6",
                                 "01022500;44.60797;-67.93524;92.68;17.79072;57x3.6"))
    with pytest.raises(DataFormatError, match=r"camels_topo.txt, line 3, field 'area_gages2'.*57x3.6"):
        camels.read_camels_attributes(folder)
    topo.write_text(good[: good.index("01022500")] + good[good.index("01030500"):])  # drop one basin
    with pytest.raises(DataFormatError, match=r"camels_topo.txt, site 01022500, field 'gauge_id'"):
        camels.read_camels_attributes(folder)
    with pytest.raises(DataFormatError, match=r"site 99999999, field 'gauge_id'.*absent"):
        camels.load_camels_attributes(["99999999"], quick=True)


def test_other_forcing_products(full_data):
    root = full_data("neuralhydrology_testdata") / "camels_us"
    for product, p2, tmax in (("daymet", 0.0, 4.81), ("maurer", 4.21, -4.08),
                              ("maurer_extended", 4.21, 4.18), ("nldas", 1.22, -0.60)):
        d = camels.load_camels_forcing("01022500", product, root=root)
        day = d.sel(site="01022500", time="2000-01-02")                       # second data line
        assert day["precip"].item() == p2 and day["tmax"].item() == tmax, product
        assert str(d.time.values[0])[:10] == "2000-01-01"
    assert camels.load_camels_forcing("01022500", "nldas", root=root).sizes["time"] == 1096


def test_full_camels_and_leaf_river(full_data):
    root = full_data("camels_us")
    q = camels.load_camels_streamflow("06221400", root=root)
    assert str(q.time.values[0])[:10] == "2002-06-30" and q.sizes["time"] == 4568
    assert int(q["streamflow"].isnull().sum()) == 66
    full_data("leaf_river_02472000")
    leaf = camels.load_leaf_river()
    assert int(leaf["streamflow_cfs"].notnull().sum()) == 10682 - 9               # 9 duplicate rows dropped
    assert leaf["streamflow_cfs"].sel(time="1991-10-02").item() == 287.0
    assert leaf["streamflow"].sel(time="1991-10-02").item() == pytest.approx(287 * 2.4465715 / 1927.13, rel=1e-6)
