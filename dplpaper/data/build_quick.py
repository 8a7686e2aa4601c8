"""Maintainer tool: (re)build the quick-mode subsets shipped in the repository's ``data/``.

Run ``python -m dplpaper.data.build_quick`` with the full data sets findable by the registry.
Every choice is deterministic (seeded); ``data/SOURCE.md`` documents the result.

- ``data/camels_us_quick/``: CAMELS attributes v2.0 (all 671, original files), the 531 list,
  MHPI's PUB folds and 531 ids (id lists only), Daymet forcing + USGS streamflow (original
  files) for :data:`QUICK_CAMELS_BASINS`.
- ``data/caravan_camels_us_quick/Caravan-CAMELS/``: the original ``.csv.gz`` of the basins
  chosen by :func:`choose_caravan_basins` (2 per HUC-02 region of the 426 Caravan basins in
  the 531 list, 3 in the five largest regions; seed 2021).
- ``data/smap_conusv4f1_quick/``: all 412 cells as a compact NetCDF (:func:`write_smap_compact`)
  and a raw dbCsv sample of the cells in :data:`SMAP_RAW_SAMPLE` (lines copied verbatim).
"""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np

from . import registry

QUICK_CAMELS_BASINS = ("01022500", "01031500", "02053200")
FORCED_CARAVAN = ("01022500", "01031500", "02053200")
SMAP_RAW_SAMPLE = (0, 100, 200, 300, 411)
CARAVAN_SEED = 2021
# least significant decimal digit kept per variable in the shipped SMAP NetCDF (quantization)
SMAP_DIGITS = {"soil_moisture": 4, "precip": 2, "temp": 1, "srad": 0, "lrad": 0, "humidity": 5, "wind": 1}


def choose_caravan_basins(seed: int = CARAVAN_SEED) -> list[str]:
    """Reproducible, regionally spread subset of the 426 Caravan basins in the 531 list."""
    from .camels import load_basin_list, load_camels_attributes
    from .caravan import list_caravan_basins

    in531 = set(load_basin_list("531", quick=False))
    pool = [b for b in list_caravan_basins(quick=False) if b in in531]
    huc = load_camels_attributes(pool, groups=("name",), quick=False)["huc_02"].to_series()
    counts = huc.value_counts()
    big = set(counts.nlargest(5).index)
    rng = np.random.default_rng(seed)
    chosen = []
    for region in sorted(counts.index):
        members = sorted(huc.index[huc == region])
        n = min(len(members), 3 if region in big else 2)
        forced = [b for b in FORCED_CARAVAN if b in members]
        rest = [b for b in members if b not in forced]
        pick = forced + list(rng.choice(rest, size=max(n - len(forced), 0), replace=False))
        chosen += pick[:max(n, len(forced))]
    return sorted(str(b) for b in chosen)


def write_smap_compact(ds, path: Path) -> Path:
    """Write the SMAP dataset without ``pet``/``wind_u``/``wind_v`` (recomputed on load), float32,
    zlib level 9, quantized to :data:`SMAP_DIGITS` decimals (statics: 4 decimals)."""
    from .cache import encoding_for

    ds = ds.drop_vars([v for v in ("pet", "wind_u", "wind_v") if v in ds])
    enc = encoding_for(ds, 9)
    for v in ds.data_vars:
        if v in SMAP_DIGITS:
            enc[v]["least_significant_digit"] = SMAP_DIGITS[v]
        elif ds[v].dims == ("site",):
            enc[v]["least_significant_digit"] = 4
    ds.attrs["quantized"] = ", ".join(f"{k}: 1e-{d}" for k, d in SMAP_DIGITS.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    ds.to_netcdf(path, engine="netcdf4", encoding=enc)
    return path


def build(dest: Path | None = None) -> Path:
    from .smap import read_smap_dbcsv

    dest = Path(dest) if dest is not None else registry.quick_data_dir()
    cam = registry.locate("camels_us")
    out = dest / "camels_us_quick"
    for f in sorted((cam / "camels_attributes_v2.0").iterdir()):
        _copy(f, out / "camels_attributes_v2.0" / f.name)
    _copy(cam / "basin_lists" / "531_basin_list.txt", out / "basin_lists" / "531_basin_list.txt")
    for name in ("PUBsplitLst.txt", "Sub531ID.txt"):
        _copy(cam / "basin_lists" / "mhpi_dPLHBV" / name, out / "basin_lists" / "mhpi_dPLHBV" / name)
    for b in QUICK_CAMELS_BASINS:
        for sub, pat in (("basin_mean_forcing/daymet", f"{b}_lump_cida_forcing_leap.txt"),
                         ("usgs_streamflow", f"{b}_streamflow_qc.txt")):
            src = next((cam / sub).glob(f"*/{pat}"))
            _copy(src, out / sub / src.parent.name / src.name)
    car = registry.locate("caravan_camels_us")
    for b in choose_caravan_basins():
        _copy(car / "Caravan-CAMELS" / f"{b}.csv.gz", dest / "caravan_camels_us_quick" / "Caravan-CAMELS" / f"{b}.csv.gz")
        if b not in QUICK_CAMELS_BASINS:  # Daymet forcing of every quick basin, gzipped (the default forcing)
            _ship_daymet_gz(cam, b, out)
    smap_root = registry.locate("hydrodl_smap_conusv4f1")
    sq = dest / "smap_conusv4f1_quick"
    write_smap_compact(read_smap_dbcsv(smap_root, with_pet=False), sq / "smap_conusv4f1.nc")
    src_base = smap_root / "CONUSv4f1"
    for f in sorted(src_base.rglob("*.csv")):
        rel = f.relative_to(src_base)
        target = sq / "raw_sample" / "CONUSv4f1" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if f.name in ("timeStr.csv", "time.csv"):
            shutil.copyfile(f, target)
        else:
            lines = f.read_text().splitlines(keepends=True)
            target.write_text("".join(lines[i] for i in SMAP_RAW_SAMPLE))
    return dest


def _ship_daymet_gz(cam: Path, basin: str, out: Path) -> Path:
    """Copy ``basin``'s Daymet file into ``out`` as ``<huc>/<id>_lump_cida_forcing_leap.txt.gz``:
    the original bytes, gzipped deterministically (mtime 0, no file name in the header), whether
    the source is plain or already gzipped."""
    base = cam / "basin_mean_forcing" / "daymet"
    name = f"{basin}_lump_cida_forcing_leap.txt"
    src = next(iter(sorted(base.glob(f"*/{name}")) + sorted(base.glob(f"*/{name}.gz"))))
    raw = src.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    dst = out / "basin_mean_forcing" / "daymet" / src.parent.name / f"{name}.gz"
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(dst, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0, compresslevel=9) as gz:
        gz.write(raw)
    return dst


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


if __name__ == "__main__":  # pragma: no cover
    print(build())
