"""Tests of dplpaper.nets: gA, gZ (masks), DPLModel, Normalizer."""
import json

import numpy as np
import pytest
import torch

from _ddp_worker import Bucket  # the test-only linear reservoir shared with test_train
from dplpaper.nets import GA, GZ, DPLModel, Normalizer


def _series(n_t=30, n_s=4, n_ser=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n_t, n_s, n_ser, generator=g), torch.randn(n_s, 5, generator=g)


def test_ga_shapes_range_and_seed():
    torch.manual_seed(0)
    net = GA(5, 3, nmul=4, hidden=16, n_layers=3, dropout=0.1)
    x = torch.randn(7, 5)
    out = net(x)
    assert out.shape == (7, 3, 4)
    assert (out > 0).all() and (out < 1).all()
    torch.manual_seed(0)
    net2 = GA(5, 3, nmul=4, hidden=16, n_layers=3, dropout=0.1)
    net.eval(), net2.eval()
    assert torch.equal(net(x), net2(x))
    torch.manual_seed(1)
    net3 = GA(5, 3, nmul=4, hidden=16, n_layers=3).eval()
    assert not torch.equal(net(x), net3(x))
    x[2, 1] = float("nan")
    with pytest.raises(ValueError, match="site index 2"):
        net(x)
    with pytest.raises(ValueError, match="attributes"):
        net(torch.randn(7, 4))


@pytest.mark.parametrize("readout", ["last", "mean"])
def test_gz_static_shapes(readout):
    torch.manual_seed(0)
    net = GZ(3, 5, n_params=2, nmul=3, hidden=8, n_layers=2, readout=readout)
    ser, att = _series()
    out = net(ser, att)
    assert out.shape == (4, 2, 3)
    assert (out > 0).all() and (out < 1).all()


def test_gz_dynamic_shape_and_readouts_differ():
    torch.manual_seed(0)
    dyn = GZ(3, 5, n_params=2, hidden=8, dynamic=True)
    ser, att = _series()
    out = dyn(ser, att)
    assert out.shape == (30, 4, 2, 1)
    assert (out > 0).all() and (out < 1).all()
    torch.manual_seed(0)
    last = GZ(3, 5, n_params=2, hidden=8)
    torch.manual_seed(0)
    mean = GZ(3, 5, n_params=2, hidden=8, readout="mean")
    assert torch.allclose(last(ser, att), out[-1])          # same weights: last read-out = last step
    assert not torch.allclose(last(ser, att), mean(ser, att))


def test_gz_masks():
    torch.manual_seed(0)
    net = GZ(3, 5, n_params=2, hidden=8, masked_series=[2])    # channel 2 = observations
    ser, att = _series()
    full = net(ser, att)
    # complete obs: an explicit all-ones mask changes nothing
    assert torch.equal(full, net(ser, att, mask=torch.ones(30, 4, 1)))
    # gaps: NaN input == zeros with mask 0 == any values with mask 0
    gap = torch.rand(30, 4) < 0.3
    ser_nan = ser.clone()
    ser_nan[..., 2][gap] = float("nan")
    mask = (~gap).float().unsqueeze(-1)
    out_nan = net(ser_nan, att)
    ser_zero = ser.clone()
    ser_zero[..., 2][gap] = 0.0
    assert torch.equal(out_nan, net(ser_zero, att, mask=mask))
    assert torch.equal(out_nan, net(ser, att, mask=mask))         # values under mask 0 ignored
    # the availability channel is really fed: zero fill without the mask differs
    assert not torch.allclose(out_nan, net(ser_zero, att))
    x = net.build_input(ser_nan, att)
    assert x.shape == (30, 4, 3 + 1 + 5)
    assert torch.equal(x[..., 3], mask[..., 0]) and not torch.isnan(x).any()


def test_gz_all_nan_site_and_errors():
    torch.manual_seed(0)
    net = GZ(3, 5, n_params=2, hidden=8, masked_series=[2])
    ser, att = _series()
    ser[:, 1, 2] = float("nan")
    out = net(ser, att)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())
    bad = ser.clone()
    bad[3, 0, 0] = float("nan")                                   # forcing channel, not masked
    with pytest.raises(ValueError, match="channel 0"):
        net(bad, att)
    with pytest.raises(ValueError, match="mask marks it as observed"):
        net(ser, att, mask=torch.ones(30, 4, 1))
    with pytest.raises(ValueError, match="masked_series"):
        GZ(3, 5, 2, masked_series=[3])
    # default: every series is masked
    assert GZ(3, 5, 2, hidden=4).masked_series == [0, 1, 2]


def test_dpl_model_forward_and_gradient():
    torch.manual_seed(0)
    pbm = Bucket()
    model = DPLModel(GA(5, pbm.n_params, hidden=8), pbm)
    assert model.inputs == ("attributes",)
    forcing = torch.rand(20, 4, 3)
    out = model(forcing, torch.randn(4, 5), warmup=5)
    assert out["streamflow"].shape == (15, 4)
    out["streamflow"].sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.net.parameters())
    gz = DPLModel(GZ(3, 5, pbm.n_params, hidden=8), pbm)
    ser, att = _series(n_t=20)
    assert gz(forcing, ser, att)["streamflow"].shape == (20, 4)
    with pytest.raises(ValueError, match="n_params"):
        DPLModel(GA(5, 3), pbm)
    with pytest.raises(ValueError, match="nmul"):
        DPLModel(GA(5, 2, nmul=2), pbm)


def test_normalizer():
    rng = np.random.default_rng(0)
    x = rng.normal([1.0, -5.0, 3.0, 2.0], [2.0, 0.5, 0.0, 1.0], size=(50, 10, 4))
    x[rng.random(x.shape) < 0.1] = np.nan
    norm = Normalizer(log_features=[3]).fit(x)
    flat = x.reshape(-1, 4)
    np.testing.assert_allclose(norm.mean[:2], np.nanmean(flat[:, :2], 0))
    np.testing.assert_allclose(norm.std[:2], np.nanstd(flat[:, :2], 0))
    assert norm.std[2] == 1.0                                    # constant feature
    lf = np.log10(np.sqrt(np.clip(flat[:, 3], 0, None)) + 0.1)
    assert norm.mean[3] == pytest.approx(np.nanmean(lf))
    z = norm.transform(x)
    assert np.array_equal(np.isnan(z), np.isnan(x))
    zz = z.reshape(-1, 4)
    np.testing.assert_allclose(np.nanmean(zz[:, [0, 1, 3]], 0), 0, atol=1e-12)
    np.testing.assert_allclose(np.nanstd(zz[:, [0, 1, 3]], 0), 1, atol=1e-12)
    back = Normalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    np.testing.assert_array_equal(back.transform(x), z)
    zt = norm.transform(torch.tensor(x, dtype=torch.float32))
    assert zt.dtype == torch.float32
    np.testing.assert_allclose(zt.numpy(), z, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norm.inverse_transform(z)[..., :3], x[..., :3])
    x[..., 1] = np.nan
    with pytest.raises(ValueError, match="feature b"):
        Normalizer(names=["a", "b", "c", "d"]).fit(x)
    with pytest.raises(RuntimeError):
        Normalizer().transform(x)


def test_gdynamic_compact_and_truncated_equal_full():
    """GDynamic's compact output (DynamicParams) expands to its full tensor, and running the LSTM's
    first days without gradient (no_grad_days) changes no output value."""
    import torch
    from dplpaper.models.base import DynamicParams
    from dplpaper.nets import GDynamic
    torch.manual_seed(0)
    full = GDynamic(3, 4, n_params=6, nmul=2, dynamic=[0, 4], hidden=8, static_hidden=8)
    comp = GDynamic(3, 4, n_params=6, nmul=2, dynamic=[0, 4], hidden=8, static_hidden=8, compact=True,
                    no_grad_days=7)
    comp.load_state_dict(full.state_dict())
    x, a = torch.randn(20, 5, 3), torch.randn(5, 4)
    p_full = full(x, a)
    p_comp = comp(x, a)
    assert isinstance(p_comp, DynamicParams) and p_comp.rows == (0, 4)
    assert torch.allclose(p_comp.full(), p_full, atol=1e-6)
    assert torch.equal(p_comp.static[:, [1, 2, 3, 5]], p_full[0][:, [1, 2, 3, 5]])
    # gradients: the truncated backward gives the same gradient to the static MLP
    p_comp.full()[7:].sum().backward()
    p_full[7:].sum().backward()
    for (n, g1), (_, g2) in zip(comp.named_parameters(), full.named_parameters()):
        if n.startswith("static"):
            assert torch.allclose(g1.grad, g2.grad, atol=1e-5), n
