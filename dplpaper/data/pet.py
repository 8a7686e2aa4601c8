"""Potential evapotranspiration and radiation helpers (FAO-56, Allen et al. 1998; Hargreaves 1985).

All functions are vectorised NumPy; shapes broadcast. Units are in each docstring.
Equation numbers refer to FAO Irrigation and Drainage Paper 56 (Allen et al. 1998).
"""
from __future__ import annotations

import numpy as np

GSC = 0.0820  # solar constant, MJ m-2 min-1
SIGMA = 4.903e-9  # Stefan-Boltzmann, MJ K-4 m-2 day-1
W_M2_TO_MJ_DAY = 0.0864  # 1 W/m2 sustained for a day = 0.0864 MJ m-2 day-1
MJ_TO_MM = 0.408  # 1 MJ m-2 day-1 of energy evaporates 0.408 mm day-1 (1/lambda, lambda = 2.45 MJ/kg)


def extraterrestrial_radiation(lat_deg, doy):
    """Daily extraterrestrial radiation Ra (MJ m-2 day-1), FAO-56 eqs. 21-25.

    lat_deg: latitude (degrees north, negative south); doy: day of year 1..366.
    """
    phi = np.deg2rad(np.asarray(lat_deg, dtype=float))
    j = np.asarray(doy, dtype=float)
    dr = 1 + 0.033 * np.cos(2 * np.pi / 365 * j)  # eq. 23
    delta = 0.409 * np.sin(2 * np.pi / 365 * j - 1.39)  # eq. 24
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1.0, 1.0))  # eq. 25 (polar day/night clipped)
    return 24 * 60 / np.pi * GSC * dr * (ws * np.sin(phi) * np.sin(delta)
                                         + np.cos(phi) * np.cos(delta) * np.sin(ws))  # eq. 21


def hargreaves(tmin, tmax, lat_deg, doy):
    """Hargreaves & Samani (1985) reference ET (mm/day), FAO-56 eq. 52.

    ET0 = 0.0023 * 0.408 * Ra * (Tmean + 17.8) * sqrt(Tmax - Tmin), Tmean = (Tmax + Tmin)/2,
    Ra from :func:`extraterrestrial_radiation` (MJ m-2 day-1). tmin/tmax in degC.
    Negative values (Tmean < -17.8 degC) are set to 0; Tmax < Tmin is treated as a zero range.
    """
    tmin = np.asarray(tmin, dtype=float)
    tmax = np.asarray(tmax, dtype=float)
    ra = extraterrestrial_radiation(lat_deg, doy)
    tmean = (tmax + tmin) / 2
    et = 0.0023 * MJ_TO_MM * ra * (tmean + 17.8) * np.sqrt(np.maximum(tmax - tmin, 0.0))
    return np.maximum(et, 0.0)


def sat_vapour_pressure(t_c):
    """Saturation vapour pressure e0(T) (kPa), FAO-56 eq. 11; T in degC."""
    t_c = np.asarray(t_c, dtype=float)
    return 0.6108 * np.exp(17.27 * t_c / (t_c + 237.3))


def slope_vapour_pressure(t_c):
    """Slope of the saturation vapour pressure curve Delta (kPa/degC), FAO-56 eq. 13."""
    t_c = np.asarray(t_c, dtype=float)
    return 4098 * sat_vapour_pressure(t_c) / (t_c + 237.3) ** 2


def pressure_from_elevation(z_m):
    """Atmospheric pressure (kPa) at elevation z (m), FAO-56 eq. 7."""
    return 101.3 * ((293 - 0.0065 * np.asarray(z_m, dtype=float)) / 293) ** 5.26


def psychrometric_constant(p_kpa):
    """gamma (kPa/degC) = 0.665e-3 * P, FAO-56 eq. 8."""
    return 0.665e-3 * np.asarray(p_kpa, dtype=float)


def wind_2m(u_z, z_m=10.0):
    """Wind speed at 2 m (m/s) from speed at height z (m), FAO-56 eq. 47."""
    return np.asarray(u_z, dtype=float) * 4.87 / np.log(67.8 * z_m - 5.42)


def vapour_pressure_from_q(q, p_kpa):
    """Actual vapour pressure ea (kPa) from specific humidity q (kg/kg) and pressure (kPa)."""
    q = np.asarray(q, dtype=float)
    return q * np.asarray(p_kpa, dtype=float) / (0.622 + 0.378 * q)


def penman_monteith_fao56(t_mean, rn, u2, es, ea, p_kpa, g=0.0):
    """FAO-56 Penman-Monteith reference ET0 (mm/day), eq. 6.

    t_mean degC; rn net radiation and g soil heat flux (MJ m-2 day-1); u2 wind at 2 m (m/s);
    es, ea saturation and actual vapour pressure (kPa); p_kpa pressure (kPa). Clipped at 0.
    """
    t_mean = np.asarray(t_mean, dtype=float)
    delta = slope_vapour_pressure(t_mean)
    gamma = psychrometric_constant(p_kpa)
    num = 0.408 * delta * (rn - g) + gamma * 900 / (t_mean + 273) * u2 * (es - ea)
    den = delta + gamma * (1 + 0.34 * u2)
    return np.maximum(num / den, 0.0)


def pet_nldas(tmp_k, spfh, dswrf, dlwrf, ugrd, vgrd, p_kpa=101.3, albedo=0.23):
    """FAO-56 Penman-Monteith ET0 (mm/day) from daily-mean NLDAS-2 FORA variables.

    tmp_k: 2 m air temperature (K); spfh: 2 m specific humidity (kg/kg); dswrf, dlwrf: downward
    short/long-wave radiation (W/m2, daily means); ugrd, vgrd: 10 m wind components (m/s);
    p_kpa: surface pressure (kPa; the CONUSv4f1 sample has no pressure field, so the default is
    sea level, 101.3 kPa; pass :func:`pressure_from_elevation` where elevation is known).
    Differences from the FAO-56 daily recipe, forced by the inputs available:
    es = e0(Tmean) (no Tmin/Tmax); net long-wave = DLWRF - sigma*T^4 (the measured downward
    long-wave replaces FAO eq. 39); Rn = (1 - albedo) * DSWRF + net long-wave; G = 0 (daily).
    """
    t = np.asarray(tmp_k, dtype=float) - 273.15
    tk = t + 273.16
    rns = (1 - albedo) * np.asarray(dswrf, dtype=float) * W_M2_TO_MJ_DAY
    rnl = np.asarray(dlwrf, dtype=float) * W_M2_TO_MJ_DAY - SIGMA * tk ** 4
    rn = rns + rnl
    u2 = wind_2m(np.hypot(ugrd, vgrd), 10.0)
    ea = vapour_pressure_from_q(spfh, p_kpa)
    es = sat_vapour_pressure(t)
    return penman_monteith_fao56(t, rn, u2, es, np.minimum(ea, es), p_kpa)
