r"""A VIC-style water-balance model in NumPy (a stand-in for a legacy, non-differentiable code).

The dPL paper (Tsai et al. 2021) calibrated the Variable Infiltration Capacity model (VIC,
Liang et al. 1994), a large C code, through an LSTM surrogate. VIC is not available here, so
this module implements a **VIC-style** daily water-balance model: it keeps VIC's signature
runoff and baseflow formulations and the five parameters the paper calibrated (INFILT, Dsmax,
Ds, Ws, EXPT, following Troy et al. 2008), but it is *not* VIC: there is no energy balance,
no canopy interception, no vegetation tiles, no frozen soil and a simple degree-day snow store.
It is written in NumPy on purpose — it stands for any legacy code that autograd cannot see —
and is reached from PyTorch only through :mod:`dplpaper.models.surrogate`.

Calibrated parameters (one :class:`~dplpaper.models.base.ParameterTable`, ``PARAMETER_TABLE``)
-------------------------------------------------------------------------------------------------
========  ===============  =======  ========================================================
name      range            units    meaning
========  ===============  =======  ========================================================
INFILT    0.001 – 0.4      –        shape *b* of the variable infiltration capacity curve
Dsmax     0.1 – 30         mm/d     maximum baseflow rate of the bottom layer
Ds        0.001 – 1        –        fraction of Dsmax where non-linear baseflow begins
Ws        0.1 – 1          –        fraction of bottom-layer capacity where non-linear baseflow begins
EXPT      3 – 30           –        Brooks–Corey exponent of unsaturated conductivity (``2/lambda + 3``)
========  ===============  =======  ========================================================

The ranges are those usually used to calibrate VIC (Troy et al. 2008; Demaria et al. 2007);
the defaults (INFILT 0.2, Dsmax 10 mm/d, Ds 0.1, Ws 0.8, EXPT 15) are typical VIC values and
are used for the "default parameters" runs.

State, soil and layers
----------------------
Three soil layers of thickness :math:`z_l` = 0.05, 0.45 and 1.0 m (the top layer is comparable
to the ~5 cm sensing depth of SMAP). Each layer holds water :math:`S_l` (mm) with

.. math:: S^{\max}_l = 1000\,\phi\, z_l,\qquad S^{r}_l = 1000\,\theta_r z_l,\qquad
          S^{fc}_l = 1000\,\theta_{fc} z_l,\qquad S^{wp}_l = 1000\,\theta_{wp} z_l,

porosity :math:`\phi`, residual :math:`\theta_r`, field capacity :math:`\theta_{fc}` and
wilting point :math:`\theta_{wp}` (m3/m3) and saturated conductivity :math:`K_s` (mm/d). They
come from sand/clay/silt percentages with the pedotransfer functions of Cosby et al. (1984)
(see :func:`soil_from_texture`):

.. math:: \phi = 0.505 - 0.00142\,\mathrm{sand} - 0.00037\,\mathrm{clay},\quad
          K_s = 24\cdot 25.4\cdot 10^{-0.6 + 0.0126\,\mathrm{sand} - 0.0064\,\mathrm{clay}},

.. math:: b_{c} = 3.10 + 0.157\,\mathrm{clay} - 0.003\,\mathrm{sand},\quad
          \psi_s = 10\cdot 10^{1.54 - 0.0095\,\mathrm{sand} + 0.0063\,\mathrm{silt}}\ \mathrm{mm},

and Campbell's retention curve :math:`\theta = \phi\,(\psi/\psi_s)^{-1/b_c}` at
:math:`\psi` = 3.3 m (field capacity) and 150 m (wilting point); :math:`\theta_r = \theta_{wp}/2`.
Without texture a loam (40 % sand, 20 % clay, 40 % silt) is used. The snow store is
:math:`W` (mm SWE). Initial state: every layer at field capacity, no snow.

One day (:math:`\Delta t` = 1 d), in this order
-----------------------------------------------
1. **Snow** (degree-day). Snow fraction of precipitation
   :math:`f_s = \mathrm{clip}((T_{r} - T)/(T_{r} - T_{s}), 0, 1)` with :math:`T_s=-0.5`,
   :math:`T_r=0.5` °C (VIC's MIN_RAIN_TEMP / MAX_SNOW_TEMP);
   :math:`W \leftarrow W + f_s P`; melt :math:`M = \min(W,\ \mathrm{DDF}\max(T - T_m, 0))`,
   DDF = 2.5 mm/°C/d, :math:`T_m` = 0 °C. Water reaching the soil: :math:`P_{in} = (1-f_s)P + M`.
2. **Surface runoff** — the VIC infiltration curve over the upper zone (layers 1+2,
   :math:`S_u = S_1+S_2`, :math:`S^{\max}_u = S^{\max}_1+S^{\max}_2`). Point infiltration
   capacities are distributed as :math:`i = i_m[1-(1-A)^{1/b}]` (paper eq. 9, *b* = INFILT,
   :math:`A` the saturated fraction), :math:`i_m = (1+b)S^{\max}_u`. The current capacity is
   :math:`i_0 = i_m[1 - (1 - S_u/S^{\max}_u)^{1/(1+b)}]`, and

   .. math:: R_s = \begin{cases} P_{in} - (S^{\max}_u - S_u), & i_0 + P_{in} \ge i_m\\
             P_{in} - (S^{\max}_u - S_u) + S^{\max}_u\left(1-\frac{i_0+P_{in}}{i_m}\right)^{1+b}, & \text{else,}\end{cases}

   clipped to :math:`[0, P_{in}]`. Larger INFILT gives more runoff at the same wetness.
   The infiltration :math:`I = P_{in} - R_s` fills layer 1 to :math:`S^{\max}_1` first and the
   rest goes to layer 2.
3. **Gravity drainage** (Brooks–Corey, exponent :math:`c` = EXPT) from layer 1 to 2 and then
   2 to 3: with :math:`S_e = (S_l - S^r_l)/(S^{\max}_l - S^r_l)` and
   :math:`D_l = S^{\max}_l - S^r_l`, the drainage ODE :math:`D_l\,\dot S_e = -K_s S_e^{c}`
   is integrated exactly over the day,

   .. math:: S_e' = S_e\left[1 + (c-1)\,\frac{K_s\Delta t}{D_l}\,S_e^{c-1}\right]^{1/(1-c)},
             \qquad Q_{l\to l+1} = \min\big(D_l(S_e - S_e'),\ S^{\max}_{l+1} - S_{l+1}\big).

   Larger EXPT drains an unsaturated layer more slowly (wetter top layer). The bottom layer
   has no drainage: it loses water only as baseflow and transpiration (as in VIC).
4. **Evapotranspiration**, moisture-limited fractions of PET :math:`E_p`. Bare-soil
   evaporation from layer 1, which can dry it to the residual content:
   :math:`E_s = \min\big(f_{b}E_p\,\mathrm{clip}(\tfrac{S_1-S^r_1}{S^{fc}_1-S^r_1},0,1),\ S_1 - S^r_1\big)`
   (:math:`f_b` = 0.3). Then transpiration from each layer with root fractions
   :math:`r` = (0.1, 0.6, 0.3) and stress
   :math:`\beta_l = \mathrm{clip}((S_l-S^{wp}_l)/(S^{fc}_l-S^{wp}_l),0,1)`:
   :math:`T_l = \min\big((1-f_b)\,r_l\,E_p\,\beta_l,\ \max(S_l - S^{wp}_l, 0)\big)`.
   ET = :math:`E_s + \sum_l T_l`.
5. **Baseflow** (ARNO, Francini & Pacciani 1991, as in VIC) from the bottom layer with
   :math:`x = (S_3 - S^r_3)/(S^{\max}_3 - S^r_3)`:

   .. math:: Q_b = \frac{D_s D_{s\max}}{W_s}\,x
             + \begin{cases}0, & x \le W_s\\ \left(D_{s\max} - \frac{D_s D_{s\max}}{W_s}\right)
             \left(\frac{x - W_s}{1 - W_s}\right)^2, & x > W_s\end{cases}

   capped at :math:`S_3 - S^r_3`; :math:`Q_b(W_s) = D_s D_{s\max}` and :math:`Q_b(1) = D_{s\max}`.
   (As in VIC, the curve is not monotone in :math:`x` when :math:`D_s > W_s`.)

Total runoff :math:`Q = R_s + Q_b`. Mass balance holds by construction:
:math:`P = Q + ET + \Delta(W + S_1 + S_2 + S_3)` each day (to rounding).

Outputs of :meth:`VICStyleModel.run` (each ``[time - warmup, site]``, float64)
------------------------------------------------------------------------------
``soil_moisture`` (top-layer volumetric water content, m3/m3, end of day), ``soil_moisture_2``,
``soil_moisture_3`` (m3/m3), ``et``, ``surface_runoff``, ``baseflow``, ``runoff`` (mm/d),
``swe``, ``soil_water`` (S1+S2+S3) and ``storage`` (SWE + soil water) in mm, end of day.

References: Liang et al. 1994 (JGR 99, 14415); Troy et al. 2008 (WRR 44, W09411);
Cosby et al. 1984 (WRR 20, 682); Francini & Pacciani 1991 (J. Hydrol. 122, 189).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from dplpaper.models.base import ParameterTable, ParamSpec

__all__ = ["PARAMETER_TABLE", "VICStyleModel", "simulate", "soil_from_texture",
           "vic_surface_runoff", "arno_baseflow", "brooks_corey_drain"]

PARAMETER_TABLE = ParameterTable([
    ParamSpec("INFILT", 0.001, 0.4, "-", "shape b of the variable infiltration capacity curve; larger -> more surface runoff", 0.2),
    ParamSpec("Dsmax", 0.1, 30.0, "mm/d", "maximum baseflow rate from the bottom soil layer", 10.0),
    ParamSpec("Ds", 0.001, 1.0, "-", "fraction of Dsmax where non-linear baseflow begins", 0.1),
    ParamSpec("Ws", 0.1, 1.0, "-", "fraction of bottom-layer capacity where non-linear baseflow begins", 0.8),
    ParamSpec("EXPT", 3.0, 30.0, "-", "Brooks-Corey exponent of unsaturated conductivity (larger -> slower drainage)", 15.0),
])

SOIL_KEYS = ("porosity", "field_capacity", "wilting_point", "residual", "ksat")
#: outputs of :meth:`VICStyleModel.run`, in the C kernel's order
OUTPUT_NAMES = ("soil_moisture", "soil_moisture_2", "soil_moisture_3", "et", "surface_runoff",
                "baseflow", "runoff", "swe", "soil_water", "storage")
TEXTURE_KEYS = ("sand", "clay", "silt")


# ----------------------------------------------------------------------------- soil
def soil_from_texture(sand, clay, silt=None) -> dict[str, np.ndarray]:
    """Soil hydraulic properties from texture (Cosby et al. 1984, Campbell retention curve).

    Args:
        sand, clay, silt: percentages (0-100), scalars or arrays ``[site]``; ``silt`` defaults to
            ``100 - sand - clay``.
    Returns:
        dict with ``porosity``, ``field_capacity``, ``wilting_point``, ``residual`` (m3/m3) and
        ``ksat`` (mm/d), each float64 array of the broadcast shape.
    """
    sand = np.asarray(sand, dtype=np.float64)
    clay = np.asarray(clay, dtype=np.float64)
    silt = 100.0 - sand - clay if silt is None else np.asarray(silt, dtype=np.float64)
    for name, v in (("sand", sand), ("clay", clay), ("silt", silt)):
        if np.isnan(v).any() or (v < -1e-6).any() or (v > 100 + 1e-6).any():
            bad = np.flatnonzero(np.isnan(v) | (v < -1e-6) | (v > 100 + 1e-6))
            raise ValueError(f"soil texture field {name!r}: values must be percentages in [0, 100] (bad sites {bad[:10].tolist()})")
    phi = 0.505 - 0.00142 * sand - 0.00037 * clay
    ksat = 24.0 * 25.4 * 10.0 ** (-0.6 + 0.0126 * sand - 0.0064 * clay)   # inch/h -> mm/d
    b = 3.10 + 0.157 * clay - 0.003 * sand
    psi_s = 10.0 * 10.0 ** (1.54 - 0.0095 * sand + 0.0063 * silt)         # mm (suction, positive)
    fc = phi * (3300.0 / psi_s) ** (-1.0 / b)
    wp = phi * (150000.0 / psi_s) ** (-1.0 / b)
    return {"porosity": phi, "field_capacity": fc, "wilting_point": wp, "residual": 0.5 * wp, "ksat": ksat}


DEFAULT_SOIL = {k: float(v) for k, v in soil_from_texture(40.0, 20.0, 40.0).items()}


def _resolve_soil(soil, n_site: int) -> dict[str, np.ndarray]:
    """Soil dict (properties or texture, scalars or ``[site]``) -> dict of ``[site]`` float64 arrays."""
    if soil is None:
        soil = DEFAULT_SOIL
    if not isinstance(soil, Mapping):
        raise TypeError("soil properties must be a mapping (dict / xarray.Dataset) of name -> value")
    keys = set(soil.keys())
    if set(SOIL_KEYS) <= keys:
        props = {k: np.asarray(soil[k], dtype=np.float64) for k in SOIL_KEYS}
    elif {"sand", "clay"} <= keys:
        props = soil_from_texture(soil["sand"], soil["clay"], soil["silt"] if "silt" in keys else None)
    else:
        raise ValueError(f"soil properties need all of {SOIL_KEYS} or texture {TEXTURE_KEYS}; got {sorted(keys)}")
    out = {}
    for k in SOIL_KEYS:
        v = np.asarray(props[k], dtype=np.float64)
        if v.ndim == 0:
            v = np.full(n_site, float(v))
        if v.shape != (n_site,):
            raise ValueError(f"soil property {k!r} has shape {v.shape}, expected () or ({n_site},)")
        out[k] = v.copy()
    r, wp, fc, phi = out["residual"], out["wilting_point"], out["field_capacity"], out["porosity"]
    bad = ~((0 <= r) & (r <= wp) & (wp < fc) & (fc < phi) & (phi < 1) & (out["ksat"] > 0))
    if bad.any():
        raise ValueError("soil properties must satisfy 0 <= residual <= wilting_point < field_capacity < porosity < 1 "
                         f"and ksat > 0; violated at sites {np.flatnonzero(bad)[:10].tolist()}")
    return out


# ----------------------------------------------------------------------------- process functions
def vic_surface_runoff(p_in, s_u, s_u_max, b):
    """Surface runoff (mm) from the VIC infiltration curve.

    Args (broadcastable float arrays): ``p_in`` water reaching the soil (mm), ``s_u`` water in
    the upper zone (mm), ``s_u_max`` its capacity (mm), ``b`` the INFILT shape (-).
    Returns runoff in ``[0, p_in]`` (mm).
    """
    frac = np.clip(1.0 - s_u / s_u_max, 0.0, 1.0)
    im = (1.0 + b) * s_u_max
    i0 = im * (1.0 - frac ** (1.0 / (1.0 + b)))
    deficit = s_u_max - np.minimum(s_u, s_u_max)
    tail = s_u_max * np.clip(1.0 - (i0 + p_in) / im, 0.0, 1.0) ** (1.0 + b)
    r = p_in - deficit + tail
    return np.clip(r, 0.0, p_in)


def arno_baseflow(x, dsmax, ds, ws):
    """ARNO baseflow (mm/d) for relative bottom-layer wetness ``x`` in [0, 1]."""
    lin = ds * dsmax / ws
    over = np.clip((x - ws) / np.maximum(1.0 - ws, 1e-12), 0.0, None)   # Ws = 1: purely linear
    return lin * x + (dsmax - lin) * over ** 2


def brooks_corey_drain(se, c, k_dt_over_d):
    """Effective saturation after one step of exact gravity drainage ``dSe/dt = -(K/D) Se^c``."""
    se = np.clip(se, 0.0, 1.0)
    return se * (1.0 + (c - 1.0) * k_dt_over_d * se ** (c - 1.0)) ** (1.0 / (1.0 - c))


# ----------------------------------------------------------------------------- model
class VICStyleModel:
    """VIC-style three-layer water-balance model (NumPy; see the module docstring for equations).

    Args:
        soil: default soil for :meth:`run` — a mapping with ``porosity``, ``field_capacity``,
            ``wilting_point``, ``residual`` (m3/m3) and ``ksat`` (mm/d), or with texture
            ``sand``, ``clay`` (and optionally ``silt``) in percent; scalars or ``[site]``.
            ``None`` means a loam.
        layer_depths: thickness of the three layers (m).
        ddf: degree-day melt factor (mm/°C/d). t_snow, t_rain, t_melt: °C thresholds.
        bare_fraction: share of PET demanded by bare-soil evaporation from the top layer.
        root_fractions: share of transpiration demand per layer (sums to 1).
        backend: ``"auto"`` (the compiled C loop, :mod:`dplpaper.models.vicwb_c`, when it built,
            else NumPy), ``"c"`` (C; raises if unavailable) or ``"numpy"`` (the reference loop in
            this file). Both give the same numbers (tested to a few ulps).
    """

    parameter_table = PARAMETER_TABLE
    forcing_names = ("precip", "temp", "pet")
    nmul = 1

    def __init__(self, soil=None, layer_depths=(0.05, 0.45, 1.0), ddf=2.5, t_snow=-0.5, t_rain=0.5,
                 t_melt=0.0, bare_fraction=0.3, root_fractions=(0.1, 0.6, 0.3), backend: str = "auto"):
        if backend not in ("auto", "c", "numpy"):
            raise ValueError(f"backend must be 'auto', 'c' or 'numpy', got {backend!r}")
        self.backend = backend
        self.soil = soil
        self.layer_depths = tuple(float(z) for z in layer_depths)
        if len(self.layer_depths) != 3 or min(self.layer_depths) <= 0:
            raise ValueError(f"layer_depths must be three positive thicknesses in m, got {layer_depths}")
        self.ddf, self.t_snow, self.t_rain, self.t_melt = float(ddf), float(t_snow), float(t_rain), float(t_melt)
        if not self.t_rain > self.t_snow:
            raise ValueError("t_rain must exceed t_snow")
        self.bare_fraction = float(bare_fraction)
        self.root_fractions = tuple(float(r) for r in root_fractions)
        if len(self.root_fractions) != 3 or abs(sum(self.root_fractions) - 1) > 1e-9:
            raise ValueError("root_fractions must be three numbers summing to 1")

    @property
    def n_params(self) -> int:
        return len(self.parameter_table)

    # -- helpers -------------------------------------------------------------
    def soil_arrays(self, n_site: int, soil_properties=None) -> dict[str, np.ndarray]:
        """Per-site soil properties, each ``[site]`` float64 (``soil_properties`` overrides ``soil``)."""
        return _resolve_soil(self.soil if soil_properties is None else soil_properties, n_site)

    def capacities(self, soil: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Layer storages (mm) at porosity / residual / field capacity / wilting point, each ``[3, site]``."""
        z = np.asarray(self.layer_depths)[:, None] * 1000.0
        return {"max": z * soil["porosity"], "res": z * soil["residual"],
                "fc": z * soil["field_capacity"], "wp": z * soil["wilting_point"]}

    def initial_state(self, n_site: int, soil_properties=None) -> dict[str, np.ndarray]:
        """Initial state: ``layers`` ``[3, site]`` mm at field capacity and ``swe`` ``[site]`` = 0."""
        cap = self.capacities(self.soil_arrays(n_site, soil_properties))
        return {"layers": cap["fc"].copy(), "swe": np.zeros(n_site)}

    def physical_params(self, params_unit) -> np.ndarray:
        """Unit-cube ``[site, 5]`` or ``[site, 5, 1]`` -> physical ``[site, 5]`` (range-checked)."""
        p = np.asarray(params_unit, dtype=np.float64)
        if p.ndim == 3:
            if p.shape[2] != 1:
                raise ValueError(f"VICStyleModel has nmul=1; got params of shape {p.shape}")
            p = p[:, :, 0]
        if p.ndim != 2 or p.shape[1] != self.n_params:
            raise ValueError(f"params_unit must be [site, {self.n_params}] ({self.parameter_table.names}), got shape {p.shape}")
        return self.parameter_table.to_physical(p, dim=1)

    @staticmethod
    def _check_forcing(forcing) -> np.ndarray:
        f = np.asarray(forcing, dtype=np.float64)
        if f.ndim != 3 or f.shape[2] != 3:
            raise ValueError(f"forcing must be [time, site, 3] (precip mm/d, temp degC, pet mm/d), got shape {f.shape}")
        for j, name in enumerate(("precip", "temp", "pet")):
            col = f[:, :, j]
            bad = ~np.isfinite(col)
            if name != "temp":
                bad |= col < 0
            if bad.any():
                t, s = np.argwhere(bad)[0]
                raise ValueError(f"forcing field {name!r}: invalid value {col[t, s]!r} at time index {t}, site index {s} "
                                 f"({int(bad.sum())} bad values; NaN/inf or negative not allowed)")
        return f

    # -- simulation ----------------------------------------------------------
    def run(self, forcing, params_unit, warmup: int = 0, soil_properties=None, initial_state=None) -> dict[str, np.ndarray]:
        """Run the model.

        Args:
            forcing: ``[time, site, 3]`` (precip mm/d, temp °C, pet mm/d).
            params_unit: unit-cube parameters ``[site, 5]`` or ``[site, 5, 1]`` in the order of
                ``parameter_table`` (INFILT, Dsmax, Ds, Ws, EXPT).
            warmup: leading days used only to spin up the states (dropped from the outputs).
            soil_properties: per-site soil (see :class:`VICStyleModel`); overrides ``self.soil``.
            initial_state: optional ``{"layers": [3, site] mm, "swe": [site] mm}``.
        Returns:
            dict of output name -> ``[time - warmup, site]`` float64 arrays (see module docstring).
        """
        f = self._check_forcing(forcing)
        n_t, n_s, _ = f.shape
        if not 0 <= warmup < n_t:
            raise ValueError(f"warmup ({warmup}) must be in [0, {n_t}) days")
        par = self.physical_params(params_unit)
        if par.shape[0] != n_s:
            raise ValueError(f"params have {par.shape[0]} sites, forcing has {n_s}")
        b, dsmax, ds, ws, expt = (par[:, i] for i in range(5))
        soil = self.soil_arrays(n_s, soil_properties)
        cap = self.capacities(soil)
        smax, sres, sfc, swp = cap["max"], cap["res"], cap["fc"], cap["wp"]
        su_max = smax[0] + smax[1]
        drain_d = smax - sres                                  # [3, site] mm
        k_dt_over_d = soil["ksat"][None, :] / drain_d          # [3, site] 1/d (dt = 1 d)
        z = np.asarray(self.layer_depths)[:, None] * 1000.0
        roots = np.asarray(self.root_fractions)[:, None]

        st = self.initial_state(n_s, soil_properties) if initial_state is None else initial_state
        S = np.array(st["layers"], dtype=np.float64).reshape(3, n_s).copy()
        swe = np.array(st["swe"], dtype=np.float64).reshape(n_s).copy()

        n_out = n_t - warmup
        if self.backend != "numpy":
            from dplpaper.models import vicwb_c
            if vicwb_c.available():
                consts = np.array([self.ddf, self.t_snow, self.t_rain, self.t_melt, self.bare_fraction,
                                   *self.root_fractions])
                out, S, swe = vicwb_c.run(f, par, warmup, smax, sres, sfc, swp, drain_d, k_dt_over_d, su_max,
                                          z[:, 0], consts, S, swe)
                self.final_state = {"layers": S, "swe": swe}
                return dict(zip(OUTPUT_NAMES, out))
            if self.backend == "c":
                raise RuntimeError(f"VICStyleModel(backend='c'): the C kernel is unavailable "
                                   f"({vicwb_c.unavailable_reason()})")
        out = {k: np.empty((n_out, n_s)) for k in OUTPUT_NAMES}

        for t in range(n_t):
            prcp, temp, pet = f[t, :, 0], f[t, :, 1], f[t, :, 2]
            # 1. snow
            fs = np.clip((self.t_rain - temp) / (self.t_rain - self.t_snow), 0.0, 1.0)
            snow = fs * prcp
            rain = prcp - snow
            swe = swe + snow
            melt = np.minimum(swe, self.ddf * np.maximum(temp - self.t_melt, 0.0))
            swe = swe - melt
            p_in = rain + melt
            # 2. surface runoff and infiltration (VIC curve on layers 1+2)
            rs = vic_surface_runoff(p_in, S[0] + S[1], su_max, b)
            infil = p_in - rs
            to1 = np.minimum(infil, smax[0] - S[0])
            S[0] = S[0] + to1
            to2 = np.minimum(infil - to1, smax[1] - S[1])
            S[1] = S[1] + to2
            rs = rs + (infil - to1 - to2)              # only rounding-level leftovers
            # 3. Brooks-Corey gravity drainage 1->2, 2->3
            for l in (0, 1):
                se = (S[l] - sres[l]) / drain_d[l]
                se_new = brooks_corey_drain(se, expt, k_dt_over_d[l])
                q = np.clip(drain_d[l] * (np.clip(se, 0.0, 1.0) - se_new), 0.0, None)
                q = np.minimum(np.minimum(q, smax[l + 1] - S[l + 1]), np.maximum(S[l] - sres[l], 0.0))
                S[l] = S[l] - q
                S[l + 1] = S[l + 1] + q
            # 4. moisture-limited evapotranspiration
            beta_e = np.clip((S[0] - sres[0]) / (sfc[0] - sres[0]), 0.0, 1.0)
            es = np.minimum(self.bare_fraction * pet * beta_e, np.maximum(S[0] - sres[0], 0.0))
            S[0] = S[0] - es
            beta = np.clip((S - swp) / (sfc - swp), 0.0, 1.0)          # [3, site]
            tr = np.minimum((1.0 - self.bare_fraction) * roots * pet[None, :] * beta, np.maximum(S - swp, 0.0))
            S = S - tr
            et = es + tr.sum(axis=0)
            # 5. ARNO baseflow from the bottom layer
            x = np.clip((S[2] - sres[2]) / drain_d[2], 0.0, 1.0)
            qb = np.minimum(arno_baseflow(x, dsmax, ds, ws), np.maximum(S[2] - sres[2], 0.0))
            S[2] = S[2] - qb

            if t >= warmup:
                i = t - warmup
                out["soil_moisture"][i] = S[0] / z[0]
                out["soil_moisture_2"][i] = S[1] / z[1]
                out["soil_moisture_3"][i] = S[2] / z[2]
                out["et"][i] = et
                out["surface_runoff"][i] = rs
                out["baseflow"][i] = qb
                out["runoff"][i] = rs + qb
                out["swe"][i] = swe
                sw = S[0] + S[1] + S[2]
                out["soil_water"][i] = sw
                out["storage"][i] = sw + swe
        self.final_state = {"layers": S.copy(), "swe": swe.copy()}
        return out

    def simulate(self, forcing, params_unit, warmup: int = 0, soil_properties=None) -> dict[str, np.ndarray]:
        """Alias of :meth:`run` (``[time, site, 3]``, ``[site, 5]`` -> ``[time - warmup, site]``)."""
        return self.run(forcing, params_unit, warmup=warmup, soil_properties=soil_properties)


def simulate(forcing, params_unit, warmup: int = 0, soil_properties=None) -> dict[str, np.ndarray]:
    """Run :class:`VICStyleModel` (default layers, loam unless ``soil_properties``).

    Args:
        forcing: ``[time, site, 3]`` (precip mm/d, temp °C, pet mm/d).
        params_unit: ``[site, 5]`` unit-cube parameters (INFILT, Dsmax, Ds, Ws, EXPT).
    Returns:
        dict of output name -> ``[time - warmup, site]`` float64 arrays.
    """
    return VICStyleModel().run(forcing, params_unit, warmup=warmup, soil_properties=soil_properties)
