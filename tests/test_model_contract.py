"""The contract every registered differentiable process model keeps (parametrized over the
registry: a new model file is picked up here without editing this test).

Shapes and units of the outputs, unit-cube parameters (outside: a clear error), time-varying
parameters equal to static ones when constant, finite non-zero gradients, the water balance where
the model declares its stores (``water_balance_residual``), and that it runs through both
paradigms: gA (one network for all sites, trained by gradient descent) and per-site SCE-UA.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dplpaper.calibrate.sceua import sceua
from dplpaper.models.registry import get_model, model_names
from dplpaper.nets import GA, DPLModel
from dplpaper.train import TrainConfig, TrainingData, train_dpl

NAMES = model_names()


def _forcing(T=200, S=4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    day = torch.arange(T, dtype=dtype)[:, None]
    P = torch.rand(T, S, generator=g, dtype=dtype) * 15 * (torch.rand(T, S, generator=g, dtype=dtype) < 0.35)
    Tm = 12 * torch.sin(2 * torch.pi * day / 365) + 6 + 2 * torch.randn(T, S, generator=g, dtype=dtype)
    E = torch.clamp(2 + 1.5 * torch.sin(2 * torch.pi * day / 365), min=0.1).expand(T, S).clone()
    return torch.stack([P, Tm, E], -1)


def _params(m, S=4, seed=1, dtype=torch.float64, lo=0.05, hi=0.95):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(S, m.n_params, m.nmul, generator=g, dtype=dtype)


def test_registry_has_models():
    assert {"hbv", "gr4j"} <= set(NAMES)
    with pytest.raises(KeyError, match="registered"):
        get_model("no-such-model")


@pytest.mark.parametrize("name", NAMES)
def test_outputs_shapes_units_and_ranges(name):
    m = get_model(name)
    assert m.n_params == len(m.parameter_table) and all(s.units for s in m.parameter_table)
    f, p = _forcing(), _params(get_model(name))
    q = m(f, p, warmup=30)["streamflow"]
    assert q.shape == (170, 4) and bool(torch.isfinite(q).all()) and bool((q >= 0).all())
    bad = p.clone()
    bad[0, 0, 0] = 1.5
    with pytest.raises(ValueError):
        m(f, bad)


@pytest.mark.parametrize("name", NAMES)
def test_constant_time_varying_parameters_equal_static(name):
    m = get_model(name)
    f, p = _forcing(T=80), _params(m)
    q1 = m(f, p, warmup=10)["streamflow"]
    q2 = m(f, p.unsqueeze(0).expand(80, -1, -1, -1), warmup=10)["streamflow"]
    assert torch.allclose(q1, q2, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_finite_and_informative(name):
    m = get_model(name)
    f, p = _forcing(T=120), _params(m).requires_grad_()
    m(f, p, warmup=20)["streamflow"].sum().backward()
    assert bool(torch.isfinite(p.grad).all()) and float(p.grad.abs().sum()) > 0


@pytest.mark.parametrize("name", NAMES)
def test_water_balance_closes(name):
    m = get_model(name)
    if not hasattr(m, "water_balance_residual"):
        pytest.skip(f"{name} declares no stores")
    if name == "hbv":
        m = get_model(name, backend="torch")
    res = m.water_balance_residual(_forcing(T=300), _params(m))
    assert float(res.abs().max()) < 1e-8


@pytest.mark.parametrize("name", NAMES)
def test_runs_through_ga_and_sceua(name):
    """Synthetic truth from the model itself; gA training lowers the domain-wide loss, and SCE-UA
    per site brings every site's cost well below that of a random parameter set."""
    torch.manual_seed(0)
    S, T, W = 6, 220, 40
    m = get_model(name)
    f = _forcing(T=T, S=S, seed=3).float()
    truth = _params(m, S=S, seed=5).float()
    with torch.no_grad():
        obs = m(f, truth)["streamflow"]
    attrs = torch.randn(S, 3)
    data = TrainingData(forcing=f, target=obs, attributes=attrs)
    model = DPLModel(GA(3, m.n_params, m.nmul, hidden=16, n_layers=1), m)
    cfg = TrainConfig(epochs=6, batch_sites=S, window_days=100, warmup_days=W, loss="rmse", lr=0.03, seed=0,
                      progress=False, eval_every=1)
    res = train_dpl(model, data, cfg)
    loss = res.history["train_loss"].dropna().values
    assert loss[-1] < loss[0]

    f64, obs64 = f.double(), obs.double().numpy()

    def cost(u: np.ndarray) -> np.ndarray:   # [site, K, n] -> [site, K]: 1 - NSE per candidate
        Sg, K, n = u.shape
        fk = f64.repeat_interleave(K, dim=1)
        pk = torch.as_tensor(u.reshape(Sg * K, n, 1) if m.nmul == 1 else
                             np.repeat(u.reshape(Sg * K, n, 1), m.nmul, axis=2))
        with torch.no_grad():
            q = m(fk, pk, warmup=W)["streamflow"].numpy().reshape(T - W, Sg, K)
        o = obs64[W:, :, None]
        return (((q - o) ** 2).sum(0) / ((o - o.mean(0)) ** 2).sum(0))

    r = sceua(cost, m.n_params, n_sites=S, n_complexes=2, max_evals=160, seed=0, progress=False,
              keep_param_history=False)
    rand = cost(np.random.default_rng(0).uniform(size=(S, 1, m.n_params)))[:, 0]
    assert np.all(r.best_cost <= rand + 1e-12) and np.median(r.best_cost) < 0.5 * np.median(rand)
