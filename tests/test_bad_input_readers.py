"""Bad input to the readers (issue 12): each case must raise a clear error naming the file,
line/site and field, never load silently. Small copies of the shipped files in tmp_path."""
import gzip
import shutil

import numpy as np
import pytest

from dplpaper.data import DataFormatError, ImplausibleDataError, camels, caravan, registry, smap

Q = registry.locate("camels_us_quick")
DAYMET = Q / "basin_mean_forcing/daymet/01/01022500_lump_cida_forcing_leap.txt"
FLOW = Q / "usgs_streamflow/01/01022500_streamflow_qc.txt"
CARAVAN = registry.locate("caravan_camels_us_quick") / "Caravan-CAMELS" / "01022500.csv.gz"
SMAP_RAW = registry.locate("smap_conusv4f1_quick") / "raw_sample"
COLS = {"dayl": 4, "precip": 5, "srad": 6, "swe": 7, "tmax": 8, "tmin": 9, "vp": 10}
N = 400  # data lines kept in the small forcing copies


@pytest.fixture(scope="module")
def topo():
    return camels.load_camels_attributes(quick=True, groups=("topo",))


def _lines(src=DAYMET):
    return src.read_text().splitlines(keepends=True)


def _forcing(tmp_path, edit=None, n=N, name=DAYMET.name):
    """A copy of the shipped Daymet file (header + ``n`` data lines), data lines edited by ``edit``."""
    lines = _lines()
    head, body = lines[:4], [ln.split() for ln in lines[4:4 + n]]
    if edit is not None:
        edit(head, body)
    f = tmp_path / name
    f.write_text("".join(head) + "".join(" ".join(p[:4]) + "\t" + "\t".join(p[4:]) + "\n" for p in body))
    return f


def _set(col, value, rows=(9,)):
    def edit(head, body):
        for r in rows:
            body[r][COLS[col]] = value
    return edit


# ------------------------------------------------------------------------ encoding and gzip (item 7)
def test_gzipped_forcing_found_and_identical(tmp_path, topo):
    root = tmp_path / "camels"
    d = root / "basin_mean_forcing/daymet/01"
    d.mkdir(parents=True)
    (d / (DAYMET.name + ".gz")).write_bytes(gzip.compress(DAYMET.read_bytes()))
    assert camels.find_forcing_file(root, "01022500").name.endswith(".txt.gz")
    gz = camels.load_camels_daymet("01022500", root=root)
    camels.load_camels_forcing("01022500", root=root, attributes=topo)
    plain = camels.load_camels_daymet("01022500", quick=True)
    assert gz.equals(plain) and gz["precip"].values.tolist() == plain["precip"].values.tolist()
    shutil.copy(DAYMET, d / DAYMET.name)                                  # both: the plain file wins
    assert camels.find_forcing_file(root, "01022500").name == DAYMET.name


def test_gzip_detected_by_magic_not_name(tmp_path):
    f = tmp_path / DAYMET.name                                            # gzipped, named .txt
    f.write_bytes(gzip.compress("".join(_lines()[:4 + N]).encode()))
    df, hdr = camels.read_camels_forcing_file(f)
    assert len(df) == N and hdr["lat"] == 44.82
    flow = tmp_path / FLOW.name
    flow.write_bytes(gzip.compress(FLOW.read_bytes()))
    assert len(camels.read_camels_streamflow_file(flow)) == 12784
    plain = tmp_path / "01022500.csv"                                     # plain text named .csv, and .csv.gz
    plain.write_bytes(gzip.decompress(CARAVAN.read_bytes()))
    np.testing.assert_array_equal(caravan.read_caravan_file(plain), caravan.read_caravan_file(CARAVAN))


def test_corrupt_gzip_and_latin1(tmp_path):
    f = tmp_path / DAYMET.name
    f.write_bytes(gzip.compress(DAYMET.read_bytes())[:3000])              # truncated gzip download
    with pytest.raises(DataFormatError, match=rf"{f.name}: corrupt gzip stream"):
        camels.read_camels_forcing_file(f)
    text = "".join(_lines()[:4 + N])
    f.write_bytes(text.replace("Year Mnth", "Année Mnth").encode("latin-1"))   # Latin-1 byte in line 4
    with pytest.raises(DataFormatError, match=rf"{f.name}, line 4: not UTF-8 text: byte 0xe9 at byte offset \d+"):
        camels.read_camels_forcing_file(f)
    att = tmp_path / "camels_attributes_v2.0"
    shutil.copytree(Q / "camels_attributes_v2.0", att)
    name = att / "camels_name.txt"
    name.write_bytes(name.read_text().replace("Fish River", "Fish Rivère").encode("latin-1"))
    with pytest.raises(DataFormatError, match=r"camels_name.txt, line 2: not UTF-8"):
        camels.read_camels_attributes(att)
    cv = tmp_path / "01022500.csv"
    cv.write_bytes(b"0,-16.5,1.6,1.27\xa0\n")
    with pytest.raises(DataFormatError, match=r"01022500.csv, line 1: not UTF-8"):
        caravan.read_caravan_file(cv)
    bom = tmp_path / "bom" / DAYMET.name                                   # a UTF-8 BOM is harmless
    bom.parent.mkdir()
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert camels.read_camels_forcing_file(bom)[1]["lat"] == 44.82


# ------------------------------------------------------------------------ forcing plausibility (item 1)
@pytest.mark.parametrize("col,value,pattern", [
    ("tmax", "271.45", r"field 'tmax': value 271.45 outside the plausible range \[-80, 65\].*Kelvin"),
    ("precip", "-999.00", r"field 'precip': value -999 looks like another format's missing-value marker"),
    ("precip", "-5.00", r"field 'precip': value -5 outside the plausible range \[0, 2000\]"),
    ("precip", "inf", r"field 'precip': non-finite value inf"),
    ("precip", "NaN", r"field 'precip': missing value \(NaN\); this format has no missing-value marker"),
    ("srad", "-1.00", r"field 'srad'"), ("vp", "-999.00", r"field 'vp'.*missing-value marker"),
    ("swe", "-1.00", r"field 'swe'"), ("dayl", "90000.00", r"field 'dayl'.*\[0, 86400\]"),
    ("tmin", "-99.00", r"field 'tmin'.*missing-value marker"),
])
def test_forcing_implausible_values(tmp_path, col, value, pattern):
    f = _forcing(tmp_path, _set(col, value))
    with pytest.raises(ImplausibleDataError, match=rf"{f.name}, line 14, site 01022500, {pattern}") as e:
        camels.read_camels_forcing_file(f, "01022500")
    assert e.value.check == "range" and e.value.site == "01022500" and e.value.line == 14
    assert "on 1980-01-10" in str(e.value) and "skip_checks={'range'}" in str(e.value)


def test_forcing_kelvin_whole_file_and_override(tmp_path):
    def kelvin(head, body):
        for p in body:
            p[8], p[9] = f"{float(p[8]) + 273.15:.2f}", f"{float(p[9]) + 273.15:.2f}"
    f = _forcing(tmp_path, kelvin)
    with pytest.raises(ImplausibleDataError, match=rf"{f.name}, line 5, field 'tmax'.*Kelvin.*\({N} values in all\)"):
        camels.read_camels_forcing_file(f)
    df, _ = camels.read_camels_forcing_file(f, skip_checks={"range"})      # explicit override
    assert df["tmax"].iloc[0] == pytest.approx(272.43)
    with pytest.raises(ValueError, match=r"unknown skip_checks \['rnage'\]; valid: \['range'"):
        camels.read_camels_forcing_file(f, skip_checks={"rnage"})


def test_tmin_tmax_swap_only_when_systematic(tmp_path):
    def swap(head, body):
        for p in body:
            p[8], p[9] = p[9], p[8]
    f = _forcing(tmp_path, swap)
    with pytest.raises(ImplausibleDataError, match=rf"{f.name}, line 5, field 'tmax': tmax < tmin on 100% of days"):
        camels.read_camels_forcing_file(f)
    assert len(camels.read_camels_forcing_file(f, skip_checks="tmin_tmax")[0]) == N

    def few(head, body):                     # as in real Daymet files: a few % of days (up to 6 %)
        for p in body[:20]:
            p[8], p[9] = p[9], p[8]
    assert len(camels.read_camels_forcing_file(_forcing(tmp_path, few))[0]) == N


def test_header_latitude(tmp_path, topo):
    def lat(value):
        def edit(head, body):
            head[0] = f"{value:7.2f}\n"
        return edit
    f = _forcing(tmp_path, lat(146.84))
    with pytest.raises(ImplausibleDataError, match=rf"{f.name}, line 1, field 'lat': latitude 146.84 outside \[-90, 90\]"):
        camels.read_camels_forcing_file(f)
    root = tmp_path / "camels"
    d = root / "basin_mean_forcing/daymet/01"
    d.mkdir(parents=True)
    _forcing(d, lat(-44.82))                                               # sign lost: far from gauge_lat
    with pytest.raises(ImplausibleDataError, match=r"line 1, site 01022500, field 'lat': header latitude -44.82 "
                                                   r"is 89.43 degrees from the gauge latitude 44.60797"):
        camels.load_camels_forcing("01022500", root=root, attributes=topo)
    assert camels.load_camels_forcing("01022500", root=root, attributes=topo, skip_checks={"latitude"}).sizes["time"] == N


def test_header_area_in_km2(tmp_path, topo):
    def km2(head, body):
        head[2] = "       588\n"
    root = tmp_path / "camels"
    d = root / "basin_mean_forcing/daymet/01"
    d.mkdir(parents=True)
    _forcing(d, km2)
    with pytest.raises(ImplausibleDataError, match=r"line 3, site 01022500, field 'area_m2': header area 588 m2 is "
                                                   r"1.03e-06 x area_gages2 573.6 km2"):
        camels.load_camels_forcing("01022500", root=root, attributes=topo)


def test_na_in_date_column(tmp_path):
    def na(head, body):
        body[6][1] = "NA"
    f = _forcing(tmp_path, na)
    with pytest.raises(DataFormatError, match=rf"{f.name}, line 11, field 'month': date part month is missing"):
        camels.read_camels_forcing_file(f)
    lines = FLOW.read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace("1980 01 04", "NA 01 04")
    g = tmp_path / FLOW.name
    g.write_text("".join(lines))
    with pytest.raises(DataFormatError, match=rf"{g.name}, line 4, field 'year'"):
        camels.read_camels_streamflow_file(g)


# ------------------------------------------------------------------------ streamflow (items 1-2)
def _flow(tmp_path, edit):
    lines = FLOW.read_text().splitlines(keepends=True)
    edit(lines)
    f = tmp_path / FLOW.name
    f.write_text("".join(lines))
    return f


@pytest.mark.parametrize("value,pattern", [
    ("-9999.00", r"negative discharge -9999.0 \(only -999 marks missing\)"),
    ("     inf", r"non-finite value inf"),
    ("      NA", r"missing value \(NaN\); this format marks missing values -999 \(flag M\)"),
])
def test_streamflow_bad_values(tmp_path, value, pattern):
    f = _flow(tmp_path, lambda ls: ls.__setitem__(2, ls[2].replace("  310.00", value)))
    with pytest.raises(DataFormatError, match=rf"{f.name}, line 3, (site 01022500, )?field 'Q_cfs': {pattern}"):
        camels.read_camels_streamflow_file(f, "01022500")


def test_streamflow_own_missing_marker_stays_missing(tmp_path):
    f = _flow(tmp_path, lambda ls: ls.__setitem__(2, ls[2].replace("  310.00 A", "-999.00 M")))
    q = camels.read_camels_streamflow_file(f, "01022500")
    assert np.isnan(q["q_cfs"].iloc[2])


def _camels_root(tmp_path, flow_edit=None, topo_edit=None):
    """A CAMELS root in tmp_path: shipped attributes (topo, hydro) and one streamflow file."""
    root = tmp_path / "camels"
    att = root / "camels_attributes_v2.0"
    att.mkdir(parents=True)
    for g in ("topo", "hydro"):
        shutil.copy(Q / f"camels_attributes_v2.0/camels_{g}.txt", att)
    if topo_edit:
        t = att / "camels_topo.txt"
        t.write_text(topo_edit(t.read_text()))
    d = root / "usgs_streamflow/01"
    d.mkdir(parents=True)
    lines = FLOW.read_text().splitlines(keepends=True)
    if flow_edit:
        lines = flow_edit(lines)
    (d / FLOW.name).write_text("".join(lines))
    return root


def test_streamflow_mm_per_day_read_as_cfs(tmp_path):
    def to_mm(lines):        # the same record written in mm/day: read as ft3/s it is ~2.45/573.6 too small
        out = []
        for ln in lines:
            p = ln.split()
            q = float(p[4])
            v = q if q == -999 else q * 0.0283168 * 86400 / 573.6e6 * 1000
            out.append(f"{p[0]} {p[1]} {p[2]} {p[3]} {v:8.2f} {p[5]}\n")
        return out
    root = _camels_root(tmp_path, to_mm)
    attrs = camels.load_camels_attributes(root=root, groups=("topo",))
    with pytest.raises(ImplausibleDataError, match=r"01022500_streamflow_qc.txt, site 01022500, field 'streamflow': "
                                                   r"mean streamflow .* 0.009\d* mm/day .* is 0.004\d* x the CAMELS q_mean 2.17\d* mm/day") as e:
        camels.load_camels_streamflow("01022500", root=root, attributes=attrs)
    assert e.value.check == "q_mean"
    q = camels.load_camels_streamflow("01022500", root=root, attributes=attrs, skip_checks={"q_mean"})
    assert q.sizes["time"] == 12784
    ok = camels.load_camels_streamflow("01022500", root=_camels_root(tmp_path / "ok"))  # the real file passes
    assert ok.sizes["time"] == 12784


def test_basin_area_in_m2_and_zero(tmp_path):
    root = _camels_root(tmp_path, topo_edit=lambda t: t.replace(";573.6;", ";573600000;"))
    attrs = camels.load_camels_attributes(root=root, groups=("topo",))
    with pytest.raises(ImplausibleDataError, match=r"camels_topo.txt, site 01022500, field 'area_gages2': basin area "
                                                   r"5.736e\+08 km2 outside .*given in m2"):
        camels.load_camels_streamflow("01022500", root=root, attributes=attrs)
    root0 = _camels_root(tmp_path / "z", topo_edit=lambda t: t.replace(";573.6;", ";0;"))
    attrs0 = camels.load_camels_attributes(root=root0, groups=("topo",))
    with pytest.raises(DataFormatError, match=r"camels_topo.txt, site 01022500, field 'area_gages2': basin area must be"):
        camels.load_camels_streamflow("01022500", root=root0, attributes=attrs0)
    with pytest.raises(DataFormatError, match=r"f.txt, site 01022500, field 'area_gages2'"):
        camels.cfs_to_mm_per_day([1.0], -5.0, site="01022500", file="f.txt")


# ------------------------------------------------------------------------ Caravan
def _caravan(tmp_path, edit):
    lines = gzip.decompress(CARAVAN.read_bytes()).decode().splitlines(keepends=True)
    edit(lines)
    f = tmp_path / "01022500.csv"
    f.write_text("".join(lines))
    return f


@pytest.mark.parametrize("row,pattern", [
    ("0,256.65,1.6,1.27\n", r"field 'T': value 256.65 outside the plausible range \[-80, 65\].*Kelvin"),
    ("-999,-16.5,1.6,1.27\n", r"field 'P': value -999 looks like another format's missing-value marker"),
    ("inf,-16.5,1.6,1.27\n", r"field 'P': non-finite value inf"),
    ("0,-16.5,1.6,-999\n", r"field 'Q': value -999 looks like .* this format marks missing values NA \(Q only\)"),
    ("0,-16.5,1.6,inf\n", r"field 'Q': non-finite"),
    ("0,-16.5,-60,1.27\n", r"field 'PET': value -60 outside"),
])
def test_caravan_implausible(tmp_path, row, pattern):
    f = _caravan(tmp_path, lambda ls: ls.__setitem__(0, row))
    with pytest.raises(ImplausibleDataError, match=rf"01022500.csv, line 1, site 01022500, {pattern}"):
        caravan.read_caravan_file(f)


def test_caravan_q_in_cfs(tmp_path, topo):
    def cfs(lines):
        for i, ln in enumerate(lines):
            p = ln.strip().split(",")
            if p[3] != "NA":
                p[3] = f"{float(p[3]) * 573.6 / 2.4465715:.2f}"
            lines[i] = ",".join(p) + "\n"
    root = tmp_path / "cv"
    (root / "Caravan-CAMELS").mkdir(parents=True)
    f = _caravan(root / "Caravan-CAMELS", cfs)
    with pytest.raises(ImplausibleDataError, match=r"01022500.csv, line \d+, site 01022500, field 'Q': value \d+"):
        caravan.load_caravan(["01022500"], root=root, attributes=topo)       # range first (Q > 5000 mm/day)
    with pytest.raises(ImplausibleDataError, match=r"01022500.csv, site 01022500, field 'streamflow': mean streamflow "
                                                   r".* is 2\d\d x the CAMELS q_mean"):
        caravan.load_caravan(["01022500"], root=root, attributes=topo, skip_checks={"range"})
    assert caravan.load_caravan(["01022500"], root=root, attributes=topo, skip_checks="all").sizes["site"] == 1
    assert f.is_file()


# ------------------------------------------------------------------------ SMAP
def _smap(tmp_path):
    dst = tmp_path / "db"
    shutil.copytree(SMAP_RAW, dst)
    return dst


def test_smap_truncated_crd_blamed_on_crd(tmp_path):
    db = _smap(tmp_path)
    crd = db / "CONUSv4f1/crd.csv"
    crd.write_text("".join(crd.read_text().splitlines(keepends=True)[:3]))
    with pytest.raises(DataFormatError, match=r"crd.csv, line 3, field 'rows': 3 cells, but SMAP_AM.csv and the other "
                                              r"data files of 2015/ have 5 rows \(crd.csv truncated\?\)"):
        smap.read_smap_dbcsv(db)


def test_smap_foreign_marker_and_inf(tmp_path):
    db = _smap(tmp_path)
    f = db / "CONUSv4f1/2015/SMAP_AM.csv"
    lines = f.read_text().splitlines(keepends=True)
    vals = lines[2].split(",")
    f.write_text("".join(lines[:2] + [",".join(["-999"] + vals[1:])] + lines[3:]))
    with pytest.raises(ImplausibleDataError, match=r"SMAP_AM.csv, line 3, site 0002, field 'SMAP_AM': value -999.0 "
                                                   r"outside \[0.0, 1.0\] on 2015-04-01.*this format's is -9999"):
        smap.read_smap_dbcsv(db)
    assert smap.read_smap_dbcsv(db, skip_checks={"range"}, with_pet=False).sizes["site"] == 5
    f.write_text("".join(lines))
    g = db / "CONUSv4f1/2015/APCP_FORA.csv"
    lines = g.read_text().splitlines(keepends=True)
    vals = lines[0].split(",")
    g.write_text("".join([",".join(["inf"] + vals[1:])] + lines[1:]))
    with pytest.raises(ImplausibleDataError, match=r"APCP_FORA.csv, line 1, site 0000, field 'APCP_FORA': value inf"):
        smap.read_smap_dbcsv(db)


def test_smap_latin1_and_crd_range(tmp_path):
    db = _smap(tmp_path)
    crd = db / "CONUSv4f1/crd.csv"
    good = crd.read_text()
    crd.write_bytes(good.replace("49.8666114807", "49.86\xb0", 1).encode("latin-1"))
    with pytest.raises(DataFormatError, match=r"crd.csv, line 1: not UTF-8 text: byte 0xb0 at byte offset 5"):
        smap.read_smap_dbcsv(db)
    crd.write_text(good.replace("41.8075294495", "141.8075294495", 1))
    with pytest.raises(DataFormatError, match=r"crd.csv, line 2, site 0001, field 'lat,lon': latitude 141.8"):
        smap.read_smap_dbcsv(db)
