"""Transfer-function regionalization baseline (MPR-style; Beck et al. 2020, "Beck20").

Each model parameter is a fixed-form function of a chosen set of static attributes,

    theta_k = low_k + (high_k - low_k) * sigmoid(c_k0 + sum_j c_kj * z_j),

with ``z_j = (a_j - mean_j) / std_j`` the attributes standardised with the training sites'
mean and standard deviation, and ``theta_k`` in the unit cube (the model's
``ParameterTable`` maps it to physical units). The coefficients ``c`` are shared by all sites
and fitted jointly on the training sites with one domain-wide objective (the mean, median or
any reduction over sites of a per-site cost such as ``1 - KGE``), minimised with batched
SCE-UA (:func:`dplpaper.calibrate.sceua.sceua`, a single "site" whose parameters are the
``n_params * (n_attributes + 1)`` coefficients). The fitted functions are then applied to
unseen sites (prediction in ungauged basins).

Search box of the coefficients: intercepts in ``[-intercept_bound, intercept_bound]``
(default 5, i.e. ``sigmoid`` from 0.007 to 0.993), slopes in ``[-coef_bound, coef_bound]``
(default 3 per standard deviation). The all-zero solution (every parameter at the middle of
its range) is put into the initial population.

Budget. Every evaluation of the domain-wide objective runs the model once on every training
site, so ``max_evals`` evaluations cost ``max_evals`` model runs per training site (the same
epoch accounting as dPL and SCE-UA). SCE-UA needs roughly ``O(100 * n_coef)`` evaluations;
with Beck's 8 attributes and HBV's 13 parameters (117 coefficients) a budget of 10,000-30,000
evaluations is typical; fewer complexes (``n_complexes``) trade robustness for speed.

Converging 126 coefficients. SCE-UA's population grows with the dimension (a complex holds
``2 n + 1`` points), so with 117-126 coefficients one shuffling loop of 7 complexes costs about
1,800 evaluations and 20,000 evaluations are barely ten loops: on the 426 CAMELS basins its
learning curve still falls by 0.018 in 1 - NSE over the last fifth of that budget (not converged).
:func:`refine_regionalization` takes the SCE-UA result (or any start) further by gradient descent
on the same objective through a differentiable model (the same transfer functions, search box
and objective: only the optimizer differs), and reports its own learning curve so that the
convergence of the final stage can be checked.

Beck's attributes. :data:`BECK_ATTRIBUTES_CAMELS` lists the closest CAMELS-US attributes
(``camels_attributes_v2.0``) to the eight used by Beck et al. (2020), with the reasons in
:data:`BECK_ATTRIBUTE_NOTES`.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .sceua import SCEUAResult, sceua

__all__ = ["BECK_ATTRIBUTES_CAMELS", "BECK_ATTRIBUTE_NOTES", "TransferFunctions", "fit_regionalization",
           "refine_regionalization"]

#: CAMELS-US attribute columns standing for Beck et al. (2020)'s eight transfer-function predictors,
#: in Beck's order: humidity, mean annual precipitation, mean annual potential evaporation, NDVI,
#: open-water fraction, slope, sand, clay.
BECK_ATTRIBUTES_CAMELS: tuple[str, ...] = (
    "aridity", "p_mean", "pet_mean", "gvf_max", "water_frac", "slope_mean", "sand_frac", "clay_frac",
)

#: Why each CAMELS column was chosen (file, units, relation to Beck's predictor).
BECK_ATTRIBUTE_NOTES: dict[str, str] = {
    "aridity": "camels_clim: PET/P (-); Beck's humidity index is P/PET, i.e. its reciprocal - same "
               "information, monotone transform (use 1/aridity for the exact index).",
    "p_mean": "camels_clim: mean daily precipitation (mm/day); Beck: mean annual precipitation "
              "(a constant factor 365.25 apart, irrelevant after standardisation).",
    "pet_mean": "camels_clim: mean daily PET, Priestley-Taylor (mm/day); Beck: mean annual potential "
                "evaporation (different PET formula, same role).",
    "gvf_max": "camels_vege: maximum monthly green vegetation fraction (-), derived from MODIS NDVI; "
               "CAMELS has no NDVI column (Beck: mean NDVI). lai_max is the alternative proxy.",
    "water_frac": "camels_soil: fraction of the top 1.5 m of soil classified as water (%), STATSGO; "
                  "Beck: fraction of open water (surface water bodies, Pekel et al.). Closest available.",
    "slope_mean": "camels_topo: catchment mean slope (m/km); Beck: mean topographic slope.",
    "sand_frac": "camels_soil: sand fraction of the soil (%), STATSGO; Beck: SoilGrids sand fraction.",
    "clay_frac": "camels_soil: clay fraction of the soil (%), STATSGO; Beck: SoilGrids clay fraction.",
}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Overflow-free logistic function."""
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def _check_attributes(attributes, n_attributes: int, what: str) -> np.ndarray:
    a = np.asarray(attributes, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != n_attributes:
        raise ValueError(f"{what}: attributes must have shape [site, {n_attributes}], got {a.shape}")
    bad = ~np.isfinite(a)
    if bad.any():
        s, j = np.argwhere(bad)[0]
        raise ValueError(f"{what}: attribute {j} of site {s} is not finite ({a[s, j]})")
    return a


class TransferFunctions:
    """Sigmoid-linear transfer functions from ``n_attributes`` attributes to ``n_params`` unit-cube parameters.

    Attributes:
        coef: ``[n_params, n_attributes + 1]``; column 0 the intercepts, column ``j + 1`` the slope
            of standardised attribute ``j``.
        attr_mean, attr_std: ``[n_attributes]`` standardisation (from the training sites).
        low, high: ``[n_params]`` sub-range of the unit cube the sigmoid spans (default 0 and 1).
        attribute_names, param_names: optional labels.
    """

    def __init__(self, n_attributes: int, n_params: int, coef=None, attr_mean=None, attr_std=None,
                 low=None, high=None, attribute_names: Sequence[str] | None = None,
                 param_names: Sequence[str] | None = None):
        self.n_attributes = int(n_attributes)
        self.n_params = int(n_params)
        if self.n_attributes < 0 or self.n_params < 1:
            raise ValueError(f"TransferFunctions: need n_attributes >= 0 and n_params >= 1, "
                             f"got {n_attributes}, {n_params}")
        shape = (self.n_params, self.n_attributes + 1)
        self.coef = np.zeros(shape) if coef is None else np.array(coef, dtype=np.float64).reshape(shape)
        self.attr_mean = np.zeros(self.n_attributes) if attr_mean is None else np.array(attr_mean, dtype=np.float64)
        self.attr_std = np.ones(self.n_attributes) if attr_std is None else np.array(attr_std, dtype=np.float64)
        self.low = np.zeros(self.n_params) if low is None else np.broadcast_to(np.array(low, dtype=np.float64), (self.n_params,)).copy()
        self.high = np.ones(self.n_params) if high is None else np.broadcast_to(np.array(high, dtype=np.float64), (self.n_params,)).copy()
        if self.attr_mean.shape != (self.n_attributes,) or self.attr_std.shape != (self.n_attributes,):
            raise ValueError("TransferFunctions: attr_mean and attr_std must have shape [n_attributes]")
        if (self.attr_std <= 0).any():
            raise ValueError("TransferFunctions: attr_std must be positive")
        if (self.low < 0).any() or (self.high > 1).any() or (self.high <= self.low).any():
            raise ValueError("TransferFunctions: need 0 <= low < high <= 1 for every parameter")
        self.attribute_names = list(attribute_names) if attribute_names is not None else None
        self.param_names = list(param_names) if param_names is not None else None
        if self.attribute_names is not None and len(self.attribute_names) != self.n_attributes:
            raise ValueError("TransferFunctions: len(attribute_names) != n_attributes")
        if self.param_names is not None and len(self.param_names) != self.n_params:
            raise ValueError("TransferFunctions: len(param_names) != n_params")
        self.fit_result: SCEUAResult | None = None
        #: learning curve of :func:`refine_regionalization` (``step, cost``), if it ran
        self.refine_curve = None

    @property
    def n_coef(self) -> int:
        return self.n_params * (self.n_attributes + 1)

    def set_standardization(self, attributes) -> "TransferFunctions":
        """Take mean and standard deviation from ``attributes [site, n_attr]`` (constant columns: std 1)."""
        a = _check_attributes(attributes, self.n_attributes, "TransferFunctions.set_standardization")
        self.attr_mean = a.mean(axis=0)
        std = a.std(axis=0)
        self.attr_std = np.where(std > 0, std, 1.0)
        return self

    def standardize(self, attributes) -> np.ndarray:
        a = _check_attributes(attributes, self.n_attributes, "TransferFunctions")
        return (a - self.attr_mean) / self.attr_std

    def _predict_z(self, z: np.ndarray, coef: np.ndarray) -> np.ndarray:
        """z: [site, n_attr]; coef: [..., n_params, n_attr + 1] -> [..., site, n_params]."""
        lin = coef[..., None, :, 0] + np.einsum("sj,...pj->...sp", z, coef[..., 1:])
        return np.clip(self.low + (self.high - self.low) * _sigmoid(lin), 0.0, 1.0)

    def predict(self, attributes) -> np.ndarray:
        """Unit-cube parameters ``[site, n_params]`` (within ``[low, high]``) for ``attributes [site, n_attr]``."""
        return self._predict_z(self.standardize(attributes), self.coef)

    def to_dict(self) -> dict:
        """Plain-Python (JSON-ready) description."""
        return {
            "kind": "sigmoid_linear_transfer_functions",
            "n_attributes": self.n_attributes, "n_params": self.n_params,
            "coef": self.coef.tolist(), "attr_mean": self.attr_mean.tolist(), "attr_std": self.attr_std.tolist(),
            "low": self.low.tolist(), "high": self.high.tolist(),
            "attribute_names": self.attribute_names, "param_names": self.param_names,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "TransferFunctions":
        if d.get("kind") != "sigmoid_linear_transfer_functions":
            raise ValueError(f"TransferFunctions.from_dict: unknown kind {d.get('kind')!r}")
        return cls(d["n_attributes"], d["n_params"], coef=d["coef"], attr_mean=d["attr_mean"],
                   attr_std=d["attr_std"], low=d["low"], high=d["high"],
                   attribute_names=d.get("attribute_names"), param_names=d.get("param_names"))

    def __repr__(self) -> str:
        return f"TransferFunctions(n_attributes={self.n_attributes}, n_params={self.n_params})"


_REDUCERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": lambda c: c.mean(axis=-1),
    "median": lambda c: np.median(c, axis=-1),
}


def fit_regionalization(
    attributes_train,
    site_objective: Callable[[np.ndarray], np.ndarray],
    n_params: int,
    seed: int = 0,
    max_evals: int = 5000,
    *,
    aggregate: str | Callable[[np.ndarray], np.ndarray] = "mean",
    candidates_batched: bool = False,
    n_complexes: int = 7,
    kstop: int = 10,
    pcento: float = 0.01,
    peps: float = 1e-4,
    coef_bound: float = 3.0,
    intercept_bound: float = 5.0,
    low=None,
    high=None,
    attribute_names: Sequence[str] | None = None,
    param_names: Sequence[str] | None = None,
    progress: bool = False,
    **sceua_kwargs,
) -> TransferFunctions:
    """Fit transfer functions on the training sites with one domain-wide objective (SCE-UA over coefficients).

    Args:
        attributes_train: ``[site, n_attr]`` raw attributes of the training sites (standardised inside).
        site_objective: ``site_objective(params_unit [site, n_params]) -> cost [site]`` (lower is better,
            e.g. ``1 - KGE`` of a model run with those parameters). With ``candidates_batched=True`` it
            receives ``[n_candidates, site, n_params]`` and returns ``[n_candidates, site]``, so that the
            caller can run all candidate coefficient sets in one model call.
        n_params: number of model parameters.
        seed: seed of the SCE-UA search.
        max_evals: evaluations of the domain-wide objective (= model runs per training site).
        aggregate: ``"mean"``, ``"median"`` or a function ``cost [..., site] -> [...]``.
        n_complexes, kstop, pcento, peps, **sceua_kwargs: passed to :func:`~dplpaper.calibrate.sceua.sceua`.
        coef_bound, intercept_bound: search box of slopes and intercepts (see module docstring).
        low, high: optional ``[n_params]`` sub-range of the unit cube.
    Returns:
        the fitted :class:`TransferFunctions`; its ``fit_result`` holds the SCE-UA result (history of the
        domain-wide cost vs evaluations).
    """
    a = np.asarray(attributes_train, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"fit_regionalization: attributes_train must have shape [site >= 2, n_attr], got {a.shape}")
    a = _check_attributes(a, a.shape[1], "fit_regionalization")
    tf = TransferFunctions(a.shape[1], n_params, low=low, high=high, attribute_names=attribute_names,
                           param_names=param_names).set_standardization(a)
    z = tf.standardize(a)
    n_sites = a.shape[0]
    if isinstance(aggregate, str) and aggregate not in _REDUCERS:
        raise ValueError(f"fit_regionalization: aggregate must be one of {sorted(_REDUCERS)} or a callable")
    reduce = _REDUCERS[aggregate] if isinstance(aggregate, str) else aggregate
    shape = (tf.n_params, tf.n_attributes + 1)
    box = np.full(shape, float(coef_bound))
    box[:, 0] = float(intercept_bound)
    box = box.ravel()

    def to_coef(u: np.ndarray) -> np.ndarray:
        return ((2.0 * u - 1.0) * box).reshape(u.shape[:-1] + shape)

    def objective(u: np.ndarray) -> np.ndarray:  # u: [1, K, n_coef] -> [1, K]
        theta = tf._predict_z(z, to_coef(u[0]))  # [K, site, n_params]
        if candidates_batched:
            cost = np.asarray(site_objective(theta), dtype=np.float64)
            if cost.shape != theta.shape[:2]:
                raise ValueError(f"fit_regionalization: site_objective returned {cost.shape}, expected {theta.shape[:2]}")
        else:
            cost = np.empty(theta.shape[:2])
            for k in range(theta.shape[0]):
                ck = np.asarray(site_objective(theta[k]), dtype=np.float64)
                if ck.shape != (n_sites,):
                    raise ValueError(f"fit_regionalization: site_objective returned {ck.shape}, expected ({n_sites},)")
                cost[k] = ck
        if np.isnan(cost).any():
            k, s = np.argwhere(np.isnan(cost))[0]
            raise ValueError(f"fit_regionalization: site_objective returned NaN for training site {s}")
        return np.asarray(reduce(cost), dtype=np.float64)[None, :]

    res = sceua(objective, tf.n_coef, n_sites=1, n_complexes=n_complexes, max_evals=max_evals, kstop=kstop,
                pcento=pcento, peps=peps, seed=seed, progress=progress, x0=np.full(tf.n_coef, 0.5), **sceua_kwargs)
    tf.coef = to_coef(res.best_params[0])
    tf.fit_result = res
    return tf


def refine_regionalization(tf: TransferFunctions, attributes_train, site_loss: Callable, steps: int = 300,
                           lr: float = 0.05, *, coef_bound: float = 3.0, intercept_bound: float = 5.0,
                           max_steps: int | None = None, tail: float = 0.2, tol: float = 0.005,
                           progress: bool = False) -> TransferFunctions:
    """Refine fitted transfer functions by full-batch gradient descent (Adam) on the domain-wide objective.

    The same sigmoid-linear functions, search box and objective as :func:`fit_regionalization`; only
    the optimizer differs, so the result is the same baseline taken closer to its optimum. The start
    (``tf.coef``, e.g. the SCE-UA result) is step 0 of the curve, and the best coefficients seen are
    kept: the refined training cost is never above the start's.

    Args:
        tf: transfer functions with their standardization set (e.g. from :func:`fit_regionalization`);
            refined in place and returned.
        attributes_train: ``[site, n_attr]`` raw attributes of the training sites.
        site_loss: ``site_loss(theta) -> cost``: ``theta`` a ``torch.Tensor [site, n_params]`` (float64,
            unit cube, differentiable) to a ``[site]`` tensor of costs (lower is better, e.g. 1 - NSE);
            non-finite costs (sites without usable data) are left out of the mean.
        steps: gradient steps (each one model run of every training site, forward and backward).
        lr: Adam step size (in sigmoid-argument units per standardized attribute).
        coef_bound, intercept_bound: the search box, enforced after every step.
        max_steps: run *to convergence*: after ``steps``, while the curve is not flat
            (:func:`~dplpaper.calibrate.sceua.budget_convergence` on the best cost: its last ``tail`` gained
            more than ``tol``), go on by ``steps // 2`` more at a time, up to ``max_steps`` in all. The
            optimizer's state carries on, so the first ``steps`` are those of a run without ``max_steps``
            (a search already flat at ``steps`` is unchanged). ``None``: exactly ``steps``.
    Returns:
        ``tf`` with the best coefficients and ``tf.refine_curve`` (DataFrame ``step, cost, best_cost``;
        ``cost`` is the objective at the coefficients before step ``step``'s update).
    """
    import pandas as pd
    import torch

    from dplpaper.calibrate.sceua import budget_convergence

    if steps < 1:
        raise ValueError(f"refine_regionalization: steps must be >= 1, got {steps}")
    if max_steps is not None and max_steps < steps:
        raise ValueError(f"refine_regionalization: max_steps ({max_steps}) must be >= steps ({steps})")
    z = torch.as_tensor(tf.standardize(attributes_train), dtype=torch.float64)
    low = torch.as_tensor(tf.low, dtype=torch.float64)
    span = torch.as_tensor(tf.high - tf.low, dtype=torch.float64)
    box = torch.full(tf.coef.shape, float(coef_bound), dtype=torch.float64)
    box[:, 0] = float(intercept_bound)
    coef = torch.tensor(np.clip(tf.coef, -box.numpy(), box.numpy()), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([coef], lr=lr)
    best_cost, best = float("inf"), coef.detach().clone()
    rows = []
    target, step = steps, -1
    while True:
        step += 1
        theta = (low + span * torch.sigmoid(coef[:, 0] + z @ coef[:, 1:].T)).clamp(0.0, 1.0)
        cost = site_loss(theta)
        if cost.shape != (z.shape[0],):
            raise ValueError(f"refine_regionalization: site_loss returned shape {tuple(cost.shape)}, "
                             f"expected ({z.shape[0]},)")
        ok = torch.isfinite(cost)
        if not bool(ok.any()):
            raise ValueError("refine_regionalization: site_loss is not finite for any training site")
        loss = cost[ok].mean()
        value = float(loss.detach())
        if value < best_cost:
            best_cost, best = value, coef.detach().clone()
        rows.append((step, value, best_cost))
        if progress and step % max(1, steps // 10) == 0:
            print(f"refine_regionalization: step {step}/{target} cost {value:.4f} (best {best_cost:.4f})", flush=True)
        if step == target:
            if max_steps is None or target >= max_steps:
                break
            curve = pd.DataFrame(rows, columns=["step", "cost", "best_cost"])
            if budget_convergence(curve, tail=tail, tol=tol, cost="best_cost", x="step")["converged"]:
                break
            target = min(max_steps, target + max(1, steps // 2))
        opt.zero_grad()
        loss.backward()
        if not bool(torch.isfinite(coef.grad).all()):
            raise FloatingPointError(f"refine_regionalization: non-finite gradient at step {step}")
        opt.step()
        with torch.no_grad():
            coef.copy_(torch.maximum(torch.minimum(coef, box), -box))
    tf.coef = best.numpy().copy()
    tf.refine_curve = pd.DataFrame(rows, columns=["step", "cost", "best_cost"])
    return tf
