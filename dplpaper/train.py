"""The dPL trainer: one domain-wide loss, mini-batches of sites and time windows.

Each iteration draws ``batch_sites`` random training sites (without replacement) and, for each
of them, a random window of ``warmup_days + window_days`` consecutive days; the model runs
over the whole window, the first ``warmup_days`` only spin up the states and the loss
(NaN-masked) is computed on the last ``window_days`` against the observations.

Epochs are counted in the paper's unit: an epoch is, on average, one forward run of the
model per training site over the training period. With ``S`` training sites and ``T`` days
in which a loss window can lie (the record length minus ``warmup_days``), an iteration adds
``batch_sites * window_days / (S * T)`` epochs; one loop epoch is the whole number of
iterations closest to one such epoch (at least one). ``TrainResult.history`` has one row per
loop epoch (row 0: before training, when an ``eval_fn`` is given) with columns

* ``loop`` (loop-epoch index), ``epoch`` (cumulative forward runs per site: the paper's x axis,
  named and defined as in :mod:`dplpaper.calibrate.sceua`'s summary, so both draw on one
  axis), ``iteration`` (cumulative),
* ``wall_time_s`` (cumulative training time, excluding evaluation and checkpoint writing),
* ``train_loss`` (mean mini-batch loss of the epoch), and whatever ``eval_fn`` returned.

gZ inputs: the network sees the series (``TrainingData.series``) over the same warm-up + window
span as the process model, observations included, as in the paper's training (historical
observations of the training period enter gZ); :func:`predict` takes other ``series`` (e.g. the
training period's) when simulating another period.

Reproducibility: everything random is seeded from ``TrainConfig.seed``: mini-batches come from a
``numpy.random.Generator`` and dropout from torch's generator; both states, the model and the
optimizer are saved after each epoch to ``checkpoint_dir/last.pt``, and ``resume=True``
continues a killed run to the same weights, bit for bit (CPU). The checkpoint also holds a
fingerprint of the settings (:data:`RESUME_SETTINGS`) and of the data (shapes and a hash of
forcing, attributes, target and series); resuming with other settings or data raises
:class:`CheckpointError` saying what changed (``epochs`` may grow), and so does a checkpoint
that cannot be read (the message names its path).

Target checks (before training): a target with no finite value, with inf, or with an obvious
missing-value marker (-999, -9999, ...) raises ValueError; with a loss that divides by each
site's variance (``"kge"``, ``"nse"`` other than the ``nse_star`` variant) so does a site whose
observations are constant (it would be left out of the loss without a word).

Multi-process training: launch with ``torchrun`` (``python -m torch.distributed.run``) and
call ``torch.distributed.init_process_group`` (``gloo`` on CPU, ``nccl`` on GPU) before
:func:`train_dpl`. It then wraps the model in ``DistributedDataParallel``, gives rank ``r`` the
training sites ``r, r + W, r + 2W, ...`` (``W`` ranks) and ``ceil(batch_sites / W)`` of them per
iteration; gradients are averaged across ranks, so all ranks keep identical weights. Rank 0
evaluates, writes the history and the checkpoint (each rank saves its own random state).
"""
from __future__ import annotations

import hashlib
import math
import os
import pickle
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from dplpaper.progress import tqdm

from dplpaper.metrics import get_loss

__all__ = ["TrainConfig", "TrainingData", "TrainResult", "train_dpl", "predict", "predict_parameters",
           "CheckpointError", "RESUME_SETTINGS"]

#: TrainConfig fields that must match between a checkpoint and the run resuming it
#: (``epochs`` may grow; ``checkpoint_dir``, ``eval_every``, ``device``, ``progress`` may change)
RESUME_SETTINGS = ("batch_sites", "window_days", "warmup_days", "loss", "loss_kwargs", "optimizer", "lr", "seed",
                   "grad_clip")
#: values in a target that are missing-value markers of some format, never observations
TARGET_MISSING_MARKERS = (-99.0, -999.0, -9999.0, -99999.0)


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read, or does not belong to this run (settings or data changed)."""


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train_dpl`.

    Attributes:
        epochs: loop epochs (each ~ one forward run per training site, see module doc).
        batch_sites: sites per mini-batch (summed over ranks when distributed).
        window_days: length of each loss window (days).
        warmup_days: spin-up days run before each window (not in the loss).
        loss: ``"rmse"``, ``"nse"``, ``"kge"`` or ``"rmse_logflow"`` (:mod:`dplpaper.metrics`).
        loss_kwargs: extra keyword arguments of the loss (e.g. ``{"variant": "nse_star"}``).
        optimizer: ``"adam"`` or ``"adadelta"``.
        lr: learning rate (Adadelta's customary value is 1.0).
        seed: seeds mini-batch sampling (numpy Generator) and dropout (``train_dpl`` calls
            ``torch.manual_seed(seed + rank)`` on a fresh start; the model is built before).
        checkpoint_dir: folder for ``last.pt`` (written after every epoch); ``None``: none.
        eval_every: call ``eval_fn`` every this many epochs (and after the last one).
        device: torch device of the model and the mini-batches.
        progress: show a tqdm progress bar (rank 0 only).
        grad_clip: clip the gradient norm to this value (``None``: no clipping).
    """

    epochs: int = 50
    batch_sites: int = 100
    window_days: int = 365
    warmup_days: int = 365
    loss: str = "rmse"
    loss_kwargs: dict = field(default_factory=dict)
    optimizer: str = "adam"
    lr: float = 1e-3
    seed: int = 0
    checkpoint_dir: str | None = None
    eval_every: int = 1
    device: str = "cpu"
    progress: bool = True
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_sites", "window_days", "eval_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.warmup_days < 0:
            raise ValueError(f"TrainConfig.warmup_days must be >= 0, got {self.warmup_days}")
        if self.optimizer not in ("adam", "adadelta"):
            raise ValueError(f"TrainConfig.optimizer must be 'adam' or 'adadelta', got {self.optimizer!r}")
        get_loss(self.loss)  # raises on unknown names


@dataclass
class TrainingData:
    """Tensors for training or prediction (all on CPU; the trainer moves mini-batches).

    Attributes:
        forcing: ``[time, site, n_forcing]`` process-model forcing (no NaN).
        attributes: ``[site, n_attributes]`` normalized static attributes (no NaN).
        target: ``[time, site]`` observations of ``target_name`` (NaN = missing).
        series: ``[time, site, n_series]`` normalized gZ input series (NaN allowed in the
            channels gZ masks), or ``None`` for gA.
        target_name: the process-model output compared with ``target`` (e.g. "streamflow").
        site_ids: optional labels of the sites.
    """

    forcing: torch.Tensor
    attributes: torch.Tensor
    target: torch.Tensor
    series: torch.Tensor | None = None
    target_name: str = "streamflow"
    site_ids: Sequence | None = None

    def __post_init__(self) -> None:
        f, a, y = self.forcing, self.attributes, self.target
        if f.ndim != 3:
            raise ValueError(f"TrainingData.forcing must be [time, site, n_forcing], got {tuple(f.shape)}")
        n_t, n_s = f.shape[:2]
        if a.ndim != 2 or a.shape[0] != n_s:
            raise ValueError(f"TrainingData.attributes must be [{n_s}, n_attributes], got {tuple(a.shape)}")
        if y.shape != (n_t, n_s):
            raise ValueError(f"TrainingData.target must be [{n_t}, {n_s}], got {tuple(y.shape)}")
        if self.series is not None and (self.series.ndim != 3 or self.series.shape[:2] != (n_t, n_s)):
            raise ValueError(f"TrainingData.series must be [{n_t}, {n_s}, n_series], got {tuple(self.series.shape)}")
        for name, x in (("forcing", f), ("attributes", a)):
            bad = ~torch.isfinite(x)
            if bool(bad.any()):
                idx = torch.nonzero(bad)[0].tolist()
                site = idx[1] if name == "forcing" else idx[0]
                label = self.site_ids[site] if self.site_ids is not None else site
                raise ValueError(f"TrainingData.{name}: non-finite value at index {idx} (site {label})")
        if self.site_ids is not None and len(self.site_ids) != n_s:
            raise ValueError(f"TrainingData.site_ids has {len(self.site_ids)} labels for {n_s} sites")

    @property
    def n_time(self) -> int:
        return int(self.forcing.shape[0])

    @property
    def n_sites(self) -> int:
        return int(self.forcing.shape[1])

    def subset(self, sites) -> "TrainingData":
        """The same data restricted to site indices ``sites``."""
        idx = torch.as_tensor(np.asarray(sites), dtype=torch.long)
        ids = None if self.site_ids is None else [self.site_ids[i] for i in idx.tolist()]
        return TrainingData(self.forcing[:, idx], self.attributes[idx], self.target[:, idx],
                            None if self.series is None else self.series[:, idx],
                            self.target_name, ids)


@dataclass
class TrainResult:
    """Outcome of :func:`train_dpl`: the trained model (unwrapped), the learning curve,
    where the checkpoint is, and how many iterations make one loop epoch."""

    model: torch.nn.Module
    history: pd.DataFrame
    checkpoint_path: str | None
    iterations_per_epoch: int
    epochs_done: int


def _net_inputs(model, data: TrainingData, t_idx, sites, device, series=None, attributes=None):
    attrs = data.attributes if attributes is None else attributes
    ser = data.series if series is None else series
    out = []
    for name in model.inputs:
        if name == "attributes":
            out.append(attrs[sites].to(device))
        elif name == "series":
            if ser is None:
                raise ValueError("the network needs series inputs (gZ) but TrainingData.series is None")
            out.append((ser[:, sites] if t_idx is None else ser[t_idx, sites[None, :]]).to(device))
        else:
            raise ValueError(f"unknown network input {name!r}")
    return out


def _dist_info():
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _rng_state(rng: np.random.Generator) -> dict:
    st = {"numpy": rng.bit_generator.state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(rng: np.random.Generator, st: dict) -> None:
    rng.bit_generator.state = st["numpy"]
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def _site_label(data: TrainingData, idx) -> list:
    return [data.site_ids[i] if data.site_ids is not None else i for i in idx]


def _check_target(data: TrainingData, config: TrainConfig) -> None:
    """Refuse targets that cannot be fitted (see module docstring), naming the sites."""
    y = data.target.detach().double()
    name = f"TrainingData.target ({data.target_name})"
    fin = torch.isfinite(y)
    if not bool(fin.any()):
        raise ValueError(f"{name} has no finite value ({y.shape[1]} sites, {y.shape[0]} days): nothing to fit")
    inf = torch.isinf(y)
    if bool(inf.any()):
        t, s = (int(i) for i in torch.nonzero(inf)[0])
        raise ValueError(f"{name}: non-finite value {float(y[t, s])} at site {_site_label(data, [s])[0]} "
                         f"(day index {t}); missing observations must be NaN")
    marker = torch.zeros_like(fin)
    for m in TARGET_MISSING_MARKERS:
        marker |= y == m
    if bool(marker.any()):
        sites = torch.nonzero(marker.any(0)).flatten().tolist()
        t, s = (int(i) for i in torch.nonzero(marker)[0])
        raise ValueError(f"{name}: value {float(y[t, s]):g} at site {_site_label(data, [s])[0]} (day index {t}) is a "
                         f"missing-value marker, not an observation; set missing values to NaN "
                         f"({int(marker.sum())} values at sites {_site_label(data, sites[:10])})")
    n = fin.sum(0)
    empty = torch.nonzero(n == 0).flatten().tolist()
    if empty:
        warnings.warn(f"{name}: sites {_site_label(data, empty[:10])} ({len(empty)} in all) have no observation "
                      "in the training period; they do not enter the loss", RuntimeWarning, stacklevel=3)
    variant = dict(config.loss_kwargs).get("variant")
    if config.loss == "kge" or (config.loss == "nse" and variant != "nse_star"):
        y0 = torch.where(fin, y, 0)
        cnt = n.clamp(min=1)
        mu = y0.sum(0) / cnt
        sd = torch.sqrt((torch.where(fin, y - mu, 0) ** 2).sum(0) / cnt)
        scale = torch.where(fin, y.abs(), 0).sum(0) / cnt
        const = (n >= 2) & (sd <= 1e-6 * scale)
        if bool(const.any()):
            sites = torch.nonzero(const).flatten().tolist()
            raise ValueError(f"{name}: constant observations (zero variance) at sites {_site_label(data, sites[:10])} "
                             f"({len(sites)} in all): loss {config.loss!r} divides by each site's variance and would "
                             "leave them out; drop these sites or use loss='rmse' or the 'nse_star' variant")


def _data_fingerprint(data: TrainingData) -> dict:
    """Shapes, dtypes and a blake2b hash of forcing, attributes, target (and series)."""
    out = {}
    for name in ("forcing", "attributes", "target", "series"):
        x = getattr(data, name)
        if x is None:
            out[name] = None
            continue
        a = np.ascontiguousarray(x.detach().cpu().numpy())
        out[name] = {"shape": list(a.shape), "dtype": str(a.dtype),
                     "blake2b": hashlib.blake2b(a.view(np.uint8).reshape(-1), digest_size=16).hexdigest()}
    out["target_name"] = data.target_name
    return out


def _settings_fingerprint(config: TrainConfig) -> dict:
    c = asdict(config)
    return {k: c[k] for k in RESUME_SETTINGS}


def _compare_fingerprint(saved: dict | None, config: TrainConfig, data: TrainingData, ckpt: Path,
                         epochs_done: int) -> None:
    if config.epochs < epochs_done:
        raise CheckpointError(f"checkpoint {ckpt} has {epochs_done} epochs done, more than TrainConfig.epochs = "
                              f"{config.epochs}; raise epochs or start afresh (resume=False)")
    if saved is None:
        warnings.warn(f"checkpoint {ckpt} has no settings/data fingerprint (written by an older version): "
                      "resuming without checking that settings and data are unchanged", RuntimeWarning, stacklevel=3)
        return
    changes = []
    now = _settings_fingerprint(config)
    for k in RESUME_SETTINGS:
        if k in saved.get("settings", {}) and saved["settings"][k] != now[k]:
            changes.append(f"{k} {saved['settings'][k]!r} -> {now[k]!r}")
    dnow = _data_fingerprint(data)
    for k, v in saved.get("data", {}).items():
        w = dnow.get(k)
        if v == w:
            continue
        if isinstance(v, dict) and isinstance(w, dict) and v["shape"] != w["shape"]:
            changes.append(f"data.{k} shape {v['shape']} -> {w['shape']}")
        elif isinstance(v, dict) and isinstance(w, dict) and v["dtype"] != w["dtype"]:
            changes.append(f"data.{k} dtype {v['dtype']} -> {w['dtype']}")
        elif isinstance(v, dict) and isinstance(w, dict):
            changes.append(f"data.{k} values differ (same shape)")
        else:
            changes.append(f"data.{k} {v!r} -> {w!r}")
    if changes:
        raise CheckpointError(f"cannot resume from {ckpt}: it was written with other settings or data: "
                              + "; ".join(changes) + ". Restore them, or start afresh (resume=False or another "
                              "checkpoint_dir); only epochs may grow")


_CKPT_READ_ERRORS = (EOFError, RuntimeError, pickle.UnpicklingError, OSError, KeyError, ValueError, TypeError,
                     AttributeError, IndexError)


def _load_checkpoint(path: Path, device, required=()) -> dict:
    """``torch.load`` that names the file on any read error (truncated, corrupt, not a checkpoint)."""
    try:
        st = torch.load(path, map_location=device, weights_only=False)
    except _CKPT_READ_ERRORS as e:
        raise CheckpointError(f"cannot read checkpoint {path} ({type(e).__name__}: {e}); truncated or corrupt? "
                              "delete it to start afresh") from e
    missing = [k for k in required if not isinstance(st, dict) or k not in st]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}: not a train_dpl checkpoint, or corrupt")
    return st


def train_dpl(model, data: TrainingData, config: TrainConfig,
              eval_fn: Callable[[torch.nn.Module], dict] | None = None,
              resume: bool = False) -> TrainResult:
    """Train a :class:`dplpaper.nets.DPLModel` with a domain-wide, NaN-masked loss.

    Args:
        model: a ``DPLModel`` (any module with ``inputs`` and ``forward(forcing, *inputs, warmup=)``
            returning a dict that holds ``data.target_name``).
        data: training sites and period.
        config: see :class:`TrainConfig`.
        eval_fn: ``eval_fn(model) -> dict[str, float]``, called (model in eval mode, no grad)
            before training and every ``config.eval_every`` epochs; its values go into the
            history (e.g. test-period median NSE).
        resume: continue from ``config.checkpoint_dir/last.pt`` when it exists.

    Returns:
        :class:`TrainResult`. Raises ``FloatingPointError`` if a loss is NaN/inf, ``ValueError``
        for a target that cannot be fitted, :class:`CheckpointError` when resuming from a
        checkpoint that cannot be read or was written with other settings or data.
    """
    rank, world = _dist_info()
    device = torch.device(config.device)
    if device.type == "cuda" and device.index is None and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank % max(torch.cuda.device_count(), 1))))
    n_t, n_s = data.n_time, data.n_sites
    warm, win = int(config.warmup_days), int(config.window_days)
    span = warm + win
    if n_t < span:
        raise ValueError(f"training period has {n_t} days, fewer than warmup_days + window_days = {span}")
    local_sites = np.arange(n_s)[rank::world]
    if len(local_sites) == 0:
        raise ValueError(f"rank {rank} of {world} has no training sites ({n_s} sites in all)")
    b_local = min(math.ceil(config.batch_sites / world), len(local_sites))
    b_global = b_local * world
    t_avail = n_t - warm
    per_iter = b_global * win / (n_s * t_avail)
    n_iter = max(1, round(1.0 / per_iter))
    _check_target(data, config)

    loss_fn = get_loss(config.loss)
    loss_kwargs = dict(config.loss_kwargs)
    site_std = None
    if config.loss == "nse":
        tgt = data.target.double()
        ok = ~torch.isnan(tgt)
        cnt = ok.sum(0).clamp(min=1)
        mu = torch.where(ok, tgt, 0).sum(0) / cnt
        site_std = torch.sqrt((torch.where(ok, tgt - mu, 0) ** 2).sum(0) / cnt).to(data.target.dtype)

    model.to(device)
    net_params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        opt = torch.optim.Adam(net_params, lr=config.lr)
    else:
        opt = torch.optim.Adadelta(net_params, lr=config.lr)
    rng = np.random.default_rng([int(config.seed), rank])
    torch.manual_seed(int(config.seed) + rank)

    ckpt_dir = Path(config.checkpoint_dir) if config.checkpoint_dir else None
    ckpt = ckpt_dir / "last.pt" if ckpt_dir else None
    history: list[dict] = []
    start_epoch, iteration, wall, epoch_equiv = 0, 0, 0.0, 0.0
    if resume and ckpt is not None and ckpt.exists():
        st = _load_checkpoint(ckpt, device, ("model", "optimizer", "history", "epoch", "iteration", "wall_time_s",
                                             "epoch_equiv", "rng"))
        _compare_fingerprint(st.get("fingerprint"), config, data, ckpt, int(st["epoch"]))
        if st.get("world_size", world) != world:
            raise CheckpointError(f"cannot resume from {ckpt}: written by {st['world_size']} processes, "
                                  f"resumed with {world}")
        try:
            model.load_state_dict(st["model"])
            opt.load_state_dict(st["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(f"checkpoint {ckpt} does not fit this model/optimizer ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0]})") from e
        history = list(st["history"])
        start_epoch, iteration, wall, epoch_equiv = st["epoch"], st["iteration"], st["wall_time_s"], st["epoch_equiv"]
        rst = st["rng"] if rank == 0 else _load_checkpoint(ckpt_dir / f"rng_rank{rank}.pt", "cpu", ("numpy", "torch"))
        if rst.get("epoch", start_epoch) != start_epoch:
            raise RuntimeError(f"checkpoint {ckpt} (epoch {start_epoch}) and the random state of rank {rank} "
                               f"(epoch {rst.get('epoch')}) disagree; the run was killed while saving")
        _set_rng_state(rng, rst)
    elif resume and ckpt is None:
        raise ValueError("resume=True needs TrainConfig.checkpoint_dir")

    fwd = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel
        fwd = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def evaluate(epoch_rec: dict) -> None:
        if eval_fn is None or rank != 0:
            return
        model.eval()
        with torch.no_grad():
            vals = eval_fn(model)
        model.train()
        epoch_rec.update({k: float(v) for k, v in vals.items()})

    if start_epoch == 0 and not history and eval_fn is not None:
        rec = dict(loop=0, epoch=0.0, iteration=0, wall_time_s=0.0, train_loss=float("nan"))
        evaluate(rec)
        history.append(rec)

    fingerprint = {"settings": _settings_fingerprint(config), "data": _data_fingerprint(data)} \
        if ckpt_dir is not None and rank == 0 else None
    offsets = torch.arange(span)
    bar = tqdm(total=(config.epochs - start_epoch) * n_iter, disable=not (config.progress and rank == 0),
               desc="dPL training", unit="it", dynamic_ncols=True)
    model.train()
    epoch = start_epoch
    for epoch in range(start_epoch + 1, config.epochs + 1):
        t0 = time.perf_counter()
        losses = []
        for it in range(n_iter):
            sites = torch.as_tensor(rng.choice(local_sites, size=b_local, replace=False), dtype=torch.long)
            starts = torch.as_tensor(rng.integers(0, n_t - span + 1, size=b_local), dtype=torch.long)
            t_idx = starts[None, :] + offsets[:, None]                  # [span, b]
            forcing = data.forcing[t_idx, sites[None, :]].to(device)   # [span, b, nf]
            obs = data.target[t_idx[warm:], sites[None, :]].to(device)  # [win, b]
            inputs = _net_inputs(model, data, t_idx, sites, device)
            out = fwd(forcing, *inputs, warmup=warm)
            if data.target_name not in out:
                raise KeyError(f"process model outputs {sorted(out)} lack the target {data.target_name!r}")
            sim = out[data.target_name]
            if bool(torch.isnan(sim).any()):
                bad_site = int(sites[torch.nonzero(torch.isnan(sim))[0, 1]])
                raise FloatingPointError(f"the process model simulated NaN {data.target_name} at epoch {epoch}, "
                                         f"iteration {it} (training site index {bad_site})")
            kw = dict(loss_kwargs)
            if site_std is not None:
                kw["site_std"] = site_std[sites].to(device)
            loss = loss_fn(sim, obs, **kw)
            if not bool(torch.isfinite(loss)):
                raise FloatingPointError(f"loss is {float(loss)} at epoch {epoch}, iteration {it} "
                                         f"(sites {sites.tolist()[:10]}...)")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            bad_grad = [n for n, p in model.named_parameters() if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
            if bad_grad:
                raise FloatingPointError(f"non-finite gradient of {bad_grad[:5]} at epoch {epoch}, iteration {it}")
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(net_params, config.grad_clip)
            opt.step()
            losses.append(float(loss.detach()))
            iteration += 1
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{losses[-1]:.4g}")
        wall += time.perf_counter() - t0
        epoch_equiv += n_iter * per_iter
        rec = dict(loop=epoch, epoch=epoch_equiv, iteration=iteration, wall_time_s=wall,
                   train_loss=float(np.mean(losses)))
        if epoch % config.eval_every == 0 or epoch == config.epochs:
            evaluate(rec)
        history.append(rec)
        if ckpt_dir is not None:
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            rst = dict(_rng_state(rng), epoch=epoch)
            if rank == 0:
                _save_atomic({"model": model.state_dict(), "optimizer": opt.state_dict(), "history": history,
                              "epoch": epoch, "iteration": iteration, "wall_time_s": wall,
                              "epoch_equiv": epoch_equiv, "rng": rst, "config": asdict(config),
                              "world_size": world, "fingerprint": fingerprint}, ckpt)
            else:
                _save_atomic(rst, ckpt_dir / f"rng_rank{rank}.pt")
    bar.close()
    return TrainResult(model=model, history=pd.DataFrame(history),
                       checkpoint_path=str(ckpt) if ckpt else None,
                       iterations_per_epoch=n_iter, epochs_done=epoch)


def predict(model, data: TrainingData, warmup_days: int = 0, chunk_sites: int = 256,
            series: torch.Tensor | None = None, attributes: torch.Tensor | None = None,
            device: str | torch.device = "cpu", outputs: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """Full-period simulation, sites in chunks, under ``torch.no_grad`` in eval mode.

    Args:
        model: a trained ``DPLModel``.
        data: forcing (and attributes / series) of the sites and period to simulate.
        warmup_days: leading days used only to spin up the states (dropped from the output).
        chunk_sites: sites per forward run (memory bound).
        series: gZ input series ``[time', site, n_series]`` to use instead of ``data.series``
            (e.g. the training-period forcing and observations when simulating a test period).
        attributes: attributes to use instead of ``data.attributes``.
        device: where to run; results come back on CPU.
        outputs: which outputs to keep (default: all).
    Returns:
        dict of output name -> ``[time - warmup_days, site]`` CPU tensors.
    """
    device = torch.device(device)
    was_training = model.training
    model.to(device).eval()
    parts: dict[str, list[torch.Tensor]] = {}
    try:
        with torch.no_grad():
            for lo in range(0, data.n_sites, chunk_sites):
                sites = torch.arange(lo, min(lo + chunk_sites, data.n_sites))
                inputs = _net_inputs(model, data, None, sites, device, series=series, attributes=attributes)
                out = model(data.forcing[:, sites].to(device), *inputs, warmup=warmup_days)
                for k, v in out.items():
                    if outputs is None or k in outputs:
                        parts.setdefault(k, []).append(v.cpu())
    finally:
        model.train(was_training)
    return {k: torch.cat(v, dim=1) for k, v in parts.items()}


def predict_parameters(model, data: TrainingData, chunk_sites: int = 256,
                       series: torch.Tensor | None = None, attributes: torch.Tensor | None = None,
                       device: str | torch.device = "cpu") -> torch.Tensor:
    """The network's unit-cube parameters for every site, ``[site, n_params, nmul]``
    (or ``[time, site, n_params, nmul]`` for a dynamic gZ), on CPU."""
    device = torch.device(device)
    was_training = model.training
    model.to(device).eval()
    parts = []
    try:
        with torch.no_grad():
            for lo in range(0, data.n_sites, chunk_sites):
                sites = torch.arange(lo, min(lo + chunk_sites, data.n_sites))
                inputs = _net_inputs(model, data, None, sites, device, series=series, attributes=attributes)
                parts.append((model.parameters_unit(*inputs) if hasattr(model, "parameters_unit") else model.net(*inputs)).cpu())
    finally:
        model.train(was_training)
    return torch.cat(parts, dim=-3)
