"""Parameter-learning networks of dPL and the dPL model itself.

* :class:`GA` (the paper's gA): static attributes -> unit-cube parameters.
* :class:`GZ` (the paper's gZ): static attributes + time series (forcings and, possibly gappy,
  observations) -> LSTM -> unit-cube parameters.
* :class:`GDynamic`: dPL with dynamic parameters: an LSTM over forcing + attributes gives
  time-varying values of chosen parameters, an MLP on attributes the static rest.
* :class:`DPLModel`: ``params = net(inputs); return pbm(forcing, params, warmup=...)``.
* :class:`Normalizer`: per-feature, NaN-aware standardization fitted on training sites.

Both networks work with any :class:`dplpaper.models.base.ProcessModel`; they only need its
``n_params`` and ``nmul``. Parameters leave the networks through a sigmoid, shape
``[site, n_params, nmul]`` (``GZ(dynamic=True)``: ``[time, site, n_params, nmul]``); the
process model maps them to physical ranges with its ``parameter_table``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from dplpaper.models.base import DynamicParams, ProcessModel

__all__ = ["GA", "GZ", "GDynamic", "DPLModel", "Normalizer"]


def _mlp(n_in: int, hidden: int, n_layers: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(n_layers):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = hidden
    return nn.Sequential(*layers)


class GA(nn.Module):
    """gA: an MLP from normalized static attributes to unit-cube parameters.

    Args:
        n_attributes: number of (normalized) attributes per site.
        n_params: parameters of the process model (``pbm.n_params``).
        nmul: parallel parameter components per site (``pbm.nmul``).
        hidden: width of the hidden layers.
        n_layers: number of hidden ``Linear -> ReLU (-> Dropout)`` layers (>= 1).
        dropout: dropout probability after each hidden layer.

    ``forward(attributes)``: ``[site, n_attributes]`` -> ``[site, n_params, nmul]`` in (0, 1).
    """

    inputs = ("attributes",)

    def __init__(self, n_attributes: int, n_params: int, nmul: int = 1, hidden: int = 256,
                 n_layers: int = 2, dropout: float = 0.0):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"GA needs n_layers >= 1, got {n_layers}")
        self.n_attributes, self.n_params, self.nmul = int(n_attributes), int(n_params), int(nmul)
        self.body = _mlp(self.n_attributes, hidden, n_layers, dropout)
        self.head = nn.Linear(hidden, self.n_params * self.nmul)

    def forward(self, attributes: torch.Tensor) -> torch.Tensor:
        if attributes.ndim != 2 or attributes.shape[1] != self.n_attributes:
            raise ValueError(f"GA expects attributes [site, {self.n_attributes}], got {tuple(attributes.shape)}")
        if bool(torch.isnan(attributes).any()):
            bad = torch.nonzero(torch.isnan(attributes))[0].tolist()
            raise ValueError(f"GA: NaN attribute at site index {bad[0]}, attribute index {bad[1]}; "
                             "fill or drop missing attributes before training")
        out = torch.sigmoid(self.head(self.body(attributes)))
        return out.reshape(attributes.shape[0], self.n_params, self.nmul)


class GZ(nn.Module):
    """gZ: attributes plus time series -> LSTM -> unit-cube parameters.

    Input at each time step (paper eqs. 1-8): ``[series (NaN -> 0), availability mask
    (1 = observed) of each masked series, attributes]`` -> ``Linear -> ReLU`` (eq. 1) ->
    ``nn.LSTM`` -> read-out ``Linear`` (eq. 8) -> sigmoid.

    Args:
        n_series: channels of the series input (e.g. precip, temp, pet, observed flow).
        n_attributes: static attributes per site (0 allowed).
        n_params, nmul: from the process model.
        hidden: LSTM hidden size (also the width of the input transformation).
        n_layers: stacked LSTM layers.
        dropout: dropout on the LSTM's last hidden output before the read-out.
        masked_series: indices of the series that may contain NaN gaps (observations). Each gets
            one 0/1 availability channel and its NaN values are replaced by 0. ``None``
            (default): every series is masked (the safe choice). A NaN in a series that is not
            masked raises ``ValueError``: nothing is ever filled without a mask.
        readout: ``"last"`` (hidden state at the last time step, default) or ``"mean"``
            (mean over time of the hidden outputs) for static parameters.
        dynamic: if True, output time-varying parameters ``[time, site, n_params, nmul]`` (the
            read-out applied at every time step); ``readout`` is then unused.

    ``forward(series, attributes, mask=None)``: ``series [time, site, n_series]``,
    ``attributes [site, n_attributes]``; ``mask`` (optional) ``[time, site, n_masked]`` 0/1
    overrides the availability computed from ``isnan(series)`` (entries with mask 0 are
    ignored: their values are replaced by 0). Returns ``[site, n_params, nmul]``.
    """

    inputs = ("series", "attributes")

    def __init__(self, n_series: int, n_attributes: int, n_params: int, nmul: int = 1,
                 hidden: int = 256, n_layers: int = 1, dropout: float = 0.0,
                 masked_series: Sequence[int] | None = None, readout: str = "last",
                 dynamic: bool = False):
        super().__init__()
        if readout not in ("last", "mean"):
            raise ValueError(f"readout must be 'last' or 'mean', got {readout!r}")
        self.n_series, self.n_attributes = int(n_series), int(n_attributes)
        self.n_params, self.nmul = int(n_params), int(nmul)
        ms = list(range(self.n_series)) if masked_series is None else [int(i) for i in masked_series]
        if any(i < 0 or i >= self.n_series for i in ms) or len(set(ms)) != len(ms):
            raise ValueError(f"masked_series {ms} must be distinct indices in [0, {self.n_series})")
        self.masked_series = ms
        self.readout, self.dynamic = readout, bool(dynamic)
        n_in = self.n_series + len(ms) + self.n_attributes
        self.inp = nn.Linear(n_in, hidden)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=n_layers)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(hidden, self.n_params * self.nmul)

    def build_input(self, series: torch.Tensor, attributes: torch.Tensor,
                    mask: torch.Tensor | None = None) -> torch.Tensor:
        """The LSTM's raw input ``[time, site, n_series + n_masked + n_attributes]``."""
        if series.ndim != 3 or series.shape[2] != self.n_series:
            raise ValueError(f"GZ expects series [time, site, {self.n_series}], got {tuple(series.shape)}")
        if attributes.ndim != 2 or attributes.shape != (series.shape[1], self.n_attributes):
            raise ValueError(f"GZ expects attributes [{series.shape[1]}, {self.n_attributes}], "
                             f"got {tuple(attributes.shape)}")
        if bool(torch.isnan(attributes).any()):
            bad = torch.nonzero(torch.isnan(attributes))[0].tolist()
            raise ValueError(f"GZ: NaN attribute at site index {bad[0]}, attribute index {bad[1]}")
        nan = torch.isnan(series)
        unmasked = [i for i in range(self.n_series) if i not in self.masked_series]
        if unmasked and bool(nan[:, :, unmasked].any()):
            t, s, c = torch.nonzero(nan[:, :, unmasked])[0].tolist()
            raise ValueError(f"GZ: NaN in series channel {unmasked[c]} (not in masked_series) at time "
                             f"index {t}, site index {s}; mask it or fill it upstream")
        ms = self.masked_series
        if mask is None:
            avail = (~nan[:, :, ms]).to(series.dtype)
        else:
            if mask.shape != (series.shape[0], series.shape[1], len(ms)):
                raise ValueError(f"mask must be [time, site, {len(ms)}], got {tuple(mask.shape)}")
            avail = (mask != 0).to(series.dtype)
            if ms and bool((nan[:, :, ms] & (avail != 0)).any()):
                t, s, c = torch.nonzero(nan[:, :, ms] & (avail != 0))[0].tolist()
                raise ValueError(f"GZ: series channel {ms[c]} is NaN at time index {t}, site index {s} "
                                 "but the given mask marks it as observed")
        keep = torch.ones_like(series, dtype=torch.bool)
        if ms:
            keep[:, :, ms] = avail != 0
        x = torch.where(keep & ~nan, series, torch.zeros_like(series))
        attr = attributes.to(series.dtype).unsqueeze(0).expand(series.shape[0], -1, -1)
        return torch.cat([x, avail, attr], dim=2)

    def forward(self, series: torch.Tensor, attributes: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        x = torch.relu(self.inp(self.build_input(series, attributes, mask)))
        h, _ = self.lstm(x)                      # [time, site, hidden]
        n_t, n_s = h.shape[0], h.shape[1]
        if self.dynamic:
            out = torch.sigmoid(self.head(self.drop(h)))
            return out.reshape(n_t, n_s, self.n_params, self.nmul)
        z = h[-1] if self.readout == "last" else h.mean(0)
        out = torch.sigmoid(self.head(self.drop(z)))
        return out.reshape(n_s, self.n_params, self.nmul)


class GDynamic(nn.Module):
    """dPL with dynamic parameters: time-varying values for ``dynamic`` parameter rows, static rest.

    The parameters the literature makes time-varying (for HBV: BETA, the recharge shape, and
    BETAET, the ET shape; Feng et al. 2022, WRR) come from an LSTM that reads the forcing and
    the attributes every day, so they can follow seasons and wet/dry spells; every other
    parameter (storage capacities, recessions, snow, routing) stays a property of the basin and
    comes from an MLP on the attributes (the gA of :class:`GA`). This split (LSTM -> dynamic,
    MLP -> static) avoids taking static values from the LSTM's last step, which would make them
    depend on how long the simulated period is.

    Args:
        n_series: channels of the series input (normalized forcing, e.g. P, T, PET; no NaN).
        n_attributes: normalized static attributes per site.
        n_params, nmul: from the process model.
        dynamic: row indices of the time-varying parameters (``ParameterTable.index`` of names).
        hidden: LSTM hidden size; ``static_hidden``, ``static_layers``: the static MLP.
        dropout: dropout on the LSTM output before its read-out.

        compact: return :class:`~dplpaper.models.base.DynamicParams` (static rows once, dynamic
            rows day by day; HBV's fused kernel then never copies the static rows over time)
            instead of the full tensor.
        no_grad_days: with gradients on, run the LSTM over the first ``no_grad_days`` days without
            recording them (truncated backpropagation through time): set it to the warm-up
            length, whose parameters get no gradient anyway (HBV spins up under ``no_grad``); the
            LSTM's state still carries over, so the outputs are the same, only the backward pass
            stops at the end of the warm-up.

    ``forward(series [time, site, n_series], attributes [site, n_attributes])`` ->
    unit-cube ``[time, site, n_params, nmul]`` (static rows constant in time), or
    :class:`~dplpaper.models.base.DynamicParams` when ``compact``.
    """

    inputs = ("series", "attributes")

    def __init__(self, n_series: int, n_attributes: int, n_params: int, nmul: int = 1,
                 dynamic: Sequence[int] = (0,), hidden: int = 64, static_hidden: int = 256,
                 static_layers: int = 2, dropout: float = 0.0, compact: bool = False, no_grad_days: int = 0):
        super().__init__()
        self.compact, self.no_grad_days = bool(compact), int(no_grad_days)
        self.n_series, self.n_attributes = int(n_series), int(n_attributes)
        self.n_params, self.nmul = int(n_params), int(nmul)
        dyn = sorted(int(i) for i in dynamic)
        if not dyn or len(set(dyn)) != len(dyn) or dyn[0] < 0 or dyn[-1] >= self.n_params:
            raise ValueError(f"dynamic rows {list(dynamic)} must be distinct indices in [0, {self.n_params})")
        self.dynamic = dyn
        self.static = [i for i in range(self.n_params) if i not in dyn]
        self.inp = nn.Linear(self.n_series + self.n_attributes, hidden)
        self.lstm = nn.LSTM(hidden, hidden)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.dyn_head = nn.Linear(hidden, len(dyn) * self.nmul)
        self.static_body = _mlp(self.n_attributes, static_hidden, static_layers, 0.0)
        self.static_head = nn.Linear(static_hidden, len(self.static) * self.nmul)
        order = torch.argsort(torch.tensor(dyn + self.static))
        self.register_buffer("_order", order, persistent=False)

    def forward(self, series: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
        if series.ndim != 3 or series.shape[2] != self.n_series:
            raise ValueError(f"GDynamic expects series [time, site, {self.n_series}], got {tuple(series.shape)}")
        if attributes.ndim != 2 or attributes.shape != (series.shape[1], self.n_attributes):
            raise ValueError(f"GDynamic expects attributes [{series.shape[1]}, {self.n_attributes}], "
                             f"got {tuple(attributes.shape)}")
        for name, x in (("series", series), ("attributes", attributes)):
            if not bool(torch.isfinite(x).all()):
                idx = torch.nonzero(~torch.isfinite(x))[0].tolist()
                raise ValueError(f"GDynamic: non-finite {name} value at index {idx}")
        n_t, n_s = series.shape[:2]
        attr = attributes.to(series.dtype)
        x = torch.relu(self.inp(torch.cat([series, attr.unsqueeze(0).expand(n_t, -1, -1)], dim=2)))
        if 0 < self.no_grad_days < n_t and torch.is_grad_enabled():
            # truncated backpropagation: the first days only carry the LSTM state forward
            with torch.no_grad():
                h0, hc = self.lstm(x[: self.no_grad_days])
            h1, _ = self.lstm(x[self.no_grad_days:], hc)
            h = torch.cat([h0, h1])
        else:
            h, _ = self.lstm(x)
        dyn = torch.sigmoid(self.dyn_head(self.drop(h))).reshape(n_t, n_s, len(self.dynamic), self.nmul)
        st = torch.sigmoid(self.static_head(self.static_body(attr))).reshape(n_s, len(self.static), self.nmul)
        if self.compact:
            placeholder = st.new_full((n_s, len(self.dynamic), self.nmul), 0.5)
            static = torch.cat([placeholder, st], dim=1).index_select(1, self._order)
            return DynamicParams(static, dyn, tuple(self.dynamic))
        out = torch.cat([dyn, st.unsqueeze(0).expand(n_t, -1, -1, -1)], dim=2)
        return out.index_select(2, self._order)


class DPLModel(nn.Module):
    """The differentiable parameter learning model: a network feeding a process model.

    ``forward(forcing, *net_inputs, warmup=0)``: ``params = net(*net_inputs)``, then
    ``pbm(forcing, params, warmup=warmup)`` (a dict of ``[time - warmup, site]`` outputs).
    For :class:`GA` ``net_inputs`` is ``(attributes,)``; for :class:`GZ` ``(series, attributes)``
    (``net.inputs`` names them).

    Split placement (:meth:`pin_net`): the network can live on one device (e.g. an LSTM on a GPU)
    while the process model runs where the forcing is (e.g. HBV's fused C kernel on the CPU);
    ``forward`` then moves the network inputs to the network's device and the parameters back.
    A pinned network stays where it is when the whole model is moved with ``.to()``.
    """

    def __init__(self, net: nn.Module, pbm: ProcessModel):
        super().__init__()
        for attr in ("n_params", "nmul"):
            if getattr(net, attr, None) is not None and getattr(net, attr) != getattr(pbm, attr):
                raise ValueError(f"network {attr}={getattr(net, attr)} does not match the process model's "
                                 f"{attr}={getattr(pbm, attr)} ({type(pbm).__name__})")
        self.net, self.pbm = net, pbm
        self.net_device: torch.device | None = None

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(getattr(self.net, "inputs", ("attributes",)))

    def pin_net(self, device: str | torch.device | None) -> "DPLModel":
        """Keep the network on ``device`` (``None``: unpin, move with the model as usual)."""
        self.net_device = None if device is None else torch.device(device)
        if self.net_device is not None:
            self.net.to(self.net_device)
        return self

    def _apply(self, fn, recurse=True):
        if self.net_device is None:
            return super()._apply(fn, recurse)
        self.pbm._apply(fn, recurse)  # the pinned network stays on its device
        return self

    def _net_output(self, *net_inputs):
        if self.net_device is None or not net_inputs:
            return self.net(*net_inputs)
        home = net_inputs[0].device
        return self.net(*[x.to(self.net_device) for x in net_inputs]).to(home)

    def parameters_unit(self, *net_inputs) -> torch.Tensor:
        """The network's unit-cube parameters for ``net_inputs`` (on the inputs' device), as a
        tensor (``[site, n_params, nmul]`` or ``[time, site, n_params, nmul]``)."""
        p = self._net_output(*net_inputs)
        return p.full() if isinstance(p, DynamicParams) else p

    def forward(self, forcing: torch.Tensor, *net_inputs, warmup: int = 0) -> dict[str, torch.Tensor]:
        params = self._net_output(*net_inputs)
        return self.pbm(forcing, params.to(forcing.device), warmup=warmup)


class Normalizer:
    """Per-feature standardization ``(x - mean) / std`` fitted NaN-aware on training data.

    Features lie on the last axis; statistics pool every other axis (sites, and time for
    series). NaN stays NaN after :meth:`transform` (so gZ's masks still see gaps). A feature
    with zero (or undefined) spread gets ``std = 1``; a feature with no finite value at all
    raises ``ValueError``. Optional ``log_features`` (indices) are first transformed with
    ``log10(sqrt(max(x, 0)) + 0.1)``, which tames skewed, non-negative variables such as
    precipitation or streamflow.
    """

    def __init__(self, log_features: Sequence[int] = (), names: Sequence[str] | None = None):
        self.log_features = [int(i) for i in log_features]
        self.names = list(names) if names is not None else None
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def _pre(self, x: np.ndarray) -> np.ndarray:
        if self.log_features:
            x = x.copy()
            x[..., self.log_features] = np.log10(np.sqrt(np.clip(x[..., self.log_features], 0, None)) + 0.1)
        return x

    def fit(self, x) -> "Normalizer":
        a = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
        a = self._pre(a).reshape(-1, a.shape[-1])
        finite = np.isfinite(a)
        empty = np.nonzero(finite.sum(0) == 0)[0]
        if len(empty):
            label = self.names[empty[0]] if self.names else f"index {empty[0]}"
            raise ValueError(f"Normalizer.fit: feature {label} has no finite value")
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(np.where(finite, a, np.nan), axis=0)
            std = np.nanstd(np.where(finite, a, np.nan), axis=0)
        std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
        self.mean, self.std = mean, std
        return self

    def _check(self, x):
        if self.mean is None:
            raise RuntimeError("Normalizer used before fit()")
        if x.shape[-1] != len(self.mean):
            raise ValueError(f"Normalizer fitted on {len(self.mean)} features, got last dim {x.shape[-1]}")

    def transform(self, x):
        """Standardize numpy array or torch tensor (same type/dtype back)."""
        self._check(x)
        if isinstance(x, torch.Tensor):
            a = x.detach().cpu().double().numpy()
            out = (self._pre(a) - self.mean) / self.std
            return torch.as_tensor(out, dtype=x.dtype if x.is_floating_point() else torch.float32, device=x.device)
        a = np.asarray(x, dtype=np.float64)
        return (self._pre(a) - self.mean) / self.std

    def fit_transform(self, x):
        return self.fit(x).transform(x)

    def inverse_transform(self, x):
        """Undo the standardization (not the log transform of ``log_features``)."""
        self._check(x)
        if isinstance(x, torch.Tensor):
            m = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device)
            s = torch.as_tensor(self.std, dtype=x.dtype, device=x.device)
            return x * s + m
        return np.asarray(x) * self.std + self.mean

    def to_dict(self) -> dict:
        if self.mean is None:
            raise RuntimeError("Normalizer used before fit()")
        return {"mean": self.mean.tolist(), "std": self.std.tolist(),
                "log_features": list(self.log_features), "names": self.names}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalizer":
        n = cls(log_features=d.get("log_features", ()), names=d.get("names"))
        n.mean = np.asarray(d["mean"], dtype=np.float64)
        n.std = np.asarray(d["std"], dtype=np.float64)
        return n
