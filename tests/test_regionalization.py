"""Tests of the transfer-function regionalization baseline (dplpaper.calibrate.regionalization)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dplpaper.calibrate.regionalization import (BECK_ATTRIBUTE_NOTES, BECK_ATTRIBUTES_CAMELS, TransferFunctions,
                                                fit_regionalization)

TRUE_COEF = [[0.3, 1.0, -0.8, 0.0], [-0.5, 0.0, 0.7, 1.2]]  # [n_params, 1 + n_attr], standardised attributes


def synthetic(seed=0, n_train=80, n_test=40):
    rng = np.random.default_rng(seed)
    attrs = rng.normal(size=(n_train + n_test, 3)) * [1.0, 5.0, 0.2] + [0.0, 10.0, 1.0]  # raw units differ
    truth_tf = TransferFunctions(3, 2, coef=TRUE_COEF).set_standardization(attrs[:n_train])
    theta = truth_tf.predict(attrs)
    return attrs[:n_train], attrs[n_train:], theta[:n_train], theta[n_train:]


def test_recovers_parameters_on_unseen_sites():
    a_tr, a_te, th_tr, th_te = synthetic()
    tf = fit_regionalization(a_tr, lambda th: np.sum((th - th_tr) ** 2, axis=-1), n_params=2, seed=0,
                             max_evals=3000)
    pred = tf.predict(a_te)
    assert pred.shape == th_te.shape
    for k in range(2):
        assert np.corrcoef(pred[:, k], th_te[:, k])[0, 1] > 0.9
    assert np.abs(pred - th_te).max() < 0.02
    np.testing.assert_allclose(tf.coef, TRUE_COEF, atol=0.05)
    res = tf.fit_result
    assert res.best_cost[0] < 1e-4 and res.n_evals[0] <= 3000 + 3 * 7 * 17
    # the fitted functions beat the constant mid-range guess by far
    assert np.mean((pred - th_te) ** 2) < 0.01 * np.mean((0.5 - th_te) ** 2)


def test_batched_candidates_and_median_give_same_fit():
    a_tr, _, th_tr, _ = synthetic(seed=1, n_train=30)
    cost = lambda th: np.sum((th - th_tr) ** 2, axis=-1)  # works for [site, P] and [K, site, P]
    kw = dict(n_params=2, seed=3, max_evals=600)
    one = fit_regionalization(a_tr, cost, **kw)
    batched = fit_regionalization(a_tr, cost, candidates_batched=True, **kw)
    np.testing.assert_array_equal(one.coef, batched.coef)
    med = fit_regionalization(a_tr, cost, aggregate="median", **kw)
    assert med.fit_result.best_cost[0] <= np.median(cost(np.full_like(th_tr, 0.5)))


def test_fit_with_a_tiny_model():
    """Truth: a linear reservoir whose recession constant is a sigmoid-linear function of 2 attributes."""
    rng = np.random.default_rng(4)
    n_tr, n_te, T = 24, 12, 150
    attrs = rng.normal(size=(n_tr + n_te, 2))
    truth = TransferFunctions(2, 1, coef=[[-0.3, 1.2, -0.7]]).set_standardization(attrs[:n_tr])
    k_true = truth.predict(attrs)[:, 0]
    precip = np.where(rng.random((T, n_tr + n_te)) < 0.3, rng.gamma(1.0, 10.0, (T, n_tr + n_te)), 0.0)

    def reservoir(k_unit, p):  # k_unit [..., site] -> flow [time, ..., site]
        k = 0.02 + 0.5 * k_unit
        store = np.zeros_like(k)
        out = []
        for t in range(p.shape[0]):
            store = store + p[t]
            q = k * store
            store = store - q
            out.append(q)
        return np.stack(out)

    obs = reservoir(k_true[:n_tr], precip[:, :n_tr])

    def site_cost(theta):  # theta [K, site, 1] -> [K, site]: 1 - NSE
        sim = reservoir(theta[..., 0], precip[:, :n_tr])
        return np.sum((sim - obs[:, None]) ** 2, axis=0) / np.sum((obs - obs.mean(0)) ** 2, axis=0)

    tf = fit_regionalization(attrs[:n_tr], site_cost, n_params=1, seed=0, max_evals=1500, candidates_batched=True)
    pred = tf.predict(attrs[n_tr:])[:, 0]
    assert np.corrcoef(pred, k_true[n_tr:])[0, 1] > 0.95
    assert np.abs(pred - k_true[n_tr:]).max() < 0.05


def test_predict_is_bounded():
    tf = TransferFunctions(3, 4, coef=np.random.default_rng(0).normal(scale=50.0, size=(4, 4)),
                           low=[0.0, 0.1, 0.2, 0.0], high=[1.0, 0.9, 0.5, 0.3])
    attrs = np.random.default_rng(1).normal(scale=1e6, size=(200, 3))
    p = tf.predict(attrs)
    assert p.shape == (200, 4) and np.isfinite(p).all()
    assert (p >= tf.low).all() and (p <= tf.high).all() and (p >= 0).all() and (p <= 1).all()
    assert p[:, 0].min() < 1e-6 and p[:, 0].max() > 1 - 1e-6  # saturates at the bounds
    # zero coefficients: every site in the middle of its range
    np.testing.assert_allclose(TransferFunctions(3, 2).predict(attrs), 0.5)


def test_dict_round_trip():
    a_tr, a_te, _, _ = synthetic()
    tf = TransferFunctions(3, 2, coef=TRUE_COEF, low=[0.1, 0.0], high=[0.9, 1.0],
                           attribute_names=["x", "y", "z"], param_names=["A", "B"]).set_standardization(a_tr)
    d = json.loads(json.dumps(tf.to_dict()))
    back = TransferFunctions.from_dict(d)
    np.testing.assert_array_equal(back.predict(a_te), tf.predict(a_te))
    assert back.attribute_names == ["x", "y", "z"] and back.param_names == ["A", "B"]
    with pytest.raises(ValueError):
        TransferFunctions.from_dict({**d, "kind": "other"})


def test_bad_attributes_raise():
    tf = TransferFunctions(2, 1)
    bad = np.ones((4, 2))
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="attribute 1 of site 2"):
        tf.predict(bad)
    with pytest.raises(ValueError, match="shape"):
        tf.predict(np.ones((4, 3)))
    with pytest.raises(ValueError, match="NaN for training site"):
        fit_regionalization(np.random.default_rng(0).normal(size=(5, 2)),
                            lambda th: np.where(np.arange(5) == 3, np.nan, 0.0), n_params=1, max_evals=10)


def test_beck_attributes_exist_in_camels():
    assert len(BECK_ATTRIBUTES_CAMELS) == 8 and set(BECK_ATTRIBUTE_NOTES) == set(BECK_ATTRIBUTES_CAMELS)
    folder = Path("/work/shared/data/camels_us/camels_attributes_v2.0")
    if not folder.is_dir():
        pytest.skip("CAMELS attribute files not available")
    columns = set()
    for f in folder.glob("camels_*.txt"):
        columns |= set(f.read_text().splitlines()[0].split(";"))
    missing = [c for c in BECK_ATTRIBUTES_CAMELS if c not in columns]
    assert not missing, missing


# ---------------------------------------------------------------- gradient refinement
def _torch_sq_loss(target):
    import torch

    t = torch.as_tensor(target, dtype=torch.float64)
    return lambda theta: ((theta - t) ** 2).sum(-1)


def test_refine_recovers_the_coefficients_from_the_all_zero_start():
    from dplpaper.calibrate.regionalization import refine_regionalization

    a_tr, a_te, th_tr, th_te = synthetic(seed=2)
    tf = TransferFunctions(3, 2).set_standardization(a_tr)
    start = float(np.mean(np.sum((tf.predict(a_tr) - th_tr) ** 2, -1)))
    refine_regionalization(tf, a_tr, _torch_sq_loss(th_tr), steps=400, lr=0.05)
    curve = tf.refine_curve
    assert list(curve.columns) == ["step", "cost", "best_cost"] and len(curve) == 401
    assert curve["cost"].iloc[0] == pytest.approx(start)                   # step 0 is the start itself
    assert np.all(np.diff(curve["best_cost"]) <= 0)
    assert curve["best_cost"].iloc[-1] < 1e-4 * start
    np.testing.assert_allclose(tf.coef, TRUE_COEF, atol=0.05)
    assert np.abs(tf.predict(a_te) - th_te).max() < 0.02                  # unseen sites


def test_refine_never_worsens_the_start_and_keeps_the_box():
    from dplpaper.calibrate.regionalization import refine_regionalization

    a_tr, _, th_tr, _ = synthetic(seed=3, n_train=40)
    # the exact solution: refinement with a huge step must not leave it (best kept)
    exact = TransferFunctions(3, 2, coef=TRUE_COEF).set_standardization(a_tr)
    refine_regionalization(exact, a_tr, _torch_sq_loss(th_tr), steps=5, lr=5.0)
    np.testing.assert_allclose(exact.coef, TRUE_COEF, atol=1e-12)
    # a target outside what the box allows: slopes stay within coef_bound, intercepts within intercept_bound
    far = TransferFunctions(3, 2).set_standardization(a_tr)
    target = np.where(np.arange(len(a_tr))[:, None] % 2 == 0, 1.0, 0.0) * np.ones((1, 2))
    refine_regionalization(far, a_tr, _torch_sq_loss(target), steps=200, lr=0.5, coef_bound=0.1, intercept_bound=0.2)
    assert np.abs(far.coef[:, 1:]).max() <= 0.1 + 1e-12 and np.abs(far.coef[:, 0]).max() <= 0.2 + 1e-12


def test_refine_skips_non_finite_sites_and_rejects_bad_losses():
    import torch

    from dplpaper.calibrate.regionalization import refine_regionalization

    a_tr, _, th_tr, _ = synthetic(seed=4, n_train=30)
    base = _torch_sq_loss(th_tr)

    def with_nan(theta):
        c = base(theta)
        return torch.cat([c[:-1], torch.full_like(c[-1:], float("nan"))])

    tf = TransferFunctions(3, 2).set_standardization(a_tr)
    refine_regionalization(tf, a_tr, with_nan, steps=50, lr=0.05)
    assert np.isfinite(tf.refine_curve["cost"]).all()
    with pytest.raises(ValueError, match="shape"):
        refine_regionalization(TransferFunctions(3, 2).set_standardization(a_tr), a_tr, lambda th: base(th)[:-1], steps=2)
    with pytest.raises(ValueError, match="not finite for any"):
        refine_regionalization(TransferFunctions(3, 2).set_standardization(a_tr), a_tr,
                               lambda th: base(th) * float("nan"), steps=2)
    with pytest.raises(ValueError, match="steps"):
        refine_regionalization(TransferFunctions(3, 2).set_standardization(a_tr), a_tr, base, steps=0)


def test_refine_to_convergence_extends_only_an_unconverged_curve():
    from dplpaper.calibrate.regionalization import refine_regionalization
    from dplpaper.calibrate.sceua import budget_convergence

    a_tr, _, th_tr, _ = synthetic(seed=2)
    loss = _torch_sq_loss(th_tr)
    # 10 steps from zero are far from converged (the cost still falls fast): max_steps extends the run
    short = refine_regionalization(TransferFunctions(3, 2).set_standardization(a_tr), a_tr, loss, steps=10, lr=0.05)
    assert not budget_convergence(short.refine_curve, cost="best_cost", x="step", tol=1e-3)["converged"]
    long = refine_regionalization(TransferFunctions(3, 2).set_standardization(a_tr), a_tr, loss, steps=10, lr=0.05,
                                  max_steps=400, tol=1e-3)
    curve = long.refine_curve
    assert 10 < curve["step"].iloc[-1] < 400 and (curve["step"].iloc[-1] - 10) % 5 == 0   # half-budget increments
    assert budget_convergence(curve, cost="best_cost", x="step", tol=1e-3)["converged"]
    # not converged one increment earlier: it stopped at the first flat check
    assert not budget_convergence(curve[curve["step"] <= curve["step"].iloc[-1] - 5], cost="best_cost", x="step",
                                  tol=1e-3)["converged"]
    # the first 10 steps are those of the run without max_steps (the optimizer's state carries on)
    np.testing.assert_array_equal(curve["cost"].iloc[:11].to_numpy(), short.refine_curve["cost"].to_numpy())
    # a budget that ends at max_steps stops there, converged or not
    capped = refine_regionalization(TransferFunctions(3, 2).set_standardization(a_tr), a_tr, loss, steps=10, lr=0.05,
                                    max_steps=17, tol=0.0)
    assert capped.refine_curve["step"].iloc[-1] == 17
    # an already flat curve is not extended
    exact = TransferFunctions(3, 2, coef=TRUE_COEF).set_standardization(a_tr)
    refine_regionalization(exact, a_tr, loss, steps=10, lr=1e-6, max_steps=1000)
    assert exact.refine_curve["step"].iloc[-1] == 10
    with pytest.raises(ValueError, match="max_steps"):
        refine_regionalization(TransferFunctions(3, 2).set_standardization(a_tr), a_tr, loss, steps=40, max_steps=10)
