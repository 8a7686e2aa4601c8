"""Tests of dplpaper.train: twin experiments (gA, gZ), epochs, checkpoints/resume, DDP."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from _ddp_worker import Bucket, make_twin
from dplpaper import metrics as M
from dplpaper.nets import GA, GZ, DPLModel
from dplpaper.train import TrainConfig, TrainingData, predict, predict_parameters, train_dpl

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _cfg(**kw):
    base = dict(epochs=8, batch_sites=16, window_days=60, warmup_days=30, lr=0.01, seed=0, progress=False)
    base.update(kw)
    return TrainConfig(**base)


def _corr(a, b):
    return float(np.corrcoef(np.asarray(a), np.asarray(b))[0, 1])


def test_twin_ga_recovers_parameters():
    data, u_true = make_twin(n_sites=64, n_time=400, seed=0)
    torch.manual_seed(0)
    model = DPLModel(GA(4, 2, hidden=32), Bucket())
    u0 = predict_parameters(model, data)
    evals = []

    def eval_fn(m):
        evals.append(m.training)
        sim = predict(m, data)["streamflow"]
        return {"median_nse": float(np.nanmedian(M.nse(sim.numpy(), data.target.numpy())))}

    res = train_dpl(model, data, _cfg(), eval_fn=eval_fn)
    h = res.history
    # row 0 is the evaluation before training, then one row per epoch
    assert list(h["loop"]) == list(range(9))
    assert res.iterations_per_epoch == round(64 * 370 / (16 * 60))        # 25
    np.testing.assert_allclose(np.diff(h["epoch"]), 25 * 16 * 60 / (64 * 370))
    assert h["wall_time_s"].is_monotonic_increasing
    assert evals == [False] * 9                                              # eval mode
    assert h["train_loss"].iloc[-1] < 0.3 * h["train_loss"].iloc[1]
    assert h["median_nse"].iloc[-1] > 0.95 > h["median_nse"].iloc[0]
    u = predict_parameters(model, data)
    for j in range(2):
        assert _corr(u[:, j, 0], u_true[:, j, 0]) > 0.95
        assert abs(_corr(u[:, j, 0], u_true[torch.randperm(64), j, 0])) < 0.5   # chance level
    assert not torch.allclose(u, u0)


def test_twin_gz_recovers_parameters():
    data, u_true = make_twin(n_sites=64, n_time=400, seed=0, gap=0.2, with_series=True)
    assert torch.isnan(data.series[..., 1]).any()
    data.series[:, 5, 1] = float("nan")                                     # a site with no obs at all
    torch.manual_seed(0)
    model = DPLModel(GZ(2, 4, 2, hidden=16, masked_series=[1]), Bucket())
    res = train_dpl(model, data, _cfg(loss="nse"))
    assert res.history["train_loss"].iloc[-1] < 0.3 * res.history["train_loss"].iloc[0]
    u = predict_parameters(model, data)
    assert torch.isfinite(u).all()
    for j in range(2):
        assert _corr(u[:, j, 0], u_true[:, j, 0]) > 0.9


@pytest.mark.parametrize("loss,kw", [("kge", {}), ("rmse_logflow", {}), ("nse", {"variant": "nse_star"}),
                                     ("rmse", {"reduction": "site"})])
def test_other_losses_and_adadelta_decrease(loss, kw):
    data, _ = make_twin(n_sites=32, n_time=200, seed=2)
    torch.manual_seed(0)
    model = DPLModel(GA(4, 2, hidden=16), Bucket())
    res = train_dpl(model, data, _cfg(epochs=3, loss=loss, loss_kwargs=kw, optimizer="adadelta", lr=1.0))
    tl = res.history["train_loss"]
    assert np.isfinite(tl).all() and tl.iloc[-1] < tl.iloc[0]


def _train_weights(data, tmp, epochs=4, kill_at=None, resume=False, init_seed=0):
    torch.manual_seed(init_seed)
    model = DPLModel(GA(4, 2, hidden=16, dropout=0.2), Bucket())   # dropout: torch RNG matters too

    def eval_fn(m):
        if kill_at is not None and len(calls) + 1 == kill_at:
            raise KeyboardInterrupt("simulated kill")
        calls.append(1)
        return {"x": float(predict(m, data)["streamflow"].mean())}

    calls = []
    cfg = _cfg(epochs=epochs, batch_sites=8, window_days=30, warmup_days=10, checkpoint_dir=str(tmp))
    return model, train_dpl(model, data, cfg, eval_fn=eval_fn, resume=resume)


def test_resume_is_bit_for_bit(tmp_path):
    data, _ = make_twin(n_sites=16, n_time=100, seed=4)
    straight, res_a = _train_weights(data, tmp_path / "a")
    # second run is "killed" during the evaluation after epoch 3 (eval 0 is before training):
    # its last checkpoint is epoch 2
    with pytest.raises(KeyboardInterrupt):
        _train_weights(data, tmp_path / "b", kill_at=4)
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=False)["epoch"] == 2
    resumed, res_b = _train_weights(data, tmp_path / "b", resume=True, init_seed=123)
    for (k, va), (_, vb) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(va, vb), k
    cols = ["loop", "epoch", "iteration", "train_loss", "x"]
    assert res_a.history[cols].equals(res_b.history[cols])
    # without resume the same call starts over: different result from a different init
    fresh, _ = _train_weights(data, tmp_path / "c", epochs=2, init_seed=123)
    assert not torch.equal(fresh.net.head.weight, resumed.net.head.weight)


def test_predict_chunks_and_errors():
    data, _ = make_twin(n_sites=10, n_time=50, seed=5)
    torch.manual_seed(0)
    model = DPLModel(GA(4, 2, hidden=8), Bucket())
    a = predict(model, data, warmup_days=5, chunk_sites=3)["streamflow"]
    b = predict(model, data, warmup_days=5, chunk_sites=100)["streamflow"]
    assert a.shape == (45, 10)
    torch.testing.assert_close(a, b)            # chunking changes only BLAS batch sizes
    with torch.no_grad():
        c = model(data.forcing, data.attributes, warmup=5)["streamflow"]
    torch.testing.assert_close(a, c)
    with pytest.raises(ValueError, match="fewer than warmup_days"):
        train_dpl(model, data, _cfg(window_days=40, warmup_days=20))
    with pytest.raises(ValueError, match="optimizer"):
        _cfg(optimizer="sgd")
    with pytest.raises(ValueError, match="unknown loss"):
        _cfg(loss="mae")
    f = data.forcing.clone()
    f[3, 7, 0] = float("nan")
    with pytest.raises(ValueError, match="forcing.*site 7"):
        TrainingData(f, data.attributes, data.target)
    with pytest.raises(ValueError, match="target"):
        TrainingData(data.forcing, data.attributes, data.target[:-1])


def test_nan_loss_raises():
    class Broken(Bucket):
        def forward(self, forcing, params, warmup=0):
            out = super().forward(forcing, params, warmup)
            return {"streamflow": out["streamflow"] * float("nan")}

    data, _ = make_twin(n_sites=8, n_time=60, seed=6)
    torch.manual_seed(0)
    with pytest.raises(FloatingPointError, match="simulated NaN streamflow at epoch 1, iteration 0"):
        train_dpl(DPLModel(GA(4, 2, hidden=8), Broken()), data, _cfg(window_days=20, warmup_days=5))

    class InfGrad(Bucket):
        def forward(self, forcing, params, warmup=0):
            out = super().forward(forcing, params, warmup)
            return {"streamflow": out["streamflow"] + 0.0 * torch.sqrt(params.sum() - params.sum())}

    with pytest.raises(FloatingPointError, match="non-finite gradient"):
        train_dpl(DPLModel(GA(4, 2, hidden=8), InfGrad()), data, _cfg(window_days=20, warmup_days=5))


def test_torchrun_two_processes(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        [str(HERE.parent), str(HERE), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(HERE / "_ddp_worker.py"), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=False)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=False)
    assert r0["world"] == r1["world"] == 2
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    assert r0["loss"] != r1["loss"]                      # ranks saw different sites
    assert (tmp_path / "ckpt" / "last.pt").exists() and (tmp_path / "ckpt" / "rng_rank1.pt").exists()
    # epoch accounting uses the global batch (2 ranks x 4 sites)
    assert r0["iters"] == round(16 * 110 / (8 * 40))
