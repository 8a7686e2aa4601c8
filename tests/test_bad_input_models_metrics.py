"""Bad input to HBV and the metrics (issue 12, "Also" list): KGE of degenerate series is NaN,
HBV names the parameter out of range and takes numpy arrays or refuses integers clearly."""
import numpy as np
import pytest
import torch

from dplpaper import metrics as M
from dplpaper.models.hbv import HBV

# ----------------------------------------------------------------------------- KGE
ZERO_MEAN = np.array([0.1, 0.2, -0.3, 0.1, -0.1])          # mean 1.1e-17 from rounding, not 0
CONST = np.array([0.1 * 3, 0.3, 0.1 + 0.2, 0.3, 0.3])     # variance 1.8e-33 from rounding
SIM = np.array([0.2, 0.1, -0.2, 0.0, -0.1])


@pytest.mark.parametrize("variant", ["2009", "2012"])
def test_kge_zero_mean_or_constant_is_nan(variant):
    assert np.isnan(M.kge(SIM, ZERO_MEAN, variant=variant))
    assert np.isnan(M.kge(SIM + 1, CONST, variant=variant))
    assert np.isnan(M.kge(CONST, SIM + 1, variant=variant))              # constant simulation
    for dt in (torch.float64, torch.float32):
        assert torch.isnan(M.kge(torch.tensor(SIM, dtype=dt), torch.tensor(ZERO_MEAN, dtype=dt), variant=variant))
        assert torch.isnan(M.kge(torch.tensor(SIM + 1, dtype=dt), torch.tensor(CONST, dtype=dt), variant=variant))
    assert M.kge(SIM + 1, SIM + 1, variant=variant) == 1.0               # an ordinary series is untouched
    assert np.isfinite(M.kge(SIM + 1e-3, SIM + 2e-3, variant=variant))   # a small but real mean counts


def test_kge_loss_skips_degenerate_site_with_zero_gradient():
    sim = torch.tensor(np.stack([SIM + 1, SIM + 1], 1), requires_grad=True)
    obs = torch.tensor(np.stack([CONST, SIM + 1.2], 1))
    loss = M.kge_loss(sim, obs)
    loss.backward()
    assert torch.isfinite(loss) and torch.all(sim.grad[:, 0] == 0) and torch.isfinite(sim.grad).all()


# ----------------------------------------------------------------------------- HBV
@pytest.fixture(scope="module")
def hbv():
    return HBV(nmul=2, backend="torch")


def _inputs(m, n_t=15, n_s=3):
    rng = np.random.default_rng(0)
    f = np.abs(rng.normal(2, 1, size=(n_t, n_s, 3))).astype(np.float32)
    p = np.full((n_s, len(m.parameter_table), m.nmul), 0.5, dtype=np.float32)
    return f, p


def test_hbv_parameter_out_of_range_names_it(hbv):
    f, p = _inputs(hbv)
    p[1, 3, 1] = 1.5
    with pytest.raises(ValueError, match=r"HBV params: K1 \(row 3\) = 1.5 at site index 1, component 1: .*\[0, 1\]"):
        hbv(torch.from_numpy(f), torch.from_numpy(p))
    p[1, 3, 1] = 0.5
    p[2, -1, 0] = np.nan
    name = hbv.parameter_table.names[-1]
    with pytest.raises(ValueError, match=rf"{name} \(row {p.shape[1] - 1}\) = nan at site index 2"):
        hbv(torch.from_numpy(f), torch.from_numpy(p))
    dyn = torch.full((15, 3, p.shape[1], 2), 0.5)
    dyn[4, 0, 0, 0] = -0.2
    with pytest.raises(ValueError, match=r"BETA \(row 0\) = -0.2\d* at site index 0, time index 4"):
        hbv(torch.from_numpy(f), dyn)


def test_hbv_numpy_inputs_work(hbv):
    f, p = _inputs(hbv)
    a = hbv(f, p)["streamflow"]
    b = hbv(torch.from_numpy(f), torch.from_numpy(p))["streamflow"]
    assert torch.equal(a, b) and a.shape == (15, 3)


@pytest.mark.parametrize("which", ["forcing", "params"])
def test_hbv_integer_or_wrong_type_is_a_clear_type_error(hbv, which):
    f, p = _inputs(hbv)
    args = {"forcing": f, "params": p}
    for bad, pattern in ((args[which].astype(np.int64), r"numpy int64 array"),
                         (torch.from_numpy(args[which].astype(np.int64)), r"got torch.int64"),
                         (args[which].tolist(), r"must be a torch.Tensor \(or a float numpy array\), got list")):
        kw = dict(args, **{which: bad})
        with pytest.raises(TypeError, match=rf"HBV {which} .*{pattern}"):
            hbv(kw["forcing"], kw["params"])


def test_hbv_forcing_errors_still_name_site_and_day(hbv):
    f, p = _inputs(hbv)
    f[5, 2, 0] = -1.0
    with pytest.raises(ValueError, match=r"invalid precip value -1.0 at site index 2, day index 5"):
        hbv(f, p)
