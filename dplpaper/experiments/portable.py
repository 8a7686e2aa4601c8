"""Cases 2/3 inputs in one small, exact, dependency-light file, for runs on another machine.

A GPU machine lent for a full run has PyTorch, NumPy, pandas and xarray but neither the CAMELS
files nor a NetCDF library. :func:`export_streamflow_inputs` packs what the Case 2/3 drivers need
into one compressed ``.npz`` (about 15 MB for the 426 basins over 1988-10-01..2008-09-30), and
:func:`load_streamflow_inputs` rebuilds, there, the same ``(series, attributes)`` Datasets that
:func:`dplpaper.experiments.streamflow.load_streamflow_data` gives here, value for value:

* Daymet ``prcp``, ``tmin`` and ``tmax`` have two decimals in NCAR's files, so they travel exactly
  as integers (hundredths); ``temp`` = (tmax + tmin) / 2 and Hargreaves PET are recomputed from
  them with the same code, in float64, then cast to float32 as the loader does;
* streamflow travels as the float32 values the loader holds; attributes as float64.

:func:`check_roundtrip` verifies the equality (a test runs it on the quick subset).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from dplpaper.data.pet import hargreaves

__all__ = ["export_streamflow_inputs", "load_streamflow_inputs", "check_roundtrip", "run_method", "run_case3_pub_fold", "collect_runs", "collected_summary",
           "archive_collected"]

_INT_VARS = ("precip", "tmin", "tmax")


def export_streamflow_inputs(ds: xr.Dataset, attrs: xr.Dataset, path: str | Path, period: tuple[str, str],
                             attribute_names: Sequence[str]) -> Path:
    """Write ``ds`` (Daymet series from ``load_streamflow_data(forcing="daymet")``) over ``period``
    and ``attribute_names`` of ``attrs`` to ``path`` (``.npz``). Raises if a forcing value is not a
    whole number of hundredths (the exactness the format relies on)."""
    if ds.attrs.get("forcing") != "daymet":
        raise ValueError(f"only Daymet inputs are exported exactly (got forcing={ds.attrs.get('forcing')!r})")
    sub = ds.sel(time=slice(*period))
    out = {"site": np.asarray(sub["site"].values, dtype="U8"),
           "time": pd.DatetimeIndex(sub["time"].values).strftime("%Y-%m-%d").to_numpy(dtype="U10"),
           # the header latitude has two decimals in NCAR's files; the cache kept it as float32
           "forcing_lat": np.round(sub["forcing_lat"].values.astype(np.float64), 2),
           "lat": sub["lat"].values.astype(np.float64), "lon": sub["lon"].values.astype(np.float64),
           "streamflow": sub["streamflow"].transpose("site", "time").values.astype(np.float32),
           "attribute_names": np.asarray(list(attribute_names), dtype="U40"),
           "attributes": np.stack([attrs[n].sel(site=list(sub["site"].values)).values.astype(np.float64)
                                   for n in attribute_names], axis=1)}
    for v in _INT_VARS:
        x = sub[v].transpose("site", "time").values.astype(np.float64)
        k = np.round(x * 100.0)
        if not np.array_equal(np.float32(k / 100.0), x.astype(np.float32)) or np.abs(k).max() > 2 ** 31 - 1:
            raise ValueError(f"{v}: values are not whole hundredths; cannot export exactly")
        out[v] = k.astype(np.int32)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **out)
    return path


def load_streamflow_inputs(path: str | Path) -> tuple[xr.Dataset, xr.Dataset]:
    """``(series, attributes)`` as :func:`load_streamflow_data` gives them (Daymet), from ``path``."""
    z = np.load(Path(path), allow_pickle=False)
    site = [str(s) for s in z["site"]]
    time = pd.DatetimeIndex(z["time"].astype(str))
    f64 = {v: z[v].astype(np.float64) / 100.0 for v in _INT_VARS}
    temp = (f64["tmax"] + f64["tmin"]) / 2
    doy = time.day_of_year.to_numpy()
    pet = np.stack([hargreaves(f64["tmin"][i], f64["tmax"][i], z["forcing_lat"][i], doy) for i in range(len(site))])
    data = {"precip": f64["precip"], "temp": temp, "pet": pet, "tmin": f64["tmin"], "tmax": f64["tmax"]}
    ds = xr.Dataset({k: (("site", "time"), v.astype(np.float32)) for k, v in data.items()},
                    coords={"site": site, "time": time.values})
    ds["streamflow"] = (("site", "time"), z["streamflow"].astype(np.float32))
    ds = ds.assign_coords(lat=("site", z["lat"]), lon=("site", z["lon"]),
                          forcing_lat=("site", z["forcing_lat"].astype(np.float32)))
    units = {"precip": "mm/day", "temp": "degC", "pet": "mm/day", "tmin": "degC", "tmax": "degC",
             "streamflow": "mm/day"}
    for k, u in units.items():
        ds[k].attrs["units"] = u
    ds.attrs["forcing"] = "daymet"
    names = [str(n) for n in z["attribute_names"]]
    attrs = xr.Dataset({n: ("site", z["attributes"][:, j]) for j, n in enumerate(names)}, coords={"site": site})
    return ds, attrs


def check_roundtrip(ds: xr.Dataset, attrs: xr.Dataset, path: str | Path, period: tuple[str, str],
                    attribute_names: Sequence[str]) -> None:
    """Export, load back and require bit-identical series and attributes (raises AssertionError)."""
    export_streamflow_inputs(ds, attrs, path, period, attribute_names)
    ds2, at2 = load_streamflow_inputs(path)
    sub = ds.sel(time=slice(*period))
    for v in ("precip", "temp", "pet", "streamflow"):
        a = sub[v].transpose("site", "time").values
        b = ds2[v].values
        if not np.array_equal(a, b, equal_nan=True):
            raise AssertionError(f"{v}: {np.sum(a != b)} values differ after the round trip")
    for n in attribute_names:
        if not np.array_equal(attrs[n].sel(site=list(ds2["site"].values)).values.astype(np.float64),
                              at2[n].values, equal_nan=True):
            raise AssertionError(f"attribute {n} differs after the round trip")


# ----------------------------------------------------------------------------- one method, one seed, anywhere
def run_method(inputs: str | Path, method: str, seed: int, out_dir: str | Path, epochs: int | None = None,
               device: str = "cpu", net_device: str | None = None, threads: int | None = None,
               lr: float | None = None, hidden: int | None = None) -> Path:
    """Run one Case 2 method with one seed on the exported inputs; write, under ``out_dir``,
    ``metrics_<method>_s<seed>.csv`` (site, nse, kge, n_obs), ``history_<method>_s<seed>.csv`` and
    ``provenance_<method>_s<seed>.json`` (settings, epochs, wall time, machine, torch version).

    Methods (full-mode settings of :class:`dplpaper.experiments.streamflow.Case2Config`):
    ``dpl`` (gA + HBV, 8 attributes), ``dpl_extra`` (gA + HBV, 27), ``dpl_nmul1`` (gA + HBV with one
    component, 8), ``dpl_dynamic`` (dynamic BETA and BETAET, 27), ``lstm`` (LSTM baseline, 27).
    """
    import json
    import platform
    import time
    from dataclasses import asdict, replace

    import torch

    from dplpaper.experiments import streamflow as sf

    if threads:
        torch.set_num_threads(int(threads))
    ds, attrs = load_streamflow_inputs(inputs)
    cfg = sf.Case2Config.full(seed=0)
    basins = [str(b) for b in ds["site"].values]
    if method in ("dpl", "dpl_extra", "dpl_nmul1"):
        st = cfg.dpl if method != "dpl_nmul1" else replace(cfg.dpl, nmul=1)
        names = cfg.extra_attributes if method == "dpl_extra" else cfg.attributes
    elif method == "dpl_dynamic":
        st, names = cfg.dynamic, cfg.extra_attributes
    elif method == "lstm":
        st, names = cfg.lstm, cfg.extra_attributes
    else:
        raise ValueError(f"unknown method {method!r}")
    changes = {"device": device}
    if method == "dpl_dynamic":  # only the dynamic net is worth pinning to another device
        changes["net_device"] = net_device
    if epochs is not None:
        changes["epochs"] = int(epochs)
    if lr is not None:
        changes["lr"] = float(lr)
    if hidden is not None:
        changes["lstm_hidden" if method == "dpl_dynamic" else "hidden"] = int(hidden)
    st = replace(st, **changes)
    t0 = time.time()
    runner = sf.run_lstm if method == "lstm" else sf.run_dpl_hbv
    r = runner(ds, attrs, basins, basins, cfg.train_period, cfg.test_period, names, st, seed, cfg.warmup_days)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    key = f"{method}_s{seed}"
    r.metrics.to_csv(out / f"metrics_{key}.csv", index=False)
    r.history.to_csv(out / f"history_{key}.csv", index=False)
    prov = {"method": method, "seed": int(seed), "settings": asdict(st), "attributes": list(names),
            "n_basins": len(basins), "train_period": list(cfg.train_period), "test_period": list(cfg.test_period),
            "warmup_days": cfg.warmup_days, "wall_time_s": time.time() - t0, "median_nse": float(r.metrics["nse"].median()),
            "median_kge": float(r.metrics["kge"].median()), "machine": platform.node(), "processor": platform.processor(),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    path = out / f"provenance_{key}.json"
    path.write_text(json.dumps(prov, indent=1, default=str))
    return path


def run_case3_pub_fold(inputs: str | Path, fold: int, attribute_set: str, out_dir: str | Path, seed: int = 0,
                       threads: int | None = None) -> Path:
    """Case 3 (PUB) in full mode, dPL only, one held-out fold and one attribute set (``"8"`` or
    ``"27"``), on the exported inputs: the folds are :func:`dplpaper.experiments.streamflow.pub_folds_for`
    over the export's basins (the order and seed of ``dplpaper run case3``), the run goes through
    :func:`~dplpaper.experiments.streamflow.run_pub_folds`, the driver of that command. Writes
    ``pub_case3_<key>.csv`` (its table) and ``provenance_case3_<key>.json`` under ``out_dir``,
    ``key = f<fold>_a<attribute_set>_s<seed>``."""
    import json
    import platform
    import time
    from dataclasses import asdict, replace

    import torch

    from dplpaper.experiments import streamflow as sf

    if threads:
        torch.set_num_threads(int(threads))
    ds, attrs = load_streamflow_inputs(inputs)
    cfg = sf.Case3Config.full(seed=0)
    if attribute_set not in cfg.attribute_sets:
        raise ValueError(f"attribute_set must be one of {list(cfg.attribute_sets)}, got {attribute_set!r}")
    cfg = replace(cfg, attribute_sets={attribute_set: cfg.attribute_sets[attribute_set]}, seeds=(int(seed),))
    basins = [str(b) for b in ds["site"].values]
    folds = sf.pub_folds_for(basins, cfg.k_folds, cfg.fold_seed)
    if not 0 <= int(fold) < len(folds):
        raise ValueError(f"fold must be in [0, {len(folds)}), got {fold}")
    t0 = time.time()
    table = sf.run_pub_folds(ds, attrs, folds, cfg, methods=("dpl",), write=False, fold_indices=[int(fold)])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    key = f"case3_f{int(fold)}_a{attribute_set}_s{int(seed)}"
    table.to_csv(out / f"pub_{key}.csv", index=False)
    prov = {"case": "case3", "part": "pub", "fold": int(fold), "attribute_set": attribute_set, "seed": int(seed),
            "n_basins": len(basins), "k_folds": cfg.k_folds, "fold_seed": cfg.fold_seed, "period": list(cfg.period),
            "settings": asdict(cfg.dpl), "wall_time_s": time.time() - t0,
            "median_nse": float(table["nse"].median()), "median_kge": float(table["kge"].median()),
            "machine": platform.node(), "torch": torch.__version__, "threads": torch.get_num_threads()}
    path = out / f"provenance_{key}.json"
    path.write_text(json.dumps(prov, indent=1, default=str))
    return path


def collect_runs(run_dirs: Sequence[str | Path], path: str | Path) -> Path:
    """Gather the outputs of :func:`run_method` in ``run_dirs`` into ONE json file (a machine that
    sends back few files): ``{"runs": [{"dir", "provenance", "metrics": {site, nse, kge, n_obs},
    "history": {...}}, ...]}``, one entry per ``provenance_*.json`` found, sorted by path."""
    import json

    runs = []
    for d in run_dirs:
        for prov in sorted(Path(d).glob("provenance_*.json")):
            key = prov.stem[len("provenance_"):]
            entry = {"dir": str(d), "key": key, "provenance": json.loads(prov.read_text())}
            for f in sorted(prov.parent.glob(f"*_{key}.csv")):  # metrics_, history_, pub_ ...
                entry[f.stem[: -len(key) - 1]] = pd.read_csv(f, dtype={"site": str}).to_dict(orient="list")
            runs.append(entry)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"runs": runs}, default=str))
    return path


def collected_summary(path: str | Path) -> pd.DataFrame:
    """One row per run of a :func:`collect_runs` file: ``dir, key, method, seed, median_nse,
    median_kge, wall_time_s`` and, where the provenance has them, the network size and epochs."""
    import json

    rows = []
    for r in json.loads(Path(path).read_text())["runs"]:
        p = r["provenance"]
        st = p.get("settings", {})
        rows.append({"dir": Path(r["dir"]).name, "key": r["key"], "method": p.get("method", p.get("part")),
                     "seed": p.get("seed"), "hidden": st.get("lstm_hidden") if p.get("method") == "dpl_dynamic"
                     else st.get("hidden"), "epochs": st.get("epochs"), "lr": st.get("lr"),
                     "median_nse": p.get("median_nse"), "median_kge": p.get("median_kge"),
                     "wall_time_s": p.get("wall_time_s")})
    return pd.DataFrame(rows)


def archive_collected(path: str | Path, table: str, case: str, name: str, command: str, git_commit: str,
                      folder: Path | None = None, **extra) -> Path:
    """Archive the runs of a :func:`collect_runs` file as one result table: the ``table`` entries
    (e.g. ``"pub"``) of all runs concatenated into ``book/full_runs/<case>/<name>`` (CSV) with a
    ``provenance_<stem>.json`` in the archive's format (``command``, ``git_commit`` of the tree the
    machine ran, the runs' wall times, machine and thread count, plus ``extra``)."""
    import json

    from dplpaper.results import _archive_root

    runs = json.loads(Path(path).read_text())["runs"]
    if not runs:
        raise ValueError(f"{path}: no runs")
    missing = [r["key"] for r in runs if table not in r]
    if missing:
        raise ValueError(f"{path}: runs {missing} have no {table!r} table")
    df = pd.concat([pd.DataFrame(r[table]) for r in runs], ignore_index=True)
    dest = _archive_root(folder) / case
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / name
    df.to_csv(out, index=False)
    walls = [float(r["provenance"]["wall_time_s"]) for r in runs]
    first = runs[0]["provenance"]
    prov = {"command": command, "git_commit": git_commit, "git_dirty": False, "n_runs": len(runs),
            "wall_time_s": round(max(walls), 1), "wall_time_per_run_s": [round(w, 1) for w in walls],
            "machine": first.get("machine"), "threads_per_run": first.get("threads"), "torch": first.get("torch"),
            "collected_from": Path(path).name, **extra}
    (dest / f"provenance_{out.stem}.json").write_text(json.dumps(prov, indent=2, default=str))
    return out


def main(argv=None) -> int:
    """``python -m dplpaper.experiments.portable export|run ...`` (see :func:`run_method`)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m dplpaper.experiments.portable")
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="write the full Case 2 inputs (Daymet, 426 basins) to an .npz")
    e.add_argument("path")
    e.add_argument("--quick", action="store_true", help="the shipped 40 basins instead")
    r = sub.add_parser("run", help="run one method and seed on an exported .npz")
    r.add_argument("inputs")
    r.add_argument("method", choices=["dpl", "dpl_extra", "dpl_nmul1", "dpl_dynamic", "lstm"])
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", required=True)
    r.add_argument("--epochs", type=int)
    r.add_argument("--lr", type=float)
    r.add_argument("--hidden", type=int)
    r.add_argument("--device", default="cpu")
    r.add_argument("--net-device")
    r.add_argument("--threads", type=int)
    p3 = sub.add_parser("case3-pub", help="Case 3 PUB, dPL, one fold and attribute set, on an exported .npz")
    p3.add_argument("inputs")
    p3.add_argument("--fold", type=int, required=True)
    p3.add_argument("--attributes", choices=["8", "27"], required=True)
    p3.add_argument("--seed", type=int, default=0)
    p3.add_argument("--out", required=True)
    p3.add_argument("--threads", type=int)
    c = sub.add_parser("collect", help="gather run outputs of several folders into one json file")
    c.add_argument("path")
    c.add_argument("dirs", nargs="+")
    a = p.parse_args(argv)
    if a.cmd == "case3-pub":
        print(run_case3_pub_fold(a.inputs, a.fold, a.attributes, a.out, a.seed, a.threads))
        return 0
    if a.cmd == "collect":
        print(collect_runs(a.dirs, a.path))
        return 0
    if a.cmd == "export":
        from dplpaper.experiments import streamflow as sf
        ds, attrs = sf.load_streamflow_data(quick=True if a.quick else None, forcing="daymet")
        names = tuple(dict.fromkeys(tuple(sf.ATTRIBUTES_27) + tuple(sf.BECK_ATTRIBUTES_CAMELS)))
        check_roundtrip(ds, attrs, a.path, EXPORT_PERIOD, names)
        print(a.path)
        return 0
    print(run_method(a.inputs, a.method, a.seed, a.out, a.epochs, a.device, a.net_device, a.threads, a.lr, a.hidden))
    return 0


#: the days Case 2 needs: the test period's spin-up year through the end of training
EXPORT_PERIOD = ("1988-10-01", "2008-09-30")

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
