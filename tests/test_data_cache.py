"""NetCDF cache: compact float32/zlib, keyed on inputs, never stale."""
import os

import numpy as np
import xarray as xr

from dplpaper.data import cache


def _ds(v):
    return xr.Dataset({"x": (("site", "time"), np.full((2, 3), v, float), {"units": "mm/day", "long_name": "x"})},
                      coords={"site": np.array(["01022500", "01031500"], dtype=object),
                              "time": np.array(["2000-01-01", "2000-01-02", "2000-01-03"], dtype="datetime64[ns]")})


def test_cache_roundtrip_and_invalidation(tmp_path):
    inp = tmp_path / "input.txt"
    inp.write_text("1")
    calls = []

    def build():
        calls.append(1)
        return _ds(float(inp.read_text()) + 0.1)

    a = cache.cached("t", [inp], build)
    b = cache.cached("t", [inp], build)
    assert len(calls) == 1                                        # second call from the cache
    assert b["x"].dtype == np.float32 and b["x"].attrs["units"] == "mm/day"
    assert b["site"].values.tolist() == ["01022500", "01031500"] and b["time"].dtype == "datetime64[ns]"
    assert np.allclose(a["x"], 1.1)
    files = list(cache.cache_dir().glob("t-*.nc"))
    assert len(files) == 1 and os.environ["DPLPAPER_CACHE"] in str(files[0])
    inp.write_text("2")                                           # new content -> new key -> rebuilt
    os.utime(inp, ns=(1, 10**18))
    c = cache.cached("t", [inp], build)
    assert len(calls) == 2 and np.allclose(c["x"], 2.1)
    cache.cached("t", [inp], build, params={"k": 1})                # other params -> other entry
    assert len(calls) == 3
