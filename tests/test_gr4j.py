"""GR4J against a scalar, day-by-day reference written from Perrin et al. (2003)'s equations."""
import math

import numpy as np
import pytest
import torch

from dplpaper.models.gr4j import GR4J, GR4J_TABLE, unit_hydrographs


def _sh1(t, x4):
    return 0.0 if t <= 0 else (1.0 if t >= x4 else (t / x4) ** 2.5)


def _sh2(t, x4):
    if t <= 0:
        return 0.0
    if t <= x4:
        return 0.5 * (t / x4) ** 2.5
    if t < 2 * x4:
        return 1 - 0.5 * (2 - t / x4) ** 2.5
    return 1.0


def gr4j_scalar(P, E, x1, x2, x3, x4):
    n1, n2 = math.ceil(x4), math.ceil(2 * x4)
    uh1 = [_sh1(j, x4) - _sh1(j - 1, x4) for j in range(1, n1 + 1)]
    uh2 = [_sh2(j, x4) - _sh2(j - 1, x4) for j in range(1, n2 + 1)]
    S, R = 0.3 * x1, 0.5 * x3
    st1, st2 = [0.0] * n1, [0.0] * n2
    q = []
    for p, e in zip(P, E):
        if p >= e:
            pn, en = p - e, 0.0
        else:
            pn, en = 0.0, e - p
        ps = x1 * (1 - (S / x1) ** 2) * math.tanh(pn / x1) / (1 + S / x1 * math.tanh(pn / x1))
        es = S * (2 - S / x1) * math.tanh(en / x1) / (1 + (1 - S / x1) * math.tanh(en / x1))
        S = S - es + ps
        perc = S * (1 - (1 + (4 / 9 * S / x1) ** 4) ** -0.25)
        S -= perc
        pr = perc + pn - ps
        for k in range(n1 - 1):
            st1[k] = st1[k + 1] + uh1[k] * pr
        st1[n1 - 1] = uh1[n1 - 1] * pr
        for k in range(n2 - 1):
            st2[k] = st2[k + 1] + uh2[k] * pr
        st2[n2 - 1] = uh2[n2 - 1] * pr
        q9, q1 = 0.9 * st1[0], 0.1 * st2[0]
        f = x2 * (R / x3) ** 3.5
        R = max(0.0, R + q9 + f)
        qr = R * (1 - (1 + (R / x3) ** 4) ** -0.25)
        R -= qr
        q.append(qr + max(0.0, q1 + f))
    return np.array(q)


@pytest.mark.parametrize("unit", [(0.2, 0.5, 0.3, 0.1), (0.8, 0.1, 0.7, 0.9), (0.5, 0.9, 0.05, 0.5)])
def test_equals_scalar_reference(unit):
    rng = np.random.default_rng(2)
    T = 150
    P = rng.uniform(0, 20, T) * (rng.uniform(size=T) < 0.4)
    E = 1.5 + np.sin(np.arange(T) / 20.0)
    f = torch.tensor(np.stack([P, np.zeros(T), E], -1)[:, None, :])
    u = torch.tensor(unit, dtype=torch.float64).reshape(1, 4, 1)
    q = GR4J()(f, u)["streamflow"][:, 0].numpy()
    lo, hi = GR4J_TABLE.bounds()
    x = lo + np.array(unit) * (hi - lo)
    ref = gr4j_scalar(P, E, *x)
    np.testing.assert_allclose(q, ref, rtol=1e-10, atol=1e-10)


def test_unit_hydrographs_sum_to_one():
    x4 = torch.tensor([1.1, 1.7, 2.9], dtype=torch.float64)
    uh1, uh2 = unit_hydrographs(x4)
    assert torch.allclose(uh1.sum(1), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(uh2.sum(1), torch.ones(3, dtype=torch.float64))
    assert bool((uh1 >= 0).all()) and bool((uh2 >= 0).all())


def test_bad_input_named():
    m = GR4J()
    with pytest.raises(ValueError, match="forcing"):
        m(torch.ones(10, 2, 2), torch.rand(2, 4, 1))
    f = torch.ones(10, 2, 3)
    f[3, 1, 0] = -1
    with pytest.raises(ValueError, match="precip"):
        m(f, torch.rand(2, 4, 1))
