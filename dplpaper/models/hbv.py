"""Differentiable HBV (reference PyTorch loop) — the specification of the model.

The formulation follows the "HBV 1.0" variant used in the dPL line of work (Beck et al.
2020; Feng et al. 2022): a degree-day snow routine, a soil-moisture routine with a
non-linear (power-law) recharge, two response reservoirs and a gamma unit hydrograph.
Every site runs ``nmul`` parallel parameter components; their fluxes are averaged.

Units: water amounts in mm, fluxes in mm/day, temperature in degC, one explicit step per day.

Step equations (per site and component, states at the start of day ``t``: snowpack ``SP``,
liquid water in snow ``MW``, soil moisture ``SM``, upper zone ``SUZ``, lower zone ``SLZ``;
forcing ``P`` precip, ``T`` temperature, ``E`` potential ET; ``relu(x) = max(x, 0)``)::

    snow routine
      rain   = P if T >= TT else 0            snowfall = P - rain
      SP    += snowfall
      melt   = min(CFMAX (T - TT)^+, SP)          SP -= melt;   MW += melt
      refr   = min(CFR CFMAX (TT - T)^+, MW)      SP += refr;   MW -= refr
      tosoil = relu(MW - CWH SP)                  MW -= tosoil
    soil routine
      x      = SM / FC ;  w = x^BETA  (w = 0 for x <= 0, w = 1 for x >= 1)
      inp    = rain + tosoil
      rech   = inp * w                            SM += inp - rech
      excess = relu(SM - FC)                      SM -= excess;  rech += excess
      ef     = min(SM / (LP FC), 1)   [with BETAET: ef = ef^BETAET, 0 where ef <= 0]
      et     = min(E ef, SM)                      SM -= et
    response routine
      SUZ   += rech
      perc   = min(PERC, SUZ)                     SUZ -= perc;   SLZ += perc
      q0     = K0 relu(SUZ - UZL)                 SUZ -= q0
      q1     = K1 SUZ                             SUZ -= q1
      q2     = K2 SLZ                             SLZ -= q2
      q      = q0 + q1 + q2                       (unrouted runoff, mm/day)

so that each day ``P = q + et + d(SP + MW + SM + SUZ + SLZ)`` exactly (up to rounding).

Routing: the nmul-averaged ``q`` is convolved with a gamma unit hydrograph of 15 daily
ordinates ``h_j ∝ t_j^(alpha-1) exp(-t_j / theta)`` at ``t_j = j + 0.5`` (j = 0..14),
normalised to sum 1, with shape ``alpha = ROUTA + 0.1`` and scale ``theta = ROUTB + 0.5``
days (the offsets keep the distribution non-degenerate at the lower ends of the ranges).
``ROUTA``/``ROUTB`` are the last two parameter rows; since routing acts on the averaged flow
they are averaged over the nmul components (and, for time-varying parameters, taken from
the last time step: routing is static).

Non-smooth points: every ``min``/``max``/threshold is written with ``torch.where`` with a
strict comparison, so that the subgradient autograd picks is fixed by this file
(``relu(x)`` passes the gradient only for ``x > 0``; ``min(a, b)`` passes it to ``a`` only
when ``a < b``). The fused C backend (:mod:`dplpaper.models.hbv_fused`) follows the same
choices.

Warm-up: the first ``warmup`` days are run under ``torch.no_grad()``; their final states
seed the main period (so gradients do not flow through the warm-up, as in the dPL papers)
and their unrouted flow fills the routing history, so routed flow on the first reported day
is not biased low.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from dplpaper.models.base import DynamicParams, ParameterTable, ParamSpec, ProcessModel
from dplpaper.models import hbv_fused
from dplpaper.models.hbv_constants import DEFAULT_INITIAL_STATE, UH_LENGTH
from dplpaper.models.registry import register_model

#: state order of ``initial_states`` / ``final_states``: ``[site, 5, nmul]`` in mm.
STATE_NAMES = ("snowpack", "meltwater", "soil_storage", "upper_storage", "lower_storage")
#: DEFAULT_INITIAL_STATE (mm, every state) and UH_LENGTH (days of the unit hydrograph):
#: :mod:`dplpaper.models.hbv_constants`, shared with the fused kernel.

_CORE_SPECS = (
    ParamSpec("BETA", 1.0, 6.0, "-", "shape exponent of the soil recharge curve (SM/FC)^BETA"),
    ParamSpec("FC", 50.0, 1000.0, "mm", "maximum soil moisture storage (field capacity)"),
    ParamSpec("K0", 0.05, 0.9, "1/d", "recession coefficient of fast surface flow above UZL"),
    ParamSpec("K1", 0.01, 0.5, "1/d", "recession coefficient of the upper zone (interflow)"),
    ParamSpec("K2", 0.001, 0.2, "1/d", "recession coefficient of the lower zone (baseflow)"),
    ParamSpec("LP", 0.2, 1.0, "-", "fraction of FC above which ET runs at the potential rate"),
    ParamSpec("PERC", 0.0, 10.0, "mm/d", "maximum percolation from upper to lower zone"),
    ParamSpec("UZL", 0.0, 100.0, "mm", "upper-zone threshold for fast surface flow"),
    ParamSpec("TT", -2.5, 2.5, "degC", "threshold temperature for snowfall and melt"),
    ParamSpec("CFMAX", 0.5, 10.0, "mm/degC/d", "degree-day snowmelt factor"),
    ParamSpec("CFR", 0.0, 0.1, "-", "refreezing coefficient (fraction of CFMAX)"),
    ParamSpec("CWH", 0.0, 0.2, "-", "liquid water holding capacity of snow (fraction of snowpack)"),
)
_BETAET_SPEC = ParamSpec("BETAET", 0.3, 5.0, "-", "shape exponent of the ET reduction curve")
_ROUTING_SPECS = (
    ParamSpec("ROUTA", 0.0, 2.9, "-", "gamma unit hydrograph shape (alpha = ROUTA + 0.1)"),
    ParamSpec("ROUTB", 0.0, 6.5, "d", "gamma unit hydrograph scale (theta = ROUTB + 0.5 days)"),
)


def hbv_parameter_table(routing: bool = True, use_betaet: bool = False) -> ParameterTable:
    """The HBV parameter table: 12 core parameters, then BETAET (optional), then ROUTA, ROUTB."""
    specs = list(_CORE_SPECS)
    if use_betaet:
        specs.append(_BETAET_SPEC)
    if routing:
        specs.extend(_ROUTING_SPECS)
    return ParameterTable(specs)


# ---------------------------------------------------------------- helpers (fixed subgradients)
def _relu(x: torch.Tensor) -> torch.Tensor:
    """max(x, 0); gradient 1 where x > 0, else 0."""
    return torch.where(x > 0, x, torch.zeros_like(x))


def _min(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """min(a, b); gradient to ``a`` where a < b, to ``b`` otherwise (ties -> b)."""
    return torch.where(a < b, a, b)


def _pow_unit(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """x^p clipped to [0, 1]: 0 for x <= 0, 1 for x >= 1; gradients only for 0 < x < 1."""
    inside = (x > 0) & (x < 1)
    xs = torch.where(inside, x, torch.full_like(x, 0.5))  # safe base: no inf/NaN in backward
    return torch.where(inside, xs ** p, (x >= 1).to(x.dtype))


def gamma_unit_hydrograph(shape: torch.Tensor, scale: torch.Tensor, length: int = UH_LENGTH) -> torch.Tensor:
    """Normalised gamma unit hydrograph.

    Args:
        shape: alpha, ``[site]`` (> 0, dimensionless).
        scale: theta, ``[site]`` in days (> 0).
        length: number of daily ordinates.
    Returns:
        ``[site, length]`` weights summing to 1; weight ``j`` applies to flow generated ``j``
        days earlier, ``h_j ∝ t_j^(alpha-1) exp(-t_j/theta)`` with ``t_j = j + 0.5``.
    """
    t = torch.arange(length, dtype=shape.dtype, device=shape.device) + 0.5
    logw = (shape[:, None] - 1.0) * torch.log(t)[None, :] - t[None, :] / scale[:, None]
    # exp(logw) / sum exp(logw), shifted by the row maximum (numerically safe). Written out rather
    # than torch.softmax: ATen's softmax backward rounds differently with 1 and 2 threads, which made
    # the routing parameters' gradients (and so whole training runs) depend on the thread count.
    e = torch.exp(logw - logw.detach().amax(dim=-1, keepdim=True))
    return e / e.sum(dim=-1, keepdim=True)


def routing_unit_hydrograph(routa: torch.Tensor, routb: torch.Tensor, length: int = UH_LENGTH) -> torch.Tensor:
    """The unit hydrograph of the physical routing parameters ``ROUTA``/``ROUTB`` ``[site]`` (the
    last two rows of the HBV table, reused by other models): gamma shape ``ROUTA + 0.1``, scale
    ``ROUTB + 0.5`` days (:func:`gamma_unit_hydrograph`). Returns ``[site, length]``."""
    return gamma_unit_hydrograph(routa + 0.1, routb + 0.5, length)


def route(q: torch.Tensor, uh: torch.Tensor) -> torch.Tensor:
    """Causal convolution ``out[t] = sum_j uh[j] q[t - j]`` (q before day 0 taken as 0).

    Args:
        q: ``[time, site]`` unrouted flow (mm/day).
        uh: ``[site, L]`` unit hydrograph.
    Returns: ``[time, site]`` routed flow (mm/day).
    """
    n_t, n_s = q.shape
    L = uh.shape[1]
    x = torch.nn.functional.pad(q.t().unsqueeze(0), (L - 1, 0))  # [1, site, time + L - 1]
    w = uh.flip(-1).unsqueeze(1)  # [site, 1, L]; conv1d is a correlation
    return torch.nn.functional.conv1d(x, w, groups=n_s)[0].t()


def _float_tensor(x, name: str) -> torch.Tensor:
    """A floating-point tensor from ``x`` (a float numpy array is wrapped, not copied); other
    types or integer/bool dtypes raise a TypeError that says what to pass instead."""
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"HBV {name} must be floating point (float32/float64), got a numpy {x.dtype} array; "
                            "convert it with .astype(np.float32)")
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"HBV {name} must be a torch.Tensor (or a float numpy array), got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"HBV {name} must be floating point (float32/float64), got {x.dtype}; convert it with .float()")
    return x


def check_forcing(forcing: torch.Tensor) -> None:
    """Raise ``ValueError`` naming the site/day/field for NaN, inf or negative precip/PET
    (``TypeError`` for a non-tensor or an integer tensor)."""
    forcing = _float_tensor(forcing, "forcing")
    if forcing.ndim != 3 or forcing.shape[-1] != 3:
        raise ValueError(f"HBV forcing must be [time, site, 3] (precip, temp, pet); got {tuple(forcing.shape)}")
    names = ("precip", "temp", "pet")
    if forcing.device.type == "cpu" and forcing.dtype in (torch.float32, torch.float64):
        if hbv_fused.forcing_ok(forcing):  # one branch-free C pass (False: no C backend, or a bad value)
            return
        a = forcing.detach().numpy()  # one single-threaded pass, no tensor-op dispatch
        if np.isfinite(a).all() and not (a[..., 0] < 0).any() and not (a[..., 2] < 0).any():
            return
    bad = ~torch.isfinite(forcing)
    bad[..., 0] |= forcing[..., 0] < 0
    bad[..., 2] |= forcing[..., 2] < 0
    if bool(bad.any()):
        t, s, c = (int(i) for i in torch.nonzero(bad)[0])
        raise ValueError(f"HBV forcing: invalid {names[c]} value {float(forcing[t, s, c])} at site index {s}, "
                         f"day index {t} (must be finite{' and >= 0' if c != 1 else ''})")


# ---------------------------------------------------------------- the reference loop
def hbv_loop(forcing: torch.Tensor, par: torch.Tensor, states: torch.Tensor, use_betaet: bool = False,
             return_fluxes: bool = False):
    """Run the HBV step equations over time (reference implementation, pure PyTorch).

    Args:
        forcing: ``[time, site, 3]`` precip (mm/d), temp (degC), pet (mm/d).
        par: physical core parameters (12, or 13 with BETAET, in table order; no routing rows),
            ``[site, n, nmul]`` static or ``[time, site, n, nmul]`` time-varying.
        states: ``[site, 5, nmul]`` initial storages (mm) in the order of :data:`STATE_NAMES`.
        use_betaet: apply the ET shape exponent (13th row).
        return_fluxes: also return the nmul-averaged flux/storage series.
    Returns:
        ``(q, fluxes, final_states)``: ``q`` unrouted nmul-averaged runoff ``[time, site]``;
        ``fluxes`` dict of ``[time, site]`` (empty unless ``return_fluxes``);
        ``final_states`` ``[site, 5, nmul]``.
    """
    n_core = 13 if use_betaet else 12
    if par.shape[-2] != n_core:
        raise ValueError(f"hbv_loop expects {n_core} core parameter rows, got {par.shape[-2]}")
    dynamic = par.ndim == 4
    SP, MW, SM, SUZ, SLZ = states.unbind(1)
    p_steps = par.unbind(0) if dynamic else None
    qs = []
    flux_lists: dict[str, list] = {}

    def rec(name, value):
        flux_lists.setdefault(name, []).append(value.mean(-1))

    for t, f in enumerate(forcing.unbind(0)):
        p = p_steps[t] if dynamic else par
        (BETA, FC, K0, K1, K2, LP, PERC, UZL, TT, CFMAX, CFR, CWH) = p[:, :12].unbind(1)
        P, T, E = (v.unsqueeze(-1) for v in f.unbind(-1))  # [site, 1]
        # snow
        is_rain = T >= TT
        rain = torch.where(is_rain, P, torch.zeros_like(TT))
        snowfall = torch.where(is_rain, torch.zeros_like(TT), P)
        sp = SP + snowfall
        melt = _min(_relu(CFMAX * (T - TT)), sp)
        sp = sp - melt
        mw = MW + melt
        refr = _min(_relu(CFR * CFMAX * (TT - T)), mw)
        sp = sp + refr
        mw = mw - refr
        tosoil = _relu(mw - CWH * sp)
        mw = mw - tosoil
        # soil
        w = _pow_unit(SM / FC, BETA)
        inp = rain + tosoil
        rech0 = inp * w
        sm = SM + inp - rech0
        excess = _relu(sm - FC)
        sm = sm - excess
        rech = rech0 + excess
        ef = sm / (LP * FC)
        ef = torch.where(ef < 1, ef, torch.ones_like(ef))
        if use_betaet:
            pos = ef > 0
            efs = torch.where(pos, ef, torch.full_like(ef, 0.5))
            ef = torch.where(pos, efs ** p[:, 12], torch.zeros_like(ef))
        et = _min(E * ef, sm)
        sm = sm - et
        # response
        suz = SUZ + rech
        perc = _min(PERC, suz)
        suz = suz - perc
        slz = SLZ + perc
        q0 = K0 * _relu(suz - UZL)
        suz = suz - q0
        q1 = K1 * suz
        suz = suz - q1
        q2 = K2 * slz
        slz = slz - q2
        q = q0 + q1 + q2
        SP, MW, SM, SUZ, SLZ = sp, mw, sm, suz, slz
        qs.append(q.mean(-1))
        if return_fluxes:
            rec("precip", P.expand_as(q))
            rec("rain", rain)
            rec("snowfall", snowfall)
            rec("melt", melt)
            rec("refreeze", refr)
            rec("tosoil", tosoil)
            rec("snow", SP + MW)
            rec("swe", SP)
            rec("snow_liquid", MW)
            rec("soil_storage", SM)
            rec("excess", excess)
            rec("recharge", rech)
            rec("et", et)
            rec("perc", perc)
            rec("q0", q0)
            rec("q1", q1)
            rec("q2", q2)
            rec("upper_storage", SUZ)
            rec("lower_storage", SLZ)
    q_all = torch.stack(qs) if qs else forcing.new_zeros((0, forcing.shape[1]))
    fluxes = {k: torch.stack(v) for k, v in flux_lists.items()}
    return q_all, fluxes, torch.stack([SP, MW, SM, SUZ, SLZ], dim=1)


@register_model("hbv")
class HBV(ProcessModel):
    """Differentiable HBV with ``nmul`` parallel parameter components per site.

    Args:
        nmul: number of parameter components per site; their fluxes are averaged.
        routing: convolve the averaged runoff with a gamma unit hydrograph (adds ROUTA, ROUTB).
        use_betaet: add BETAET, the exponent of the ET reduction curve.
        backend: ``"auto"`` (fused C backend when it compiled, else the PyTorch loop),
            ``"fused"`` (C backend; warns and falls back if no compiler) or ``"torch"``
            (the reference loop in this file). The fused backend serves CPU tensors and
            ``return_fluxes=False``; other calls always run the reference loop.

    Parameter rows (unit cube in, scaled with ``self.parameter_table``):
    BETA, FC, K0, K1, K2, LP, PERC, UZL, TT, CFMAX, CFR, CWH, [BETAET], [ROUTA, ROUTB].
    """

    def __init__(self, nmul: int = 16, routing: bool = True, use_betaet: bool = False, backend: str = "auto"):
        super().__init__()
        if backend not in ("auto", "fused", "torch"):
            raise ValueError(f"backend must be 'auto', 'fused' or 'torch', got {backend!r}")
        if nmul < 1:
            raise ValueError(f"nmul must be >= 1, got {nmul}")
        self.nmul = int(nmul)
        self.routing = bool(routing)
        self.use_betaet = bool(use_betaet)
        self.backend = backend
        self.parameter_table = hbv_parameter_table(routing, use_betaet)
        self.n_core = 13 if use_betaet else 12

    def _fused_ok(self, forcing: torch.Tensor, return_fluxes: bool) -> bool:
        if self.backend == "torch" or return_fluxes or forcing.device.type != "cpu":
            return False
        if forcing.dtype not in (torch.float32, torch.float64):
            return False
        if hbv_fused.available():
            return True
        if self.backend == "fused":
            warnings.warn(f"HBV fused backend unavailable ({hbv_fused.unavailable_reason()}); "
                          "using the PyTorch reference loop", RuntimeWarning, stacklevel=3)
        return False

    def _raise_param_range(self, params: torch.Tensor) -> None:
        """Name the first parameter (row), site and value outside the unit cube or NaN."""
        bad = torch.isnan(params) | (params < -1e-6) | (params > 1 + 1e-6)
        if bool(bad.any()):
            idx = [int(i) for i in torch.nonzero(bad)[0]]
            j, site = idx[-2], idx[-3]
            when = f", time index {idx[0]}" if params.ndim == 4 else ""
            raise ValueError(f"HBV params: {self.parameter_table.names[j]} (row {j}) = {float(params[tuple(idx)])} "
                             f"at site index {site}{when}, component {idx[-1]}: unit-cube values must lie in [0, 1] "
                             f"(no NaN); {int(bad.sum())} values outside in all")

    def water_balance_residual(self, forcing: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Daily mass balance ``P - ET - Q_unrouted - d(storage)`` ``[time, site]`` (mm/d; ~0), from the
        reference loop's fluxes and storages (nmul-averaged; routing only delays Q)."""
        out = self.forward(forcing, params, return_fluxes=True)
        storage = out["snow"] + out["soil_storage"] + out["upper_storage"] + out["lower_storage"]
        start = forcing.new_full((1, forcing.shape[1]), 5 * DEFAULT_INITIAL_STATE)
        d_storage = torch.diff(torch.cat([start, storage]), dim=0)
        return out["precip"] - out["et"] - out["streamflow_unrouted"] - d_storage

    def _initial_states(self, forcing: torch.Tensor, initial_states: torch.Tensor | None) -> torch.Tensor:
        n_s = forcing.shape[1]
        if initial_states is None:
            return forcing.new_full((n_s, 5, self.nmul), DEFAULT_INITIAL_STATE)
        if tuple(initial_states.shape) != (n_s, 5, self.nmul):
            raise ValueError(f"initial_states must be [{n_s}, 5, {self.nmul}], got {tuple(initial_states.shape)}")
        if not bool(torch.isfinite(initial_states).all()) or bool((initial_states < 0).any()):
            raise ValueError("initial_states must be finite and >= 0")
        return initial_states.to(forcing.dtype)

    def _route(self, q: torch.Tensor, q_warm: torch.Tensor | None, rp: torch.Tensor | None,
               use_fused: bool) -> dict[str, torch.Tensor]:
        """``{"streamflow": q routed with the UH of the physical static parameters rp [site, n, nmul]}``."""
        if not self.routing:
            return {"streamflow": q}
        uh = routing_unit_hydrograph(rp[:, -2, :].mean(-1), rp[:, -1, :].mean(-1))
        if use_fused:  # same convolution in C (the grouped conv1d costs more than HBV itself)
            return {"streamflow": hbv_fused.route_fused(q, uh, None if q_warm is None else q_warm[-(UH_LENGTH - 1):].detach())}
        if q_warm is not None:
            hist = q_warm[-(UH_LENGTH - 1):].detach()
            return {"streamflow": route(torch.cat([hist, q]), uh)[hist.shape[0]:]}
        return {"streamflow": route(q, uh)}

    def _forward_mixed(self, forcing: torch.Tensor, params: DynamicParams, warmup: int,
                       initial_states: torch.Tensor | None, return_states: bool) -> dict[str, torch.Tensor]:
        """:meth:`forward` for :class:`DynamicParams` on the fused kernel: the static rows are scaled
        and passed once, only the time-varying rows day by day (same results as ``params.full()``)."""
        hbv_fused_run_dyn = hbv_fused.hbv_fused_run_dyn
        n_t, n_s, _ = forcing.shape
        expect = (n_s, len(self.parameter_table), self.nmul)
        if tuple(params.static.shape) != expect or params.dynamic.shape[0] != n_t:
            raise ValueError(f"HBV params: expected shape {expect} (or [{n_t}, *{expect}]), got {tuple(params.shape)}")
        static = _float_tensor(params.static, "params").to(forcing.dtype)
        dyn = _float_tensor(params.dynamic, "params").to(forcing.dtype)
        try:
            phys = self.parameter_table.to_physical(static, dim=-2)
            dphys = self.parameter_table.subset(params.rows).to_physical(dyn, dim=-2)
        except ValueError:
            self._raise_param_range(params.full().detach())
            raise
        core = phys[:, : self.n_core, :]
        states = self._initial_states(forcing, initial_states)
        q_warm = None
        if warmup > 0:
            with torch.no_grad():
                q_warm, states = hbv_fused_run_dyn(forcing[:warmup], core, dphys[:warmup], params.rows, states)
            states = states.detach()
        q, final = hbv_fused_run_dyn(forcing[warmup:], core, dphys[warmup:], params.rows, states)
        out = self._route(q, q_warm, phys, True)
        if return_states:
            out["final_states"] = final
        return out

    def forward(self, forcing: torch.Tensor, params: torch.Tensor, warmup: int = 0, return_fluxes: bool = False,
                initial_states: torch.Tensor | None = None, return_states: bool = False) -> dict[str, torch.Tensor]:
        """Run HBV.

        Args:
            forcing: ``[time, site, 3]``: precip (mm/d, >= 0), temp (degC), pet (mm/d, >= 0).
            params: unit-cube parameters ``[site, n_params, nmul]`` (static) or
                ``[time, site, n_params, nmul]`` (time-varying; ``time`` includes warm-up), or
                :class:`~dplpaper.models.base.DynamicParams` (a few time-varying rows; on the fused
                kernel only those rows are passed day by day, else it is expanded with ``full()``).
            warmup: leading days run without gradient to spin up the states (dropped from output).
            return_fluxes: also return nmul-averaged fluxes and storages, each ``[time - warmup, site]``:
                ``precip``, ``rain``, ``snowfall``, ``melt``, ``refreeze``, ``tosoil``, ``et``,
                ``recharge``, ``excess``, ``perc``, ``q0``, ``q1``, ``q2`` (mm/d); ``snow`` (snowpack +
                liquid water), ``swe``, ``snow_liquid``, ``soil_storage`` (soil moisture storage SM, mm),
                ``upper_storage``, ``lower_storage`` (mm, end of day); ``streamflow_unrouted`` (mm/d).
            initial_states: ``[site, 5, nmul]`` storages (mm) at the start of day 0, order
                :data:`STATE_NAMES`; default 0.001 mm everywhere.
            return_states: also return ``"final_states"`` ``[site, 5, nmul]`` (end of the last day).
        Returns:
            dict with ``"streamflow"`` ``[time - warmup, site]`` (mm/d, routed if ``routing``).
        """
        forcing = _float_tensor(forcing, "forcing")
        check_forcing(forcing)
        n_t, n_s, _ = forcing.shape
        if not 0 <= warmup < n_t:
            raise ValueError(f"warmup ({warmup}) must be in [0, time={n_t})")
        use_fused = self._fused_ok(forcing, return_fluxes)
        if isinstance(params, DynamicParams):
            if use_fused and max(params.rows) < self.n_core:
                return self._forward_mixed(forcing, params, warmup, initial_states, return_states)
            params = params.full()  # the reference loop (or dynamic routing rows): the full tensor
        params = _float_tensor(params, "params")
        if params.ndim not in (3, 4):
            raise ValueError(f"HBV params must be [site, n_params, nmul] or [time, site, n_params, nmul]; got {tuple(params.shape)}")
        expect = (n_s, len(self.parameter_table), self.nmul)
        if tuple(params.shape[-3:]) != expect or (params.ndim == 4 and params.shape[0] != n_t):
            raise ValueError(f"HBV params: expected shape {expect} (or [{n_t}, *{expect}]), got {tuple(params.shape)}")
        params = params.to(forcing.dtype)
        try:
            phys = self.parameter_table.to_physical(params, dim=-2)
        except ValueError:
            self._raise_param_range(params)
            raise
        core = phys[..., : self.n_core, :]
        states = self._initial_states(forcing, initial_states)
        dynamic = core.ndim == 4
        if use_fused:
            run = hbv_fused.hbv_fused_run
        else:
            def run(f, p, s):
                q, _, fs = hbv_loop(f, p, s, self.use_betaet)
                return q, fs
        q_warm = None
        if warmup > 0:
            with torch.no_grad():
                q_warm, states = run(forcing[:warmup], core[:warmup] if dynamic else core, states)
            states = states.detach()
        f_main = forcing[warmup:]
        p_main = core[warmup:] if dynamic else core
        fluxes: dict[str, torch.Tensor] = {}
        if use_fused:
            q, final = run(f_main, p_main, states)
        else:
            q, fluxes, final = hbv_loop(f_main, p_main, states, self.use_betaet, return_fluxes)
        out = self._route(q, q_warm, phys[-1] if dynamic else phys, use_fused)
        if return_fluxes:
            out.update(fluxes)
            out["streamflow_unrouted"] = q
        if return_states:
            out["final_states"] = final
        return out
