"""The methods of Case 1, through the LSTM surrogate of the VIC-style model: the surrogate itself,
dPL (gA, gZ) and per-cell SCE-UA, each returning a :class:`MethodRun` (parameters, learning curve
against epochs and wall time); the default parameters as a fourth "method"."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

from dplpaper.data.soil_moisture import ATTRIBUTES, FORCING_VARS, PARAM_NAMES, SOIL_VARS, Case1Data, load_case1
from dplpaper.data.twin import haversine_km
from dplpaper.experiments.configs import CASE1_SURROGATE_FIELDS, Case1Config
from dplpaper.models.base import ProcessModel
from dplpaper.models.surrogate import (LSTMSurrogate, evaluate_surrogate, latin_hypercube,
                                       make_surrogate_training_set, train_surrogate)
from dplpaper.models.vicwb import PARAMETER_TABLE, VICStyleModel
from dplpaper.nets import GA, GZ, DPLModel, Normalizer
from dplpaper.results import results_dir
from dplpaper.train import TrainConfig, TrainingData, train_dpl

__all__ = ["SoilSurrogate", "surrogate_split", "surrogate_path", "get_surrogate", "surrogate_accuracy", "MethodRun",
           "surrogate_chunks", "run_dpl", "run_sceua", "default_run"]


class SoilSurrogate(ProcessModel):
    """The frozen LSTM surrogate as a :class:`ProcessModel` whose forcing carries the soil texture.

    :class:`dplpaper.nets.DPLModel` calls ``pbm(forcing, params, warmup)`` without attributes, but
    the surrogate needs each cell's texture (it sets the VIC-style soil). So the forcing has six
    channels, ``(precip, temp, pet, sand, clay, silt)``, the last three constant in time; they
    are split off and passed as the surrogate's attributes. Outputs: ``soil_moisture`` (m3/m3)
    and ``et`` (mm/d), ``[time - warmup, site]``.
    """

    nmul = 1

    def __init__(self, surrogate: LSTMSurrogate):
        super().__init__()
        self.surrogate = surrogate
        self.parameter_table = surrogate.parameter_table
        self.forcing_names = tuple(surrogate.forcing_names) + SOIL_VARS
        self._nf = len(surrogate.forcing_names)

    def forward(self, forcing: torch.Tensor, params: torch.Tensor, warmup: int = 0) -> dict[str, torch.Tensor]:
        nf = self._nf
        return self.surrogate(forcing[..., :nf], params, warmup=warmup, attributes=forcing[0, :, nf:])


def surrogate_split(cfg: Case1Config, n_sites: int) -> tuple[np.ndarray, np.ndarray]:
    """(cells whose forcing trains the surrogate, held-out cells), seeded by ``cfg.twin_seed``."""
    perm = np.random.default_rng([cfg.twin_seed, 7]).permutation(n_sites)
    k = int(round(cfg.sur_train_frac * n_sites))
    return np.sort(perm[:k]), np.sort(perm[k:])


def _surrogate_training_set(cfg: Case1Config, data: Case1Data, sites: np.ndarray) -> dict:
    """LHS parameter sets x cells simulated by the (spun-up) VIC-style model over the record."""
    P = latin_hypercube(cfg.sur_param_sets, len(PARAM_NAMES), seed=cfg.twin_seed)
    f = data.forcing[:, sites]
    n_spin = 365
    f_ext = np.concatenate([f[:n_spin], f], axis=0)
    attrs = {k: data.soil[sites, i] for i, k in enumerate(SOIL_VARS)}
    return make_surrogate_training_set(VICStyleModel(), f_ext, attrs, params=P, outputs=("soil_moisture", "et"),
                                       spinup=n_spin, sets_per_run=4)


def surrogate_path(cfg: Case1Config) -> Path:
    return results_dir("case1") / f"surrogate_{cfg.mode}_{cfg.key(CASE1_SURROGATE_FIELDS)}.pt"


def get_surrogate(cfg: Case1Config, data: Case1Data | None = None, progress: bool = False) -> LSTMSurrogate:
    """The trained surrogate: loaded from ``results/case1`` when cached, else trained and cached."""
    path = surrogate_path(cfg)
    if cfg.use_cache and path.exists():
        return LSTMSurrogate.load(path)
    data = data or load_case1(cfg, "real")
    tr, _ = surrogate_split(cfg, data.n_sites)
    dset = _surrogate_training_set(cfg, data, tr)
    sur = train_surrogate(dset, outputs=("soil_moisture", "et"), hidden=cfg.sur_hidden, epochs=1,
                          iters_per_epoch=cfg.sur_iters, batch=cfg.sur_batch, seq_len=240,
                          warmup=cfg.spinup_days, lr=cfg.sur_lr, seed=cfg.twin_seed, progress=progress)
    sur.save(path)
    return sur


def surrogate_accuracy(cfg: Case1Config, surrogate: LSTMSurrogate, data: Case1Data | None = None) -> dict:
    """Surrogate vs VIC-style model on held-out cells and fresh parameter sets (Figure S2 analogue).

    Returns dict with ``table`` (DataFrame: one row per (set, held-out cell): site, set, lat, lon,
    corr_sm, rmse_sm, corr_et, rmse_et), ``median`` (dict of medians), and ``example`` (the
    legacy / surrogate series of one cell, over the test period) for plotting. Writes
    ``results/case1/surrogate_accuracy_<mode>.csv``. Compared over the record after 90 days.
    """
    data = data or load_case1(cfg, "real")
    surrogate = surrogate.cpu()
    _, held = surrogate_split(cfg, data.n_sites)
    P = latin_hypercube(cfg.sur_eval_sets, len(PARAM_NAMES), seed=cfg.twin_seed + 1000)
    params = np.broadcast_to(P[:, None, :], (len(P), len(held), len(PARAM_NAMES)))
    attrs = {k: data.soil[held, i] for i, k in enumerate(SOIL_VARS)}
    # the legacy runs start from a spun-up state: prepend one year, compare after the surrogate warm-up
    f = data.forcing[:, held]
    f_ext = np.concatenate([f[:365], f], 0)
    res = evaluate_surrogate(surrogate, VICStyleModel(), f_ext, attrs, params, warmup=365 + 90)
    n_set, n_h = len(P), len(held)
    tab = pd.DataFrame({"site": np.tile(data.site[held], n_set), "set": np.repeat(np.arange(n_set), n_h),
                        "lat": np.tile(data.lat[held], n_set), "lon": np.tile(data.lon[held], n_set),
                        "corr_sm": res["soil_moisture"]["corr"], "rmse_sm": res["soil_moisture"]["rmse"],
                        "corr_et": res["et"]["corr"], "rmse_et": res["et"]["rmse"]})
    tab.to_csv(results_dir("case1") / f"surrogate_accuracy_{cfg.mode}.csv", index=False)
    med = {k: float(np.nanmedian(tab[k])) for k in ("corr_sm", "rmse_sm", "corr_et", "rmse_et")}
    j = int(np.argsort(tab["corr_sm"].values[:n_h])[n_h // 2])       # the median cell of set 0
    example = {"time": data.time[90:], "site": data.site[held][j],
               "sm_legacy": res["soil_moisture"]["legacy"][0, :, j], "sm_surrogate": res["soil_moisture"]["surrogate"][0, :, j],
               "et_legacy": res["et"]["legacy"][0, :, j], "et_surrogate": res["et"]["surrogate"][0, :, j]}
    return {"table": tab, "median": med, "example": example, "n_heldout_cells": n_h, "n_sets": n_set}


@dataclass
class MethodRun:
    """Outcome of one calibration (or the default parameters).

    Attributes:
        method: ``"default"``, ``"sceua"``, ``"gz"`` or ``"ga"``; density: e.g. ``"s8"``; seed.
        train_idx: ``[n]`` training cell indices.
        params: ``[S, 5]`` unit-cube parameters for every cell: for dPL inferred by the network
            (gA from the cell's attributes, gZ from its attributes and training-period forcing and
            observations); for SCE-UA NaN outside the calibrated cells (use :meth:`params_at`).
        history: learning curve, columns ``epoch``, ``wall_time_s``, ``test_rmse``.
        info: settings and timings.
    """

    method: str
    density: str
    seed: int
    train_idx: np.ndarray
    params: np.ndarray
    history: pd.DataFrame
    info: dict = field(default_factory=dict)

    def params_at(self, idx, data: Case1Data) -> np.ndarray:
        """Parameters at cells ``idx``; SCE-UA cells without a calibration take those of the
        nearest calibrated cell (great-circle distance), as in the paper's spatial test."""
        idx = np.asarray(idx, dtype=int)
        p = self.params[idx].copy()
        miss = np.isnan(p).any(1)
        if miss.any():
            cal = np.flatnonzero(~np.isnan(self.params).any(1))
            d = haversine_km(np.r_[data.lat[idx[miss]], data.lat[cal]], np.r_[data.lon[idx[miss]], data.lon[cal]])
            d = d[:miss.sum(), miss.sum():]
            p[miss] = self.params[cal[np.argmin(d, axis=1)]]
        return p

    def to_netcdf(self, path: Path) -> None:
        ds = xr.Dataset({"params": (("site", "param"), self.params),
                         "train": ("site", np.isin(np.arange(len(self.params)), self.train_idx).astype(np.int8))},
                        coords={"param": list(PARAM_NAMES)})
        for c in self.history.columns:
            ds[f"history_{c}"] = ("row", self.history[c].values.astype(float))
        ds["train_idx"] = ("n_train", np.asarray(self.train_idx, dtype=np.int64))
        ds.attrs.update(method=self.method, density=self.density, seed=int(self.seed), info=json.dumps(self.info, default=str))
        tmp = path.with_suffix(".tmp.nc")
        ds.to_netcdf(tmp)
        tmp.replace(path)

    @classmethod
    def from_netcdf(cls, path: Path) -> "MethodRun":
        with xr.open_dataset(path) as ds:
            ds = ds.load()
        hist = pd.DataFrame({k[len("history_"):]: ds[k].values for k in ds.data_vars if k.startswith("history_")})
        return cls(method=ds.attrs["method"], density=ds.attrs["density"], seed=int(ds.attrs["seed"]),
                   train_idx=ds["train_idx"].values.astype(int), params=ds["params"].values,
                   history=hist, info=json.loads(ds.attrs["info"]))


class _Inputs:
    """Normalized network inputs for all cells (normalizers fitted on the training cells)."""

    def __init__(self, data: Case1Data, train_idx: np.ndarray):
        self.a_norm = Normalizer(names=list(ATTRIBUTES)).fit(data.attributes[train_idx])
        self.attributes = torch.as_tensor(self.a_norm.transform(data.attributes), dtype=torch.float32)
        f_tr, y_tr = data.model_inputs(data.train_period)
        series = np.concatenate([f_tr[..., :3], y_tr[..., None]], -1)            # [spin+n, S, 4]
        self.s_norm = Normalizer(log_features=[0], names=list(FORCING_VARS) + ["soil_moisture"]).fit(series[:, train_idx])
        self.series = torch.as_tensor(self.s_norm.transform(series), dtype=torch.float32)
        self.f_train, self.y_train = torch.as_tensor(f_tr), torch.as_tensor(y_tr)
        f_te, y_te = data.model_inputs(data.test_period)
        self.f_test, self.y_test = torch.as_tensor(f_te), torch.as_tensor(y_te)
        self.spin = data.spinup_days


def _median_rmse(sim: torch.Tensor, obs: torch.Tensor) -> float:
    """Median over cells of the per-cell RMSE (NaN obs ignored); ``[time, site]``."""
    m = ~torch.isnan(obs)
    err = torch.where(m, sim.double() - torch.nan_to_num(obs.double()), torch.zeros((), dtype=torch.float64))
    n = m.sum(0)
    r = torch.sqrt((err ** 2).sum(0) / n.clamp(min=1))
    r = r[n >= 2]
    return float(r.median()) if r.numel() else float("nan")


def _cells_rmse(sim: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
    m = ~torch.isnan(obs)
    err = torch.where(m, sim - torch.nan_to_num(obs), torch.zeros((), dtype=sim.dtype))
    n = m.sum(0)
    return torch.where(n >= 2, torch.sqrt((err ** 2).sum(0) / n.clamp(min=1)), torch.full_like(err[0], float("inf")))


def surrogate_chunks(pbm: SoilSurrogate, forcing: torch.Tensor, params: torch.Tensor, warmup: int, chunk: int,
                      device: torch.device, outputs=("soil_moisture",)) -> dict[str, torch.Tensor]:
    parts: dict[str, list] = {o: [] for o in outputs}
    with torch.no_grad():
        for lo in range(0, forcing.shape[1], chunk):
            hi = min(lo + chunk, forcing.shape[1])
            out = pbm(forcing[:, lo:hi].to(device), params[lo:hi].to(device), warmup=warmup)
            for o in outputs:
                parts[o].append(out[o].cpu())
    return {o: torch.cat(v, 1) for o, v in parts.items()}


def run_dpl(data: Case1Data, surrogate: LSTMSurrogate, train_idx, cfg: Case1Config, net: str = "gz",
            seed: int = 0, epochs: int | None = None, density: str = "custom", progress: bool = False) -> MethodRun:
    """Train gZ (``net="gz"``) or gA (``"ga"``) through the frozen surrogate on the training cells.

    One domain-wide RMSE loss (``cfg.dpl_loss_reduction``: pooled over cell-days, or the mean of
    per-cell RMSEs) over mini-batches of ``cfg.dpl_batch`` cells, each over the whole
    training year after the spin-up; Adam (``cfg.dpl_lr``). The learning curve records, after
    every epoch, the median test-period RMSE at the training cells. Returns a :class:`MethodRun`
    whose ``params`` hold the network's parameters for every cell.
    """
    if net not in ("gz", "ga"):
        raise ValueError(f"net must be 'gz' or 'ga', got {net!r}")
    train_idx = np.asarray(train_idx, dtype=int)
    dev = cfg.torch_device()
    inp = _Inputs(data, train_idx)
    n_attr = inp.attributes.shape[1]
    torch.manual_seed(int(seed))
    if net == "gz":
        network = GZ(n_series=4, n_attributes=n_attr, n_params=len(PARAM_NAMES), hidden=cfg.gz_hidden,
                     masked_series=[3])
    else:
        network = GA(n_attr, len(PARAM_NAMES), hidden=cfg.ga_hidden)
    pbm = SoilSurrogate(surrogate)
    model = DPLModel(network, pbm)
    ti = torch.as_tensor(train_idx)
    td = TrainingData(forcing=inp.f_train[:, ti], attributes=inp.attributes[ti], target=inp.y_train[:, ti],
                      series=inp.series[:, ti] if net == "gz" else None, target_name="soil_moisture",
                      site_ids=list(data.site[train_idx]))
    f_test = inp.f_test[:, ti].to(dev)
    y_test = inp.y_test[inp.spin:, ti]
    net_in = [inp.series[:, ti].to(dev), inp.attributes[ti].to(dev)] if net == "gz" else [inp.attributes[ti].to(dev)]

    def eval_fn(m) -> dict:
        p = m.net(*net_in)
        sim = m.pbm(f_test, p, warmup=inp.spin)["soil_moisture"].cpu()
        return {"test_rmse": _median_rmse(sim, y_test)}

    n_days = len(data.period_index(data.train_period))
    tc = TrainConfig(epochs=int(epochs or cfg.dpl_epochs.get(density, 20)), batch_sites=min(cfg.dpl_batch, len(train_idx)),
                     window_days=n_days, warmup_days=inp.spin, loss="rmse",
                     loss_kwargs={"reduction": cfg.dpl_loss_reduction}, lr=cfg.dpl_lr, seed=int(seed),
                     device=str(dev), progress=progress)
    t0 = time.perf_counter()
    res = train_dpl(model, td, tc, eval_fn=eval_fn)
    total = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        all_in = [inp.series.to(dev), inp.attributes.to(dev)] if net == "gz" else [inp.attributes.to(dev)]
        params = model.net(*all_in)[..., 0].cpu().double().numpy()
    hist = res.history[["epoch", "wall_time_s", "test_rmse"]].copy()
    info = dict(net=net, epochs=tc.epochs, batch=tc.batch_sites, iterations_per_epoch=res.iterations_per_epoch,
                n_train=len(train_idx), total_seconds=total, device=str(dev))
    return MethodRun(net, density, int(seed), train_idx, params, hist, info)


def run_sceua(data: Case1Data, surrogate: LSTMSurrogate, train_idx, cfg: Case1Config, seed: int = 0,
              max_evals: int | None = None, density: str = "custom", progress: bool = False) -> MethodRun:
    """Calibrate each training cell by SCE-UA (:func:`dplpaper.calibrate.sceua.sceua`, all cells in
    lockstep) against its training-year RMSE, through the frozen surrogate.

    Every batch of candidates ``[cells, n_cand, 5]`` is evaluated in one no-grad surrogate call
    (cells x candidates flattened into the site axis, in chunks of ``cfg.sur_chunk``). After
    the initial population and every shuffling loop the median test-period RMSE of the current
    best parameters is recorded (its time is not counted in ``wall_time_s``).
    """
    from dplpaper.calibrate.sceua import pairwise_objective, sceua

    train_idx = np.asarray(train_idx, dtype=int)
    dev = cfg.torch_device()
    pbm = SoilSurrogate(surrogate).to(dev)
    f_tr, y_tr = data.model_inputs(data.train_period, train_idx)
    f_te, y_te = data.model_inputs(data.test_period, train_idx)
    f_tr, f_te = torch.as_tensor(f_tr), torch.as_tensor(f_te)
    y_tr, y_te = torch.as_tensor(y_tr), torch.as_tensor(y_te)
    spin = data.spinup_days
    n = len(train_idx)

    def cost(rep: np.ndarray, params_unit: np.ndarray) -> np.ndarray:   # (cell, candidate) pairs
        p = torch.as_tensor(params_unit, dtype=torch.float32)
        sim = surrogate_chunks(pbm, f_tr[:, rep], p, spin, cfg.sur_chunk, dev)["soil_moisture"]
        return _cells_rmse(sim.double(), y_tr[spin:, rep].double()).numpy()

    cb_time = [0.0]
    cb_log = []

    def callback(epoch: float, best: np.ndarray):
        t = time.perf_counter()
        sim = surrogate_chunks(pbm, f_te, torch.as_tensor(best, dtype=torch.float32), spin, cfg.sur_chunk,
                                dev)["soil_moisture"]
        val = _median_rmse(sim, y_te[spin:])
        cb_log.append(cb_time[0])               # callback time spent before this record
        cb_time[0] += time.perf_counter() - t
        return val

    res = sceua(pairwise_objective(cost), len(PARAM_NAMES), n, n_complexes=cfg.sce_complexes,
                max_evals=int(max_evals or cfg.sce_max_evals), seed=int(seed), progress=progress, callback=callback)
    wall = res.wall_time_history.max(axis=1) - np.asarray(cb_log[:res.wall_time_history.shape[0]])
    hist = pd.DataFrame({"epoch": res.epoch_history.mean(axis=1), "wall_time_s": wall,
                         "test_rmse": [v for (_, _, v) in res.callback_values]})
    params = np.full((data.n_sites, len(PARAM_NAMES)), np.nan)
    params[train_idx] = res.best_params
    info = dict(n_complexes=cfg.sce_complexes, max_evals=int(max_evals or cfg.sce_max_evals), n_train=n,
                total_seconds=float(res.wall_time_s), n_candidates=int(res.n_candidates),
                mean_evals=float(res.n_evals.mean()), reasons=dict(pd.Series(res.reason).value_counts()), device=str(dev))
    return MethodRun("sceua", density, int(seed), train_idx, params, hist, info)


def default_run(data: Case1Data) -> MethodRun:
    """The default parameters (:class:`ParameterTable` defaults, VIC's usual values) at every cell:
    the analogue of the paper's NLDAS-2 parameters."""
    p = np.broadcast_to(PARAMETER_TABLE.defaults_unit(), (data.n_sites, len(PARAM_NAMES))).copy()
    return MethodRun("default", "-", 0, np.arange(data.n_sites), p, pd.DataFrame(columns=["epoch", "wall_time_s", "test_rmse"]))
