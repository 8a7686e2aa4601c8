"""Splits: temporal windows, PUB folds, nested fractions, SMAP densities and neighbours."""
import numpy as np
import pytest

from dplpaper.data import DataFormatError, camels, smap, splits


def test_temporal_split_shipped():
    d = camels.load_camels_daymet("01022500", quick=True, pet=False)
    tr, te = splits.temporal_split(d, forcing_vars=["precip", "tmax"])
    assert str(tr.time.values[0])[:10] == "1999-10-01" and str(tr.time.values[-1])[:10] == "2008-09-30"
    assert tr.sizes["time"] == 3288 and te.sizes["time"] == 3652
    d = d.copy(deep=True)
    d["precip"][0, 7400] = np.nan        # 1980-01-01 + 7400 d = 2000-04-05, inside the training window
    with pytest.raises(DataFormatError, match=r"site 01022500, field 'precip'.*2000-04-05"):
        splits.temporal_split(d, forcing_vars=["precip"])
    short = d.sel(time=slice("1995-01-01", None))
    with pytest.raises(DataFormatError, match="test window"):
        splits.temporal_split(short)


def test_pub_folds():
    b = camels.load_basin_list("531", quick=True)
    f1 = splits.pub_folds(b, k=10, seed=3)
    assert f1 == splits.pub_folds(b, k=10, seed=3) != splits.pub_folds(b, k=10, seed=4)
    assert sorted(x for f in f1 for x in f) == sorted(b) and {len(f) for f in f1} == {53, 54}
    tr, te = splits.pub_split(f1, 2)
    assert not set(tr) & set(te) and len(tr) + len(te) == 531
    m = splits.pub_folds(b, source="mhpi", quick=True)
    assert len(m) == 10 and sum(map(len, m)) == 531


def test_basin_fractions_nested():
    b = camels.load_basin_list("531", quick=True)
    fr = splits.basin_fractions(b, [0.1, 0.5, 1.0], seed=1)
    assert [len(fr[f]) for f in (0.1, 0.5, 1.0)] == [54, 266, 531]
    assert set(fr[0.1]) <= set(fr[0.5]) <= set(fr[1.0])
    assert fr[0.1] != splits.basin_fractions(b, [0.1], seed=2)[0.1]


def test_grid_sample_and_neighbours():
    ds = smap.load_smap(quick=True, with_pet=False)
    r, c = ds["row"].values, ds["col"].values
    assert (r.max(), c.max()) == (17, 37)
    s4 = splits.density_sample(ds, "s4")
    s8 = splits.density_sample(ds, "s8", seed=0)
    s16 = splits.density_sample(ds, "s16", seed=0)
    assert len(s4) == 412 and len(s16) < len(s8) < 412
    assert np.array_equal(s8, splits.density_sample(ds, "s8", seed=0))
    blocks = set(zip(r[s8] // 2, c[s8] // 2))
    assert len(blocks) == len(s8)                                   # one per 2x2 patch
    nb = splits.neighbour_cells(r, c, s8)
    ok = nb >= 0
    assert ok.mean() > 0.5 and not set(nb[ok]) & set(s8)
    assert np.all(r[nb[ok]] >= r[s8[ok]]) and np.all(c[nb[ok]] >= c[s8[ok]])
    # tiny hand example: 3x3 lattice, train the centre -> neighbour is the NE corner (index 8)
    rr, cc = np.repeat(np.arange(3), 3), np.tile(np.arange(3), 3)
    assert splits.neighbour_cells(rr, cc, [4]).tolist() == [8]
    assert splits.neighbour_cells(rr, cc, [4, 8]).tolist() == [5, -1]   # (1,2) nearest free NE of centre
