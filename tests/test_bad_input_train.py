"""Bad input to the trainer (issue 12, item 3-4): unfittable targets and resume mismatches
must raise errors naming the site(s), the setting that changed, or the checkpoint file."""
import pytest
import torch

from _ddp_worker import Bucket, make_twin
from dplpaper.nets import GA, DPLModel
from dplpaper.train import CheckpointError, TrainConfig, TrainingData, train_dpl


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _cfg(**kw):
    base = dict(epochs=1, batch_sites=4, window_days=20, warmup_days=5, lr=0.01, seed=0, progress=False)
    base.update(kw)
    return TrainConfig(**base)


def _model(seed=0):
    torch.manual_seed(seed)
    return DPLModel(GA(4, 2, hidden=8), Bucket())


def _data(target=None, ids=True):
    data, _ = make_twin(n_sites=8, n_time=60, seed=6)
    y = data.target if target is None else target(data.target.clone())
    return TrainingData(data.forcing, data.attributes, y, site_ids=[f"b{i}" for i in range(8)] if ids else None)


# ----------------------------------------------------------------------------- targets (item 3)
def test_all_nan_target():
    with pytest.raises(ValueError, match=r"target \(streamflow\) has no finite value \(8 sites, 60 days\)"):
        train_dpl(_model(), _data(lambda y: torch.full_like(y, float("nan"))), _cfg())


def _const(y):
    y[:, 3] = 1.5
    return y


@pytest.mark.parametrize("loss,kw", [("kge", {}), ("nse", {})])
def test_constant_observations_with_variance_losses(loss, kw):
    with pytest.raises(ValueError, match=r"constant observations \(zero variance\) at sites \['b3'\] \(1 in all\): "
                                         rf"loss '{loss}' divides"):
        train_dpl(_model(), _data(_const), _cfg(loss=loss, loss_kwargs=kw))


def test_constant_observations_fine_where_the_loss_allows_them():
    for loss, kw in (("rmse", {}), ("nse", {"variant": "nse_star"})):
        res = train_dpl(_model(), _data(_const), _cfg(loss=loss, loss_kwargs=kw))
        assert res.epochs_done == 1


def test_all_zero_site_under_kge():
    def zero(y):
        y[:, 0] = 0.0
        return y
    with pytest.raises(ValueError, match=r"sites \[0\]"):
        train_dpl(_model(), _data(zero, ids=False), _cfg(loss="kge"))


@pytest.mark.parametrize("marker", [-999.0, -9999.0])
def test_missing_marker_in_target(marker):
    def put(y):
        y[7, 2] = marker
        y[9, 5] = marker
        return y
    with pytest.raises(ValueError, match=rf"value {marker:g} at site b2 \(day index 7\) is a missing-value marker.*"
                                         r"2 values at sites \['b2', 'b5'\]"):
        train_dpl(_model(), _data(put), _cfg())


def test_inf_in_target():
    def put(y):
        y[4, 6] = float("inf")
        return y
    with pytest.raises(ValueError, match=r"non-finite value inf at site b6 \(day index 4\)"):
        train_dpl(_model(), _data(put), _cfg())


def test_site_without_observations_warns():
    def empty(y):
        y[:, 1] = float("nan")
        return y
    with pytest.warns(RuntimeWarning, match=r"sites \['b1'\] \(1 in all\) have no observation"):
        train_dpl(_model(), _data(empty), _cfg())


# ----------------------------------------------------------------------------- resume (item 4)
def _first_run(tmp_path, **kw):
    train_dpl(_model(), _data(), _cfg(checkpoint_dir=str(tmp_path), **kw))
    return tmp_path / "last.pt"


@pytest.mark.parametrize("change,pattern", [
    (dict(lr=0.02), r"lr 0.01 -> 0.02"),
    (dict(batch_sites=2), r"batch_sites 4 -> 2"),
    (dict(window_days=25), r"window_days 20 -> 25"),
    (dict(loss="kge"), r"loss 'rmse' -> 'kge'"),
    (dict(optimizer="adadelta"), r"optimizer 'adam' -> 'adadelta'"),
])
def test_resume_with_changed_settings(tmp_path, change, pattern):
    ckpt = _first_run(tmp_path)
    with pytest.raises(CheckpointError, match=rf"cannot resume from {ckpt}: .*{pattern}"):
        train_dpl(_model(), _data(), _cfg(checkpoint_dir=str(tmp_path), epochs=2, **change), resume=True)


def test_resume_with_changed_data(tmp_path):
    ckpt = _first_run(tmp_path)

    def other(y):
        y[10, 0] += 1.0
        return y
    with pytest.raises(CheckpointError, match=rf"{ckpt}.*data.target values differ \(same shape\)"):
        train_dpl(_model(), _data(other), _cfg(checkpoint_dir=str(tmp_path), epochs=2), resume=True)
    d = _data()
    fewer = TrainingData(d.forcing[:, :6], d.attributes[:6], d.target[:, :6])
    with pytest.raises(CheckpointError, match=r"data.forcing shape \[60, 8, 3\] -> \[60, 6, 3\]"):
        train_dpl(_model(), fewer, _cfg(checkpoint_dir=str(tmp_path), epochs=2, batch_sites=4), resume=True)


def test_resume_epochs_may_grow_not_shrink(tmp_path):
    _first_run(tmp_path, epochs=2)
    res = train_dpl(_model(), _data(), _cfg(checkpoint_dir=str(tmp_path), epochs=3, eval_every=5), resume=True)
    assert res.epochs_done == 3 and list(res.history["loop"]) == [1, 2, 3]
    with pytest.raises(CheckpointError, match=r"3 epochs done, more than TrainConfig.epochs = 1"):
        train_dpl(_model(), _data(), _cfg(checkpoint_dir=str(tmp_path), epochs=1), resume=True)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "not_a_checkpoint"])
def test_unreadable_checkpoint_names_its_path(tmp_path, damage):
    ckpt = _first_run(tmp_path)
    raw = ckpt.read_bytes()
    if damage == "truncate":
        ckpt.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        ckpt.write_bytes(b"this is not a checkpoint\n" * 10)
    elif damage == "empty":
        ckpt.write_bytes(b"")
    else:
        torch.save({"weights": 1}, ckpt)
    with pytest.raises(CheckpointError, match=rf"checkpoint {ckpt}"):
        train_dpl(_model(), _data(), _cfg(checkpoint_dir=str(tmp_path), epochs=2), resume=True)


def test_checkpoint_of_another_model(tmp_path):
    _first_run(tmp_path)
    torch.manual_seed(0)
    other = DPLModel(GA(4, 2, hidden=12), Bucket())
    with pytest.raises(CheckpointError, match=r"last.pt does not fit this model/optimizer"):
        train_dpl(other, _data(), _cfg(checkpoint_dir=str(tmp_path), epochs=2), resume=True)
