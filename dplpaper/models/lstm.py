"""The LSTM streamflow baseline: forcing + attributes -> LSTM -> streamflow, no process model.

The standard data-driven reference on CAMELS (Kratzert et al. 2019; Feng et al. 2020): one LSTM
for all basins reads, each day, the normalized forcing and the static attributes and outputs
the day's streamflow. It has no water balance, no stores and no parameters with a physical
meaning; readers place dPL against it (the field's CAMELS bar: median NSE 0.72-0.75 for a
single LSTM on the 531 basins with Daymet).

It plugs into :func:`dplpaper.train.train_dpl` like a :class:`dplpaper.nets.DPLModel`: its
``inputs`` are ``("series", "attributes")`` and ``forward(forcing, series, attributes,
warmup=)`` returns ``{"streamflow": [time - warmup, site]}`` (mm/day); ``forcing`` is accepted
and ignored (the LSTM reads the normalized ``series``).
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["LSTMStreamflow"]


class LSTMStreamflow(nn.Module):
    """Forcing + attributes -> LSTM -> streamflow (mm/day, >= 0).

    Args:
        n_series: channels of the normalized forcing series (no NaN).
        n_attributes: normalized static attributes.
        hidden: LSTM hidden size (256 in the field's CAMELS setups).
        dropout: dropout on the LSTM output before the read-out (0.4 in Kratzert et al. 2019).
        q_scale: streamflow scale (mm/day) the read-out is multiplied by (e.g. the training
            basins' mean flow), so that the network works with numbers of order 1.

    The read-out is ``softplus``, so streamflow is never negative.
    """

    inputs = ("series", "attributes")

    def __init__(self, n_series: int, n_attributes: int, hidden: int = 256, dropout: float = 0.4,
                 q_scale: float = 1.0):
        super().__init__()
        if not q_scale > 0:
            raise ValueError(f"q_scale must be > 0, got {q_scale}")
        self.n_series, self.n_attributes = int(n_series), int(n_attributes)
        self.q_scale = float(q_scale)
        self.lstm = nn.LSTM(self.n_series + self.n_attributes, hidden)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(hidden, 1)

    def forward(self, forcing: torch.Tensor, series: torch.Tensor, attributes: torch.Tensor,
                warmup: int = 0) -> dict[str, torch.Tensor]:
        if series.ndim != 3 or series.shape[2] != self.n_series:
            raise ValueError(f"LSTMStreamflow expects series [time, site, {self.n_series}], got {tuple(series.shape)}")
        if attributes.ndim != 2 or attributes.shape != (series.shape[1], self.n_attributes):
            raise ValueError(f"LSTMStreamflow expects attributes [{series.shape[1]}, {self.n_attributes}], "
                             f"got {tuple(attributes.shape)}")
        if not 0 <= warmup < series.shape[0]:
            raise ValueError(f"warmup ({warmup}) must be in [0, time={series.shape[0]})")
        n_t = series.shape[0]
        x = torch.cat([series, attributes.to(series.dtype).unsqueeze(0).expand(n_t, -1, -1)], dim=2)
        h, _ = self.lstm(x)
        q = nn.functional.softplus(self.head(self.drop(h))).squeeze(-1) * self.q_scale
        return {"streamflow": q[warmup:]}
