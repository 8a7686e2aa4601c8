r"""LSTM surrogate of a legacy (non-differentiable) process model.

The dPL paper differentiated VIC through an LSTM trained to reproduce VIC's own simulations
(Tsai et al. 2021, Methods; median correlation 0.91 for soil moisture and 0.92 for ET). This
module does the same for any legacy model with ``run(forcing, params_unit, warmup, soil_properties)``
and a ``parameter_table`` — here :class:`dplpaper.models.vicwb.VICStyleModel`.

Workflow
--------
1. :func:`make_surrogate_training_set` draws ``n_param_sets`` parameter sets by Latin hypercube
   sampling of the unit cube (seeded), runs the legacy model for every (parameter set, site) pair
   on real forcings and keeps the simulated outputs.
2. :func:`train_surrogate` fits :class:`LSTMSurrogate` to those simulations. Inputs per day are
   the normalized forcings (precipitation as ``log1p``), the normalized static attributes and the
   unit-cube parameters, repeated over time; targets are the chosen outputs, each z-scored.
   Training uses random truncated windows (``seq_len`` days, of which the first ``warmup`` only
   spin up the LSTM state and are left out of the MSE loss), Adam with cosine learning-rate
   decay and gradient clipping. After training the weights are frozen
   (``requires_grad=False``); gradients still flow from the outputs to the parameters.
3. :func:`evaluate_surrogate` compares surrogate and legacy model per (site, parameter set):
   correlation and RMSE for each output.

Network: ``x_t = ReLU(W_I I_t + b_I)`` -> one LSTM layer -> linear head (paper eqs. 1-8,
without dropout), outputs de-normalized to physical units.
"""
from __future__ import annotations

import math
import time
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from dplpaper.models.base import ParameterTable, ParamSpec, ProcessModel

__all__ = ["LSTMSurrogate", "latin_hypercube", "make_surrogate_training_set", "train_surrogate",
           "evaluate_surrogate", "save_surrogate", "load_surrogate"]

FORMAT = "dplpaper.LSTMSurrogate/1"
LOG_FORCINGS = ("precip",)


# ----------------------------------------------------------------------------- sampling
def latin_hypercube(n: int, d: int, seed: int) -> np.ndarray:
    """Latin hypercube sample of ``n`` points in ``[0, 1]^d`` (float64 ``[n, d]``).

    Each dimension is cut into ``n`` equal strata; every stratum holds exactly one point,
    placed uniformly inside it, and strata are paired across dimensions by independent
    random permutations.
    """
    if n < 1 or d < 1:
        raise ValueError(f"latin_hypercube needs n >= 1 and d >= 1, got n={n}, d={d}")
    rng = np.random.default_rng(seed)
    u = rng.random((n, d))
    perms = np.stack([rng.permutation(n) for _ in range(d)], axis=1)
    return (perms + u) / n


def _attr_matrix(attributes, n_site: int) -> tuple[np.ndarray | None, list[str] | None]:
    if attributes is None:
        return None, None
    if isinstance(attributes, Mapping) or hasattr(attributes, "data_vars"):
        names = list(attributes.data_vars) if hasattr(attributes, "data_vars") else list(attributes.keys())
        a = np.stack([np.asarray(attributes[k], dtype=np.float64).reshape(-1) for k in names], axis=1)
    else:
        a = np.asarray(attributes, dtype=np.float64)
        names = None
        if a.ndim == 1:
            a = a[:, None]
    if a.ndim != 2 or a.shape[0] != n_site:
        raise ValueError(f"attributes must be [site={n_site}, n_attr], got shape {a.shape}")
    if not np.isfinite(a).all():
        s, j = np.argwhere(~np.isfinite(a))[0]
        field = names[j] if names else f"column {j}"
        raise ValueError(f"attribute {field}: non-finite value at site index {s}")
    return a, names


def _texture_from(attributes) -> dict | None:
    if not (isinstance(attributes, Mapping) or hasattr(attributes, "data_vars")):
        return None
    keys = {k.lower(): k for k in (attributes.data_vars if hasattr(attributes, "data_vars") else attributes.keys())}
    if "sand" in keys and "clay" in keys:
        tex = {"sand": np.asarray(attributes[keys["sand"]], dtype=np.float64),
               "clay": np.asarray(attributes[keys["clay"]], dtype=np.float64)}
        if "silt" in keys:
            tex["silt"] = np.asarray(attributes[keys["silt"]], dtype=np.float64)
        return tex
    return None


def _tile_soil(soil, n_sets: int, n_site: int):
    if soil is None:
        return None
    out = {}
    for k, v in soil.items():
        v = np.asarray(v, dtype=np.float64)
        out[k] = np.tile(v, n_sets) if v.ndim == 1 and v.shape[0] == n_site else v
    return out


def run_legacy(model, forcing, params, soil_properties=None, warmup: int = 0) -> dict[str, np.ndarray]:
    """Run ``model`` for every (parameter set, site): ``params`` ``[n_sets, site, n_params]``.

    Returns dict output -> ``[n_sets, time - warmup, site]`` float64.
    """
    forcing = np.asarray(forcing, dtype=np.float64)
    params = np.asarray(params, dtype=np.float64)
    n_t, n_s, nf = forcing.shape
    n_sets = params.shape[0]
    if params.shape[1:] != (n_s, model.n_params if hasattr(model, "n_params") else len(model.parameter_table)):
        raise ValueError(f"params must be [n_sets, site={n_s}, n_params], got {params.shape}")
    f_tiled = np.tile(forcing, (1, n_sets, 1))                                # column = set * n_s + site
    sims = model.run(f_tiled, params.reshape(n_sets * n_s, -1), warmup=warmup,
                     soil_properties=_tile_soil(soil_properties, n_sets, n_s))
    return {k: v.reshape(v.shape[0], n_sets, n_s).transpose(1, 0, 2) for k, v in sims.items()}


def make_surrogate_training_set(model, forcing, attributes=None, n_param_sets: int = 20, seed: int = 0, *,
                                soil_properties=None, outputs: Sequence[str] = ("soil_moisture", "et", "runoff"),
                                params=None, spinup: int = 0, sets_per_run: int | None = None) -> dict:
    """Simulations of a legacy model for Latin-hypercube parameter sets x sites.

    Args:
        model: legacy model with ``parameter_table``, ``forcing_names`` and
            ``run(forcing, params_unit, warmup, soil_properties)`` (e.g. ``VICStyleModel()``).
        forcing: ``[time, site, n_forcing]`` physical units, channels ``model.forcing_names``.
        attributes: static inputs of the surrogate, ``[site, n_attr]`` array or mapping
            name -> ``[site]`` (an ``xarray.Dataset`` works). If it is a mapping with ``sand``
            and ``clay`` (%, any case) and ``soil_properties`` is None, the legacy model's soil
            comes from that texture.
        n_param_sets: number of LHS parameter sets; every set is run at every site.
        seed: LHS seed.
        soil_properties: per-site soil passed to ``model.run`` (overrides texture).
        outputs: legacy outputs to keep.
        params: optional explicit unit-cube sets ``[n_sets, n_params]`` instead of LHS.
        spinup: leading days of ``forcing`` that only spin up the legacy model; dropped from the
            returned forcing and outputs.
        sets_per_run: run the legacy model on this many parameter sets at a time (memory: the
            forcing is tiled that many times); ``None``: all at once.
    Returns:
        dict with ``forcing`` ``[time - spinup, site, nf]``, ``attributes`` ``[site, n_attr]`` or None,
        ``attribute_names``, ``params`` ``[n_sets, n_params]`` (unit cube), ``outputs`` dict
        name -> ``[n_sets, time, site]`` (float64), ``forcing_names``, ``parameter_table``,
        ``soil_properties``.
    """
    forcing = np.asarray(forcing, dtype=np.float64)
    if forcing.ndim != 3:
        raise ValueError(f"forcing must be [time, site, n_forcing], got shape {forcing.shape}")
    n_t, n_s, _ = forcing.shape
    a, names = _attr_matrix(attributes, n_s)
    if soil_properties is None:
        soil_properties = _texture_from(attributes)
    n_p = len(model.parameter_table)
    P = latin_hypercube(n_param_sets, n_p, seed) if params is None else np.asarray(params, dtype=np.float64)
    if P.ndim != 2 or P.shape[1] != n_p:
        raise ValueError(f"params must be [n_sets, {n_p}], got {P.shape}")
    if not 0 <= spinup < n_t:
        raise ValueError(f"spinup ({spinup}) must be in [0, {n_t}) days")
    chunk = P.shape[0] if sets_per_run is None else max(1, int(sets_per_run))
    parts = []
    for lo in range(0, P.shape[0], chunk):
        p = P[lo:lo + chunk]
        sims = run_legacy(model, forcing, np.broadcast_to(p[:, None, :], (p.shape[0], n_s, n_p)), soil_properties)
        missing = [o for o in outputs if o not in sims]
        if missing:
            raise ValueError(f"legacy model has no outputs {missing}; it has {sorted(sims)}")
        parts.append({o: sims[o][:, spinup:] for o in outputs})
    outs = {o: parts[0][o] if len(parts) == 1 else np.concatenate([q[o] for q in parts], 0) for o in outputs}
    return {"forcing": forcing[spinup:], "attributes": a, "attribute_names": names, "params": P,
            "outputs": outs, "forcing_names": tuple(model.forcing_names),
            "parameter_table": model.parameter_table, "soil_properties": soil_properties}


# ----------------------------------------------------------------------------- network
def _table_to_config(table: ParameterTable) -> list[dict]:
    return [{"name": s.name, "low": float(s.low), "high": float(s.high), "units": s.units,
             "description": s.description, "default": None if s.default is None else float(s.default)} for s in table]


def _table_from_config(cfg: list[dict]) -> ParameterTable:
    return ParameterTable([ParamSpec(**c) for c in cfg])


class LSTMSurrogate(ProcessModel):
    """LSTM emulator of a legacy model; a differentiable drop-in with the legacy parameter table.

    Args:
        parameter_table: the legacy model's table (the surrogate takes unit-cube parameters).
        forcing_names: forcing channel order (e.g. ``("precip", "temp", "pet")``).
        outputs: emulated outputs, e.g. ``("soil_moisture", "et")``.
        n_attr: number of static attributes (0 for none).
        hidden: LSTM hidden size.
    Normalization statistics live in buffers (saved with the weights): ``f_mean``/``f_std``
    ``[nf]``, ``a_mean``/``a_std`` ``[n_attr]``, ``y_mean``/``y_std`` ``[n_out]``.
    """

    def __init__(self, parameter_table: ParameterTable, forcing_names: Sequence[str] = ("precip", "temp", "pet"),
                 outputs: Sequence[str] = ("soil_moisture", "et"), n_attr: int = 0, hidden: int = 64,
                 attribute_names: Sequence[str] | None = None):
        super().__init__()
        self.parameter_table = parameter_table
        self.forcing_names = tuple(forcing_names)
        self.outputs = tuple(outputs)
        self.n_attr = int(n_attr)
        self.hidden = int(hidden)
        self.attribute_names = None if attribute_names is None else list(attribute_names)
        nf, n_p, n_out = len(self.forcing_names), len(parameter_table), len(self.outputs)
        self.inp = nn.Linear(nf + self.n_attr + n_p, hidden)
        self.lstm = nn.LSTM(hidden, hidden)
        self.head = nn.Linear(hidden, n_out)
        self.register_buffer("f_log", torch.tensor([n in LOG_FORCINGS for n in self.forcing_names]))
        self.register_buffer("f_mean", torch.zeros(nf))
        self.register_buffer("f_std", torch.ones(nf))
        self.register_buffer("a_mean", torch.zeros(self.n_attr))
        self.register_buffer("a_std", torch.ones(self.n_attr))
        self.register_buffer("y_mean", torch.zeros(n_out))
        self.register_buffer("y_std", torch.ones(n_out))
        self.training_info: dict = {}

    # -- normalization -------------------------------------------------------
    def norm_forcing(self, forcing: torch.Tensor) -> torch.Tensor:
        f = torch.where(self.f_log, torch.log1p(torch.clamp(forcing, min=0)), forcing)
        return (f - self.f_mean) / self.f_std

    def norm_attributes(self, attributes: torch.Tensor) -> torch.Tensor:
        return (attributes - self.a_mean) / self.a_std

    def freeze(self) -> "LSTMSurrogate":
        """Stop gradients to the weights (they still flow to the inputs) and switch to eval mode."""
        for p in self.parameters():
            p.grad = None
            p.requires_grad_(False)
        return self.eval()

    def _core(self, x_norm: torch.Tensor) -> torch.Tensor:
        """Normalized inputs ``[time, batch, n_in]`` -> normalized outputs ``[time, batch, n_out]``."""
        h, _ = self.lstm(torch.relu(self.inp(x_norm)))
        return self.head(h)

    def forward(self, forcing: torch.Tensor, params: torch.Tensor, warmup: int = 0,
                attributes: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Emulate the legacy model.

        Args:
            forcing: ``[time, site, nf]`` physical units (channels ``forcing_names``).
            params: unit-cube parameters ``[site, n_params, 1]``, ``[site, n_params]`` or
                time-varying ``[time, site, n_params(, 1)]``.
            warmup: leading days dropped from the outputs.
            attributes: ``[site, n_attr]`` physical attributes (required when ``n_attr > 0``).
        Returns:
            dict output name -> ``[time - warmup, site]`` in physical units (float32).
        """
        forcing = torch.as_tensor(forcing, dtype=torch.float32)
        if forcing.ndim != 3 or forcing.shape[2] != len(self.forcing_names):
            raise ValueError(f"forcing must be [time, site, {len(self.forcing_names)}] {self.forcing_names}, got {tuple(forcing.shape)}")
        n_t, n_s, _ = forcing.shape
        if not torch.isfinite(forcing).all():
            t, s, j = torch.nonzero(~torch.isfinite(forcing))[0].tolist()
            raise ValueError(f"forcing field {self.forcing_names[j]!r}: non-finite value at time index {t}, site index {s}")
        params = torch.as_tensor(params)
        if params.dtype != torch.float32:
            params = params.to(torch.float32)
        if params.ndim >= 3 and params.shape[-1] == 1 and params.shape[-2] == self.n_params:
            params = params[..., 0]
        elif params.ndim >= 3 and params.shape[-1] != self.n_params:
            raise ValueError(f"LSTMSurrogate has nmul=1; got params of shape {tuple(params.shape)}")
        self.parameter_table.to_physical(params.detach(), dim=-1)        # range / NaN check only
        if params.ndim == 2:
            if params.shape[0] != n_s:
                raise ValueError(f"params have {params.shape[0]} sites, forcing has {n_s}")
            params = params.unsqueeze(0).expand(n_t, n_s, self.n_params)
        elif params.ndim != 3 or params.shape[:2] != (n_t, n_s):
            raise ValueError(f"params must be [site, {self.n_params}(, 1)] or [time, site, {self.n_params}(, 1)], got {tuple(params.shape)}")
        parts = [self.norm_forcing(forcing)]
        if self.n_attr:
            if attributes is None:
                raise ValueError(f"this surrogate was trained with {self.n_attr} attributes; pass attributes [site, {self.n_attr}]")
            attributes = torch.as_tensor(attributes, dtype=torch.float32)
            if attributes.shape != (n_s, self.n_attr):
                raise ValueError(f"attributes must be [site={n_s}, {self.n_attr}], got {tuple(attributes.shape)}")
            parts.append(self.norm_attributes(attributes).unsqueeze(0).expand(n_t, n_s, self.n_attr))
        parts.append(params)
        y = self._core(torch.cat(parts, dim=-1))
        y = y[warmup:] * self.y_std + self.y_mean
        return {name: y[..., i] for i, name in enumerate(self.outputs)}

    # -- persistence ---------------------------------------------------------
    def config(self) -> dict:
        return {"parameter_table": _table_to_config(self.parameter_table), "forcing_names": list(self.forcing_names),
                "outputs": list(self.outputs), "n_attr": self.n_attr, "hidden": self.hidden,
                "attribute_names": self.attribute_names}

    def save(self, path) -> None:
        """Write weights, normalization statistics and config to one file (``torch.save`` of a dict)."""
        torch.save({"format": FORMAT, "config": self.config(), "state_dict": self.state_dict(),
                    "training_info": dict(self.training_info)}, path)

    @classmethod
    def load(cls, path) -> "LSTMSurrogate":
        """Read a file written by :meth:`save` (``weights_only=True``); the result is frozen."""
        d = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} file")
        cfg = dict(d["config"])
        cfg["parameter_table"] = _table_from_config(cfg["parameter_table"])
        m = cls(**cfg)
        m.load_state_dict(d["state_dict"])
        m.training_info = dict(d.get("training_info", {}))
        return m.freeze()


def save_surrogate(surrogate: LSTMSurrogate, path) -> None:
    surrogate.save(path)


def load_surrogate(path) -> LSTMSurrogate:
    return LSTMSurrogate.load(path)


# ----------------------------------------------------------------------------- training
def _std(x: np.ndarray, axis) -> np.ndarray:
    s = x.std(axis=axis)
    return np.where(s > 1e-12, s, 1.0)


def train_surrogate(dataset: dict, outputs: Sequence[str] = ("soil_moisture", "et"), hidden: int = 64,
                    epochs: int = 20, batch: int = 64, seq_len: int = 240, warmup: int = 90, lr: float = 5e-3,
                    seed: int = 0, progress: bool = True, checkpoint=None, iters_per_epoch: int | None = None,
                    max_seconds: float | None = None) -> LSTMSurrogate:
    """Fit an :class:`LSTMSurrogate` to legacy simulations from :func:`make_surrogate_training_set`.

    Args:
        dataset: the dict from :func:`make_surrogate_training_set`.
        outputs: outputs to emulate (each must be in ``dataset["outputs"]``).
        hidden: LSTM hidden size.
        epochs: passes; one epoch is ``iters_per_epoch`` mini-batches (default: enough windows to
            cover every (set, site) series once, ``ceil(n_sets*n_site*time / (batch*(seq_len-warmup)))``).
        batch: windows per mini-batch; seq_len: window length (days); warmup: leading days of
            each window without loss.
        lr: Adam learning rate (cosine decay to 5 % over the run); seed: seeds init and sampling.
        progress: tqdm bar; checkpoint: path written (``save``) after every epoch.
        max_seconds: stop early after this wall time (the result is then not reproducible).
    Returns:
        the trained, frozen surrogate (``training_info`` holds the settings, loss curve and time).
    """
    outputs = tuple(outputs)
    F = np.asarray(dataset["forcing"], dtype=np.float64)
    n_t, n_s, nf = F.shape
    P = np.asarray(dataset["params"], dtype=np.float64)
    n_sets = P.shape[0]
    A = dataset.get("attributes")
    n_attr = 0 if A is None else A.shape[1]
    for o in outputs:
        if o not in dataset["outputs"]:
            raise ValueError(f"output {o!r} not in the training set (has {sorted(dataset['outputs'])})")
    Y = np.stack([dataset["outputs"][o] for o in outputs], axis=-1)          # [n_sets, time, site, n_out]
    seq_len = min(seq_len, n_t)
    if not 0 <= warmup < seq_len:
        raise ValueError(f"window warmup ({warmup}) must be smaller than seq_len ({seq_len})")

    table = dataset["parameter_table"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LSTMSurrogate(table, dataset["forcing_names"], outputs, n_attr, hidden, dataset.get("attribute_names"))
    # normalization statistics from the training data
    f_log = model.f_log.numpy()
    Ft = np.where(f_log, np.log1p(np.clip(F, 0, None)), F)
    model.f_mean.copy_(torch.as_tensor(Ft.mean(axis=(0, 1))))
    model.f_std.copy_(torch.as_tensor(_std(Ft, (0, 1))))
    if n_attr:
        model.a_mean.copy_(torch.as_tensor(A.mean(0)))
        model.a_std.copy_(torch.as_tensor(_std(A, 0)))
    model.y_mean.copy_(torch.as_tensor(Y.mean(axis=(0, 1, 2))))
    model.y_std.copy_(torch.as_tensor(_std(Y, (0, 1, 2))))

    with torch.no_grad():
        Fn = model.norm_forcing(torch.as_tensor(F, dtype=torch.float32))                  # [time, site, nf]
        An = model.norm_attributes(torch.as_tensor(A, dtype=torch.float32)) if n_attr else None
        Pt = torch.as_tensor(P, dtype=torch.float32)
        Yn = (torch.as_tensor(Y, dtype=torch.float32) - model.y_mean) / model.y_std

    if iters_per_epoch is None:
        iters_per_epoch = max(1, math.ceil(n_sets * n_s * n_t / (batch * (seq_len - warmup))))
    total = epochs * iters_per_epoch
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(k, total) / total)))
    steps = torch.arange(seq_len)
    losses = []
    bar = None
    if progress:
        from dplpaper.progress import tqdm
        bar = tqdm(total=total, desc="surrogate", unit="batch")
    t_start = time.perf_counter()
    model.train()
    stopped = False
    for ep in range(epochs):
        ep_loss = 0.0
        for it in range(iters_per_epoch):
            i_set = torch.randint(n_sets, (batch,), generator=gen)
            i_site = torch.randint(n_s, (batch,), generator=gen)
            t0 = torch.randint(n_t - seq_len + 1, (batch,), generator=gen)
            ti = t0[None, :] + steps[:, None]                                           # [L, B]
            parts = [Fn[ti, i_site[None, :]]]
            if n_attr:
                parts.append(An[i_site].unsqueeze(0).expand(seq_len, batch, n_attr))
            parts.append(Pt[i_set].unsqueeze(0).expand(seq_len, batch, Pt.shape[1]))
            y = Yn[i_set[None, :], ti, i_site[None, :]]                                 # [L, B, n_out]
            pred = model._core(torch.cat(parts, dim=-1))
            loss = ((pred[warmup:] - y[warmup:]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            ep_loss += float(loss.detach())
            if bar is not None:
                bar.update(1)
                bar.set_postfix(epoch=ep + 1, loss=f"{float(loss.detach()):.4f}")
            if max_seconds is not None and time.perf_counter() - t_start > max_seconds:
                stopped = True
                break
        losses.append(ep_loss / (it + 1))
        if checkpoint is not None:
            model.training_info = {"epochs_done": ep + 1, "losses": list(losses)}
            model.save(checkpoint)
        if stopped:
            break
    if bar is not None:
        bar.close()
    model.training_info = {"outputs": list(outputs), "hidden": hidden, "epochs": epochs, "epochs_done": len(losses),
                           "batch": batch, "seq_len": seq_len, "warmup": warmup, "lr": lr, "seed": seed,
                           "iters_per_epoch": iters_per_epoch, "losses": losses, "n_sets": n_sets, "n_site": n_s,
                           "n_time": n_t, "seconds": time.perf_counter() - t_start, "stopped_early": stopped}
    if checkpoint is not None:
        model.freeze().save(checkpoint)
    return model.freeze()


# ----------------------------------------------------------------------------- evaluation
def _corr_rmse(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column Pearson correlation and RMSE of ``[time, col]`` arrays."""
    am, bm = a - a.mean(0), b - b.mean(0)
    den = np.sqrt((am ** 2).sum(0) * (bm ** 2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where(den > 0, (am * bm).sum(0) / np.where(den > 0, den, 1), np.nan)
    return corr, np.sqrt(((a - b) ** 2).mean(0))


def evaluate_surrogate(surrogate: LSTMSurrogate, legacy_model, forcing, attributes=None, params=None,
                       warmup: int = 180, soil_properties=None, chunk: int = 512) -> dict:
    """Accuracy of the surrogate against the legacy model, per (parameter set, site).

    Args:
        forcing: ``[time, site, nf]``; attributes: as for :func:`make_surrogate_training_set`
            (texture in a mapping also sets the legacy soil unless ``soil_properties`` is given).
        params: unit cube, ``[site, n_params]`` (one set per site) or ``[n_sets, site, n_params]``.
        warmup: leading days left out of the comparison.
    Returns:
        dict output -> ``{"corr": [n_cols], "rmse": [n_cols], "median_corr", "median_rmse"}``
        with columns ordered (set, site), plus ``"legacy"``/``"surrogate"`` simulations
        ``[n_sets, time - warmup, site]``.
    """
    forcing = np.asarray(forcing, dtype=np.float64)
    n_t, n_s, nf = forcing.shape
    a, _ = _attr_matrix(attributes, n_s)
    if soil_properties is None:
        soil_properties = _texture_from(attributes)
    params = np.array(params, dtype=np.float64)          # a writable copy
    if params.ndim == 2:
        params = params[None]
    n_sets = params.shape[0]
    legacy = run_legacy(legacy_model, forcing, params, soil_properties, warmup=warmup)
    sur = {o: np.empty((n_sets, n_t - warmup, n_s)) for o in surrogate.outputs}
    f_t = torch.as_tensor(forcing, dtype=torch.float32)
    a_t = None if a is None else torch.as_tensor(a, dtype=torch.float32)
    with torch.no_grad():
        for k in range(n_sets):
            for s0 in range(0, n_s, chunk):
                sl = slice(s0, min(n_s, s0 + chunk))
                out = surrogate(f_t[:, sl], torch.as_tensor(params[k, sl], dtype=torch.float32), warmup=warmup,
                                attributes=None if a_t is None else a_t[sl])
                for o in surrogate.outputs:
                    sur[o][k, :, sl] = out[o].numpy()
    res = {}
    for o in surrogate.outputs:
        L = legacy[o].transpose(1, 0, 2).reshape(n_t - warmup, -1)
        S = sur[o].transpose(1, 0, 2).reshape(n_t - warmup, -1)
        corr, rmse = _corr_rmse(L, S)
        res[o] = {"corr": corr, "rmse": rmse, "median_corr": float(np.nanmedian(corr)),
                  "median_rmse": float(np.median(rmse)), "legacy": legacy[o], "surrogate": sur[o]}
    return res
