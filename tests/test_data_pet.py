"""PET and radiation against the FAO-56 worked examples (Allen et al. 1998) and hand calculations."""
import numpy as np
import pytest

from dplpaper.data import pet


def test_extraterrestrial_radiation_fao56_example8():
    # Example 8: 20 deg S, 3 September (J = 246): dr = 0.985, delta = 0.120 rad, ws = 1.527 rad, Ra = 32.2
    assert pet.extraterrestrial_radiation(-20.0, 246) == pytest.approx(32.2, abs=0.05)
    # northern mid-latitude winter is small, summer large (sanity on sign conventions)
    assert pet.extraterrestrial_radiation(45.0, 355) < 12 < 40 < pet.extraterrestrial_radiation(45.0, 172)


def test_fao56_helpers():
    assert pet.pressure_from_elevation(1800) == pytest.approx(81.8, abs=0.05)         # Example 2
    assert pet.psychrometric_constant(81.8) == pytest.approx(0.054, abs=5e-4)         # Example 2
    assert pet.sat_vapour_pressure(24.5) == pytest.approx(3.075, abs=1e-3)            # Example 3
    assert pet.sat_vapour_pressure(15.0) == pytest.approx(1.705, abs=1e-3)            # Example 3
    assert pet.slope_vapour_pressure(16.9) == pytest.approx(0.122, abs=1e-3)          # Example 18
    assert pet.wind_2m(3.2, 10.0) == pytest.approx(2.4, abs=0.01)                     # Example 14
    # specific humidity -> vapour pressure, by hand: q = 0.622 e / (p - 0.378 e)
    e, p = 1.409, 100.1
    q = 0.622 * e / (p - 0.378 * e)
    assert pet.vapour_pressure_from_q(q, p) == pytest.approx(e, rel=1e-12)


def test_penman_monteith_fao56_example18():
    # Brussels, 6 July: Tmean 16.9, es 1.997, ea 1.409, Rn 13.28, G 0, u2 2.078, z 100 m -> ET0 = 3.9 mm/day
    p = pet.pressure_from_elevation(100)
    assert p == pytest.approx(100.1, abs=0.05)
    et0 = pet.penman_monteith_fao56(16.9, 13.28, 2.078, 1.997, 1.409, p)
    assert et0 == pytest.approx(3.9, abs=0.05)


def test_hargreaves_hand_calculation():
    # Ra(20 S, J=246) = 32.2 (Example 8); Tmin 10, Tmax 25 -> 0.0023 * 0.408 * 32.2 * (17.5 + 17.8) * sqrt(15)
    hand = 0.0023 * 0.408 * 32.2 * 35.3 * np.sqrt(15.0)
    assert hand == pytest.approx(4.131, abs=1e-3)
    assert pet.hargreaves(10.0, 25.0, -20.0, 246) == pytest.approx(hand, rel=2e-3)
    assert pet.hargreaves(-40.0, -30.0, 60.0, 1) == 0.0          # Tmean < -17.8 -> clipped at 0
    assert pet.hargreaves(5.0, 4.0, 40.0, 100) == 0.0            # Tmax < Tmin -> zero range


def test_pet_nldas_consistent_with_core():
    t_k, q, sw, lw, u, v = 290.05, 0.0088, 250.0, 330.0, 2.0, 1.5
    p = 101.3
    t = t_k - 273.15
    rn = 0.77 * sw * 0.0864 + lw * 0.0864 - 4.903e-9 * (t + 273.16) ** 4
    u2 = np.hypot(u, v) * 4.87 / np.log(67.8 * 10 - 5.42)
    ea = q * p / (0.622 + 0.378 * q)
    hand = pet.penman_monteith_fao56(t, rn, u2, pet.sat_vapour_pressure(t), ea, p)
    assert pet.pet_nldas(t_k, q, sw, lw, u, v) == pytest.approx(hand, rel=1e-12)
    assert 2.0 < hand < 6.0
