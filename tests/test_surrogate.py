"""Tests of the LSTM surrogate of the VIC-style model (dplpaper.models.surrogate)."""
import numpy as np
import pytest
import torch

from dplpaper.models.surrogate import (LSTMSurrogate, evaluate_surrogate, latin_hypercube, load_surrogate,
                                       make_surrogate_training_set, train_surrogate)
from dplpaper.models.vicwb import PARAMETER_TABLE, VICStyleModel

N_T, N_S = 400, 4


def forcing(n_t=N_T, n_s=N_S, seed=0):
    """Seasonal temperature / PET and intermittent gamma rain, ``[time, site, 3]``."""
    rng = np.random.default_rng(seed)
    doy = np.arange(n_t)
    temp = (10 - 12 * np.cos(2 * np.pi * doy / 365))[:, None] + rng.normal(0, 3, (n_t, n_s)) + rng.uniform(-3, 8, n_s)
    wet = rng.random((n_t, n_s)) < rng.uniform(0.2, 0.45, n_s)
    prcp = np.where(wet, rng.gamma(0.7, 12, (n_t, n_s)), 0.0)
    pet = np.clip(3 - 2.5 * np.cos(2 * np.pi * doy / 365), 0.1, None)[:, None] * rng.uniform(0.7, 1.4, n_s)
    return np.stack([prcp, temp, pet], axis=-1)


ATTRS = {"sand": np.array([20.0, 40, 60, 80]), "clay": np.array([30.0, 20, 10, 5])}
SETTINGS = dict(hidden=32, epochs=30, batch=32, seq_len=200, warmup=60, lr=1e-2, seed=0, progress=False)


@pytest.fixture(scope="module")
def trained():
    f = forcing()
    ds = make_surrogate_training_set(VICStyleModel(), f, ATTRS, n_param_sets=16, seed=0)
    return f, ds, train_surrogate(ds, **SETTINGS)


def test_latin_hypercube():
    x = latin_hypercube(10, 5, seed=3)
    assert x.shape == (10, 5) and np.all((x >= 0) & (x < 1))
    for j in range(5):                                  # one point per stratum in every dimension
        assert sorted(np.floor(x[:, j] * 10).astype(int)) == list(range(10))
    np.testing.assert_array_equal(x, latin_hypercube(10, 5, seed=3))
    assert not np.array_equal(x, latin_hypercube(10, 5, seed=4))


def test_training_set_layout(trained):
    f, ds, _ = trained
    assert ds["params"].shape == (16, 5)
    assert ds["attributes"].shape == (N_S, 2) and ds["attribute_names"] == ["sand", "clay"]
    sm = ds["outputs"]["soil_moisture"]
    assert sm.shape == (16, N_T, N_S)
    # column (set k, site s) equals a direct run of the legacy model with the texture soil
    k, s = 5, 2
    direct = VICStyleModel().run(f[:, s:s + 1], ds["params"][k][None],
                                 soil_properties={"sand": ATTRS["sand"][s:s + 1], "clay": ATTRS["clay"][s:s + 1]})
    np.testing.assert_array_equal(sm[k, :, s], direct["soil_moisture"][:, 0])


def test_surrogate_learns_heldout_parameter_sets(trained):
    f, ds, sur = trained
    test_params = latin_hypercube(8, 5, seed=123)                     # parameter sets never seen
    res = evaluate_surrogate(sur, VICStyleModel(), f, ATTRS, np.broadcast_to(test_params[:, None], (8, N_S, 5)),
                             warmup=60)
    assert res["soil_moisture"]["median_corr"] > 0.85, res["soil_moisture"]["median_corr"]
    assert res["et"]["median_corr"] > 0.9, res["et"]["median_corr"]
    assert res["soil_moisture"]["median_rmse"] < 0.03                  # m3/m3
    # an untrained network of the same size is far worse (the test can fail)
    raw = train_surrogate(ds, **{**SETTINGS, "epochs": 1}, iters_per_epoch=1)
    res0 = evaluate_surrogate(raw, VICStyleModel(), f, ATTRS, np.broadcast_to(test_params[:, None], (8, N_S, 5)),
                              warmup=60)
    assert res0["soil_moisture"]["median_corr"] < res["soil_moisture"]["median_corr"] - 0.2


def test_gradients_reach_params_not_weights(trained):
    f, _, sur = trained
    assert all(not p.requires_grad for p in sur.parameters())
    params = torch.full((N_S, 5, 1), 0.5, requires_grad=True)
    out = sur(torch.as_tensor(f, dtype=torch.float32), params, warmup=60,
              attributes=torch.as_tensor(np.stack([ATTRS["sand"], ATTRS["clay"]], 1)))
    assert set(out) == {"soil_moisture", "et"} and out["soil_moisture"].shape == (N_T - 60, N_S)
    out["soil_moisture"].mean().backward()
    g = params.grad[:, :, 0]
    assert torch.all(torch.isfinite(g)) and torch.all(g.abs().sum(1) > 0)
    # the learned sensitivity has the legacy model's sign: larger EXPT -> wetter top layer
    assert torch.all(g[:, PARAMETER_TABLE.index("EXPT")] > 0)
    assert all(p.grad is None for p in sur.parameters())


def test_forward_checks(trained):
    f, _, sur = trained
    ft = torch.as_tensor(f, dtype=torch.float32)
    a = torch.as_tensor(np.stack([ATTRS["sand"], ATTRS["clay"]], 1))
    with pytest.raises(ValueError, match="attributes"):
        sur(ft, torch.full((N_S, 5, 1), 0.5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sur(ft, torch.full((N_S, 5, 1), 1.5), attributes=a)
    bad = ft.clone(); bad[7, 1, 0] = float("nan")
    with pytest.raises(ValueError, match="precip.*time index 7, site index 1"):
        sur(bad, torch.full((N_S, 5, 1), 0.5), attributes=a)
    # [site, n_params] and [site, n_params, 1] agree
    o1 = sur(ft, torch.full((N_S, 5), 0.3), attributes=a)
    o2 = sur(ft, torch.full((N_S, 5, 1), 0.3), attributes=a)
    assert torch.equal(o1["et"], o2["et"])


def test_save_load_roundtrip(trained, tmp_path):
    f, _, sur = trained
    path = tmp_path / "sur.pt"
    sur.save(path)
    back = load_surrogate(path)
    for k, v in sur.state_dict().items():
        assert torch.equal(v, back.state_dict()[k]), k
    assert back.parameter_table.names == PARAMETER_TABLE.names and back.outputs == sur.outputs
    p = torch.as_tensor(latin_hypercube(N_S, 5, 9), dtype=torch.float32)
    a = torch.as_tensor(np.stack([ATTRS["sand"], ATTRS["clay"]], 1))
    ft = torch.as_tensor(f, dtype=torch.float32)
    o1, o2 = sur(ft, p, attributes=a), back(ft, p, attributes=a)
    assert all(torch.equal(o1[k], o2[k]) for k in o1)
    assert not any(q.requires_grad for q in back.parameters())
    torch.load(path, weights_only=True)           # safe to read without pickled code


def test_training_is_reproducible(trained, tmp_path):
    _, ds, _ = trained
    kw = {**SETTINGS, "epochs": 2}
    a = train_surrogate(ds, **kw, iters_per_epoch=4, checkpoint=tmp_path / "ck.pt")
    b = train_surrogate(ds, **kw, iters_per_epoch=4)
    c = train_surrogate(ds, **{**kw, "seed": 1}, iters_per_epoch=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    ck = load_surrogate(tmp_path / "ck.pt")
    assert all(torch.equal(sa[k], ck.state_dict()[k]) for k in sa)
    assert a.training_info["epochs_done"] == 2 and len(a.training_info["losses"]) == 2


def test_training_set_spinup_and_sets_per_run():
    f = forcing(n_t=120)
    whole = make_surrogate_training_set(VICStyleModel(), f, ATTRS, n_param_sets=5, seed=3, outputs=("runoff", "et"))
    split = make_surrogate_training_set(VICStyleModel(), f, ATTRS, n_param_sets=5, seed=3, outputs=("runoff", "et"),
                                        spinup=30, sets_per_run=2)
    np.testing.assert_array_equal(split["params"], whole["params"])
    np.testing.assert_array_equal(split["forcing"], f[30:])
    for o in ("runoff", "et"):
        assert split["outputs"][o].shape == (5, 90, N_S)
        np.testing.assert_array_equal(split["outputs"][o], whole["outputs"][o][:, 30:])
    with pytest.raises(ValueError, match="spinup"):
        make_surrogate_training_set(VICStyleModel(), f, ATTRS, n_param_sets=2, spinup=120)
