"""GR4J (Perrin, Michel and Andreassian 2003), differentiable in PyTorch: a second, small process
model behind the same contract as HBV (unit-cube parameters in, ``[time, site]`` streamflow out).

Daily steps, no snow module (temperature is read but unused). States per site: production store
``S`` (mm, capacity X1), routing store ``R`` (mm, capacity X3) and the two unit hydrographs' queues
(UH1 with time base X4 days, 90 % of the effective rainfall; UH2 with 2 X4 days, 10 %).

1. Net rainfall / evaporation: ``Pn = max(P - E, 0)``, ``En = max(E - P, 0)``.
2. Production store: ``Ps = X1 (1 - s^2) tanh(Pn/X1) / (1 + s tanh(Pn/X1))``,
   ``Es = S (2 - s) tanh(En/X1) / (1 + (1 - s) tanh(En/X1))`` with ``s = S/X1``; then percolation
   ``Perc = S (1 - (1 + (4/9 S/X1)^4)^(-1/4))``. Effective rainfall ``Pr = Perc + Pn - Ps``.
3. Unit hydrographs from the S-curves ``SH1(t) = (t/X4)^(5/2)`` (``t < X4``) and
   ``SH2(t) = 0.5 (t/X4)^(5/2)`` (``t <= X4``), ``1 - 0.5 (2 - t/X4)^(5/2)`` (``X4 < t < 2 X4``).
4. Exchange ``F = X2 (R/X3)^(7/2)``; routing store ``R = max(0, R + Q9 + F)``, outflow
   ``Qr = R (1 - (1 + (R/X3)^4)^(-1/4))``; direct flow ``Qd = max(0, Q1 + F)``; ``Q = Qr + Qd``.

``return_fluxes=True`` adds ``et`` (actual evaporation, mm/d), ``exchange`` (water actually gained
by the two exchange terms, mm/d; negative: lost) and ``storage`` (S + R + both queues, mm, end of
day), so that ``P - et - Q + exchange = d(storage)`` closes day by day (tested).
"""
from __future__ import annotations

import torch

from dplpaper.models.base import ParameterTable, ParamSpec, ProcessModel
from dplpaper.models.registry import register_model

__all__ = ["GR4J", "GR4J_TABLE"]

GR4J_TABLE = ParameterTable([
    ParamSpec("X1", 100.0, 1200.0, "mm", "capacity of the production (soil) store", 350.0),
    ParamSpec("X2", -5.0, 3.0, "mm/d", "groundwater exchange coefficient (negative: losses)", 0.0),
    ParamSpec("X3", 20.0, 300.0, "mm", "capacity of the routing store", 90.0),
    ParamSpec("X4", 1.1, 2.9, "d", "time base of unit hydrograph UH1 (UH2: twice as long)", 1.7),
])

#: queue lengths (days) of UH1 and UH2 for the largest X4 in the table
_N1, _N2 = 3, 6


def _sh1(t, x4):
    return torch.where(t <= 0, torch.zeros_like(x4), torch.where(t < x4, (t / x4).clamp(min=0) ** 2.5,
                                                                  torch.ones_like(x4)))


def _sh2(t, x4):
    r = (t / x4).clamp(min=0, max=2)
    up = 0.5 * r ** 2.5
    down = 1 - 0.5 * (2 - r) ** 2.5
    return torch.where(t <= 0, torch.zeros_like(x4), torch.where(t <= x4, up, torch.where(t < 2 * x4, down,
                                                                                        torch.ones_like(x4))))


def unit_hydrographs(x4: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """UH1 ``[site, 3]`` and UH2 ``[site, 6]`` ordinates for time bases ``x4 [site]`` (days); each sums to 1."""
    j1 = torch.arange(1, _N1 + 1, dtype=x4.dtype, device=x4.device)
    j2 = torch.arange(1, _N2 + 1, dtype=x4.dtype, device=x4.device)
    x = x4[:, None]
    return _sh1(j1, x) - _sh1(j1 - 1, x), _sh2(j2, x) - _sh2(j2 - 1, x)


@register_model("gr4j")
class GR4J(ProcessModel):
    """GR4J with unit-cube parameters ``[site, 4, 1]`` (or ``[time, site, 4, 1]``) scaled by
    :data:`GR4J_TABLE`; forcing ``[time, site, 3]`` = precip (mm/d), temp (degC, unused), pet (mm/d).

    Initial states: ``S = 0.3 X1``, ``R = 0.5 X3``, empty queues (spin them up with ``warmup``).
    """

    parameter_table = GR4J_TABLE
    nmul = 1

    def forward(self, forcing: torch.Tensor, params: torch.Tensor, warmup: int = 0,
                return_fluxes: bool = False) -> dict[str, torch.Tensor]:
        if forcing.ndim != 3 or forcing.shape[-1] != 3:
            raise ValueError(f"GR4J forcing must be [time, site, 3], got {tuple(forcing.shape)}")
        n_t, n_s, _ = forcing.shape
        if params.ndim not in (3, 4) or tuple(params.shape[-3:]) != (n_s, 4, 1):
            raise ValueError(f"GR4J params must be [site, 4, 1] or [time, site, 4, 1], got {tuple(params.shape)}")
        if not 0 <= warmup < n_t:
            raise ValueError(f"warmup ({warmup}) must be in [0, time={n_t})")
        if not bool(torch.isfinite(forcing).all()) or bool((forcing[..., [0, 2]] < 0).any()):
            raise ValueError("GR4J forcing: precip and pet must be finite and >= 0, temp finite")
        phys = self.parameter_table.to_physical(params.to(forcing.dtype), dim=-2)[..., 0]   # [.., site, 4]
        p0 = phys if phys.ndim == 2 else phys[0]
        S, R = 0.3 * p0[:, 0], 0.5 * p0[:, 2]
        q1 = forcing.new_zeros((n_s, _N1))
        q2 = forcing.new_zeros((n_s, _N2))
        out: dict[str, list] = {"streamflow": [], "et": [], "exchange": [], "storage": []}
        static = phys.ndim == 2
        if static:
            x1, x2, x3, x4 = phys.unbind(-1)
            uh1, uh2 = unit_hydrographs(x4)
        zero1 = forcing.new_zeros((n_s, 1))
        for t in range(n_t):
            if not static:
                x1, x2, x3, x4 = phys[t].unbind(-1)
                uh1, uh2 = unit_hydrographs(x4)
            P, E = forcing[t, :, 0], forcing[t, :, 2]
            pn, en = torch.relu(P - E), torch.relu(E - P)
            s = S / x1
            tp, te = torch.tanh(pn / x1), torch.tanh(en / x1)
            ps = x1 * (1 - s ** 2) * tp / (1 + s * tp)
            es = S * (2 - s) * te / (1 + (1 - s) * te)
            S = S - es + ps
            perc = S * (1 - (1 + (4.0 / 9.0 * S / x1) ** 4) ** -0.25)
            S = S - perc
            pr = perc + pn - ps
            q1 = torch.cat([q1[:, 1:], zero1], 1) + 0.9 * pr[:, None] * uh1
            q2 = torch.cat([q2[:, 1:], zero1], 1) + 0.1 * pr[:, None] * uh2
            o9, o1 = q1[:, 0], q2[:, 0]      # the day's outflow leaves the queue (first slot, dropped next day)
            f = x2 * (R / x3).clamp(min=0) ** 3.5
            r_new = torch.relu(R + o9 + f)
            f_r = r_new - (R + o9)                       # exchange actually applied to the routing store
            qr = r_new * (1 - (1 + (r_new / x3) ** 4) ** -0.25)
            R = r_new - qr
            qd = torch.relu(o1 + f)
            f_d = qd - o1
            out["streamflow"].append(qr + qd)
            if return_fluxes:
                out["et"].append(es + torch.minimum(P, E))
                out["exchange"].append(f_r + f_d)
                out["storage"].append(S + R + q1[:, 1:].sum(1) + q2[:, 1:].sum(1))
        return {k: torch.stack(v)[warmup:] for k, v in out.items() if v}

    def water_balance_residual(self, forcing: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Daily ``P - ET - Q + exchange - d(storage)`` ``[time, site]`` (mm/d; ~0 by construction)."""
        out = self.forward(forcing, params, return_fluxes=True)
        p0 = self.parameter_table.to_physical(params.to(forcing.dtype), dim=-2)[..., 0]
        p0 = p0 if p0.ndim == 2 else p0[0]
        start = (0.3 * p0[:, 0] + 0.5 * p0[:, 2])[None]
        d_storage = torch.diff(torch.cat([start, out["storage"]]), dim=0)
        return forcing[..., 0] - out["et"] - out["streamflow"] + out["exchange"] - d_storage
