"""All methods on one epoch axis (issue 5; paper Figure 1e-f): dPL gA, dPL gZ, per-basin SCE-UA
and transfer-function regionalization, learning curves on the same real streamflow case.

Case. The Case 2 temporal split (:mod:`dplpaper.experiments.streamflow`) on real CAMELS basins
with Caravan ERA5-Land forcing (PET scaled to CAMELS ``pet_mean``): train 1999-10-01..2008-09-30,
test 1989-10-01..1999-09-30 on the same basins, HBV with routing, 365 spin-up days before each
period. Quick mode takes ``n_basins`` of the 40 shipped basins, evenly spaced in the sorted
(HUC-ordered) list (:func:`select_basins`); full mode takes every basin.

Epochs (the x axis). As in the paper, an epoch is, on average, one forward run of the model per
training basin over the training period, for every method:

* dPL (:func:`dplpaper.train.train_dpl`): ``history["epoch"]`` (mini-batch windows add up to
  forward runs per site); the test metric is evaluated by ``eval_fn`` every ``eval_every`` loop
  epochs, row 0 being the untrained network.
* SCE-UA per basin (:func:`dplpaper.calibrate.sceua.sceua`, all basins in lockstep): the epoch
  of a shuffling loop is the mean over basins of their evaluations so far (the paper's "average
  of the ending epochs"); the test metric is computed afterwards from ``param_history`` (each
  basin's best point after every loop).
* Regionalization (:func:`dplpaper.calibrate.regionalization.fit_regionalization` through
  :func:`dplpaper.experiments.streamflow.run_regionalization`): one evaluation of the
  domain-wide objective runs HBV once at every training basin, so the epoch is the number of
  evaluations; the transfer functions are rebuilt from the coefficient search's
  ``param_history`` after every loop and applied to the test period.

Both baselines get an epoch-0 point: the mid-cube parameter set (every parameter at the middle
of its range), which is in both initial populations (the regionalization's all-zero
coefficients give it; SCE-UA gets it through ``x0`` when ``start_at_mid``). Wall time counts the
optimisation only (dPL: training without evaluation; SCE-UA: its own clock), never the test
evaluations.

Test metric: per-basin NSE (:mod:`dplpaper.metrics` definition) over the test period, median
over basins (NaN-aware).

gZ for streamflow (:func:`run_dpl_gz`). The paper's Case 2 dPL used gZ (attributes plus series).
Here gZ (:class:`dplpaper.nets.GZ`) reads, at every time step, the forcing (precip, temp, PET)
and the observed streamflow, standardised on the training basins over the training period
(precip and streamflow log-transformed first), plus the static attributes; the streamflow
channel carries an availability mask (NaN gaps, and the spin-up days before the training
period, which lie inside the test period and are therefore always hidden). In training, the
network sees the same warm-up + loss window as HBV (:mod:`dplpaper.train`). For the test
period, the parameters come from the *training*-period series only: the training series is cut
into consecutive spans of ``warmup_days + window_days`` (the training sequence length) and the
network's unit-cube parameters are averaged over the spans (:func:`gz_parameters`); no test-period
streamflow ever enters the network.

Results: :func:`run_methods` writes ``results/methods/learning_curves_<mode>.csv`` and
``summary_<mode>.csv``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import xarray as xr

from dplpaper import metrics
from dplpaper.calibrate.regionalization import BECK_ATTRIBUTES_CAMELS, TransferFunctions
from dplpaper.data import TEST_PERIOD, TRAIN_PERIOD
from dplpaper.experiments import streamflow as sf
from dplpaper.data.streamflow import period_index, sim_array, time_slice
from dplpaper.experiments.configs import DPLSettings
from dplpaper.experiments.hbv_baselines import CandidateRunner, hbv_unit_table, sceua_hbv_search
from dplpaper.experiments.streamflow_dpl import DPLRun
from dplpaper.models.hbv import HBV
from dplpaper.nets import GZ, DPLModel, Normalizer
from dplpaper.results import results_dir
from dplpaper.train import TrainingData, train_dpl

__all__ = [
    "METHOD_LABELS", "SERIES_VARS", "MethodsConfig", "select_basins", "gz_series", "build_gz_model",
    "gz_parameters", "run_dpl_gz", "dpl_curve", "sceua_curve", "regionalization_curve", "mid_cube_score", "methods_claims",
    "epochs_to_reach", "summary_table", "curve_dict", "run_methods",
]

#: Method labels used in the tidy learning-curve table (and in the plots).
METHOD_LABELS = {
    "dpl_ga": "dPL gA+HBV",
    "dpl_gz": "dPL gZ+HBV",
    "sceua": "SCE-UA per basin",
    "regionalization": "regionalization",
}

#: gZ input series, in channel order (the last one, observed streamflow, is masked).
SERIES_VARS = ("precip", "temp", "pet", "streamflow")

#: Tidy learning-curve columns.
CURVE_COLUMNS = ["method", "epoch", "wall_time_s", "test_nse_median"]


# ============================================================================ configuration
@dataclass
class MethodsConfig:
    """Settings of the one-axis comparison; :meth:`quick` and :meth:`full` are the two modes.

    Attributes:
        mode: ``"quick"`` or ``"full"``.
        quick_data: passed to the loaders (True: shipped 40 basins; None: full set when found).
        n_basins: how many basins (:func:`select_basins`; None: all).
        train_period, test_period, warmup_days: the Case 2 split (spin-up days before each period).
        attributes: static attributes of gA, gZ and the regionalization.
        ga, gz: dPL settings (for gZ, ``hidden``/``n_layers`` are the LSTM's); ``eval_every``
            sets the learning-curve resolution (loop epochs between test evaluations).
        sceua_max_evals, sceua_complexes: per-basin SCE-UA budget (evaluations per basin).
        regionalization_max_evals, regionalization_complexes: coefficient search budget
            (evaluations = epochs).
        objective: baselines' cost, ``"nse"`` (1 - NSE) or ``"kge"``.
        start_at_mid: put the mid-cube parameter set into SCE-UA's initial population (as the
            regionalization does) so both baselines start from the same point.
        seed: seeds every method.
    """

    mode: str = "quick"
    quick_data: bool | None = True
    n_basins: int | None = 20
    train_period: tuple = TRAIN_PERIOD
    test_period: tuple = TEST_PERIOD
    warmup_days: int = 365
    attributes: tuple = tuple(BECK_ATTRIBUTES_CAMELS)
    ga: DPLSettings = field(default_factory=lambda: DPLSettings(nmul=16, epochs=100, batch_sites=20, lr=3e-3,
                                                               eval_every=1))
    gz: DPLSettings = field(default_factory=lambda: DPLSettings(nmul=16, hidden=32, n_layers=1, epochs=40,
                                                               batch_sites=20, lr=3e-3, eval_every=2))
    sceua_max_evals: int = 5000
    sceua_complexes: int = 7
    regionalization_max_evals: int = 4000
    regionalization_complexes: int = 2
    objective: str = "nse"
    start_at_mid: bool = True
    seed: int = 0

    @classmethod
    def quick(cls, seed: int = 0, n_basins: int | None = 20) -> "MethodsConfig":
        """``n_basins`` of the shipped 40; budgets for a few minutes on 2 cores."""
        return cls(mode="quick", quick_data=True, n_basins=n_basins, seed=int(seed))

    @classmethod
    def full(cls, seed: int = 0, n_basins: int | None = None) -> "MethodsConfig":
        """All basins (426 with the full data); paper-like budgets (SCE-UA 10,000 per basin, 7 complexes)."""
        return cls(mode="full", quick_data=None, n_basins=n_basins, seed=int(seed),
                   ga=DPLSettings(nmul=16, epochs=100, batch_sites=100, lr=1e-3, eval_every=1),
                   gz=DPLSettings(nmul=16, hidden=256, n_layers=1, epochs=100, batch_sites=100, lr=1e-3,
                                  eval_every=2),
                   sceua_max_evals=10000, sceua_complexes=7,
                   regionalization_max_evals=20000, regionalization_complexes=7)


def select_basins(basins: Sequence[str], n_basins: int | None) -> list[str]:
    """``n_basins`` of ``basins`` evenly spaced in their sorted order (sorted CAMELS ids follow the
    HUC regions, so the subset spans CONUS); all of them (sorted) if ``n_basins`` is None or
    at least their number. Deterministic."""
    b = sorted(str(x) for x in basins)
    if n_basins is None or n_basins >= len(b):
        return b
    if n_basins < 2:
        raise ValueError(f"n_basins must be >= 2 (the regionalization needs two training basins), got {n_basins}")
    idx = np.unique(np.round(np.linspace(0, len(b) - 1, int(n_basins))).astype(int))
    return [b[i] for i in idx]


# ============================================================================ gZ for streamflow
def gz_series(ds: xr.Dataset, basins: Sequence[str], period: tuple[str, str], warmup_days: int,
              normalizer: Normalizer | None = None) -> tuple[torch.Tensor, Normalizer]:
    """gZ input series ``[warmup_days + days, site, 4]`` (float32) of ``basins`` over ``period``
    with ``warmup_days`` before it (the span of :func:`~dplpaper.experiments.streamflow.assemble`).

    Channels :data:`SERIES_VARS`: precip (mm/day, negatives set to 0), temp (degC), PET (mm/day,
    negatives set to 0) and observed streamflow (mm/day; NaN gaps kept; NaN over the spin-up days,
    which lie outside ``period``). Standardised with ``normalizer``; if None, a new one is fitted
    on these values (log transform of precip and streamflow). Returns (series, normalizer).
    """
    basins = [str(b) for b in basins]
    start, end = time_slice(ds, period, warmup_days)
    sub = ds.sel(site=basins, time=slice(start, end))
    f = sf.forcing_array(sub).astype(np.float64)
    q = sub["streamflow"].transpose("time", "site").values.astype(np.float64).copy()
    q[:warmup_days] = np.nan
    x = np.concatenate([f, q[..., None]], axis=-1)
    if normalizer is None:
        normalizer = Normalizer(log_features=(0, 3), names=list(SERIES_VARS)).fit(x)
    z = normalizer.transform(x).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(z)), normalizer


def build_gz_model(n_attributes: int, settings: DPLSettings, seed: int = 0, backend: str = "auto") -> DPLModel:
    """gZ (LSTM of size ``settings.hidden``, only the streamflow channel masked; seeded with
    ``torch.manual_seed(seed)``) feeding HBV(nmul, routing)."""
    pbm = HBV(nmul=settings.nmul, routing=settings.routing, backend=backend)
    torch.manual_seed(int(seed))
    net = GZ(len(SERIES_VARS), n_attributes, pbm.n_params, pbm.nmul, hidden=settings.hidden,
             n_layers=settings.n_layers, dropout=settings.dropout, masked_series=[len(SERIES_VARS) - 1])
    return DPLModel(net, pbm)


def gz_parameters(model: DPLModel, series: torch.Tensor, attributes: torch.Tensor, span: int) -> torch.Tensor:
    """Static unit-cube parameters ``[site, n_params, nmul]`` from a long series: the mean of the
    network's outputs over the consecutive spans of ``span`` days (the training sequence length)
    that fit in ``series [time, site, n_series]`` (one span if the series is shorter). Eval mode,
    no gradient."""
    n_t = int(series.shape[0])
    span = max(1, min(int(span), n_t))
    k = n_t // span
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            chunks = series[: k * span].reshape(k, span, *series.shape[1:])
            outs = [model.net(chunks[i], attributes) for i in range(k)]
    finally:
        model.train(was)
    return torch.stack(outs).mean(0)


def run_dpl_gz(ds: xr.Dataset, attrs: xr.Dataset, basins: Sequence[str], train_period: tuple[str, str],
               test_period: tuple[str, str], attribute_names: Sequence[str], settings: DPLSettings,
               seed: int = 0, warmup_days: int = 365, progress: bool = False) -> DPLRun:
    """Train gZ + HBV on ``basins`` x ``train_period``; simulate the same basins over
    ``test_period`` with parameters from the training-period series (:func:`gz_parameters`).

    Temporal generalization only (the test basins are the training basins: gZ needs their
    training-period series). With ``settings.eval_every > 0`` the median test NSE is recorded in
    ``history["test_median_nse"]``. Returns a :class:`~dplpaper.experiments.streamflow.DPLRun`
    (``normalizer``: the attribute normalizer; the series normalizer is fitted on the training
    series of ``basins``).
    """
    t0 = time.perf_counter()
    basins = [str(b) for b in basins]
    norm = sf.fit_attribute_normalizer(attrs, basins, attribute_names)
    train = sf.assemble(ds, attrs, basins, train_period, attribute_names, norm, warmup_days, fill_basins=basins)
    test = sf.assemble(ds, attrs, basins, test_period, attribute_names, norm, warmup_days, fill_basins=basins)
    ser, _ = gz_series(ds, basins, train_period, warmup_days)
    train = TrainingData(forcing=train.forcing, attributes=train.attributes, target=train.target, series=ser,
                         site_ids=basins)
    model = build_gz_model(len(attribute_names), settings, seed)
    span = settings.warmup_days + settings.window_days
    obs_test = test.target[warmup_days:].numpy().astype(np.float64)

    def simulate(m: DPLModel) -> np.ndarray:
        p = gz_parameters(m, ser, train.attributes, span)
        with torch.no_grad():
            return m.pbm(test.forcing, p, warmup=warmup_days)["streamflow"].numpy()

    eval_fn = None
    if settings.eval_every > 0:
        def eval_fn(m):
            q = simulate(m).astype(np.float64)
            return {"test_median_nse": float(np.nanmedian(metrics.nse(q, obs_test)))}
    res = train_dpl(model, train, settings.train_config(seed, progress), eval_fn=eval_fn)
    sim = simulate(res.model)
    params = gz_parameters(res.model, ser, train.attributes, span).numpy()
    times = period_index(ds, test_period, warmup_days)
    return DPLRun(metrics=sf.score(sim, obs_test, basins), simulation=sim_array(sim, basins, times, "dPL gZ"),
                  history=res.history, parameters=params, model=res.model, normalizer=norm,
                  wall_time_s=time.perf_counter() - t0)


# ============================================================================ learning curves
def dpl_curve(run: DPLRun, method: str) -> pd.DataFrame:
    """Tidy learning curve of a dPL run (rows with a test evaluation): method, epoch, wall_time_s,
    test_nse_median."""
    h = run.history
    if "test_median_nse" not in h:
        raise ValueError("the dPL run has no test evaluations (set DPLSettings.eval_every > 0)")
    h = h.dropna(subset=["test_median_nse"])
    return pd.DataFrame({"method": method, "epoch": h["epoch"].values.astype(float),
                         "wall_time_s": h["wall_time_s"].values.astype(float),
                         "test_nse_median": h["test_median_nse"].values.astype(float)})[CURVE_COLUMNS]


def _test_runner(ds: xr.Dataset, basins: Sequence[str], test_period, warmup_days: int, routing: bool,
                 chunk: int = 8) -> CandidateRunner:
    """Evaluator of 1 - NSE on the test period for many parameter sets ``[K, site, n]``."""
    s, e = time_slice(ds, test_period, warmup_days)
    te = ds.sel(site=list(basins), time=slice(s, e))
    obs = te["streamflow"].transpose("time", "site").values[warmup_days:]
    return CandidateRunner(sf.forcing_array(te), obs, warmup_days, "nse", routing, chunk)


def _median_nse(runner: CandidateRunner, theta: np.ndarray) -> np.ndarray:
    """theta ``[K, site, n]`` unit cube -> ``[K]`` median (NaN-aware) test NSE over basins."""
    nse = 1.0 - runner.costs(np.ascontiguousarray(theta, dtype=np.float64))
    with np.errstate(all="ignore"):
        return np.array([np.nanmedian(r) if np.isfinite(r).any() else np.nan for r in nse])


def mid_cube_score(ds: xr.Dataset, basins: Sequence[str], test_period, warmup_days: int = 365,
                   routing: bool = True) -> float:
    """Median test NSE of HBV (one component) with every parameter at the middle of its range."""
    runner = _test_runner(ds, basins, test_period, warmup_days, routing, chunk=1)
    n = len(hbv_unit_table(routing))
    return float(_median_nse(runner, np.full((1, len(basins), n), 0.5))[0])


def sceua_curve(ds: xr.Dataset, basins: Sequence[str], train_period: tuple[str, str], test_period: tuple[str, str],
                max_evals: int = 5000, n_complexes: int = 7, objective: str = "nse", seed: int = 0,
                warmup_days: int = 365, routing: bool = True, start_at_mid: bool = True, chunk: int = 8,
                max_batch: int = 64, method: str = METHOD_LABELS["sceua"]) -> tuple[pd.DataFrame, object]:
    """Per-basin SCE-UA calibration of HBV (one component), all basins in lockstep: the search of
    :func:`dplpaper.experiments.streamflow.run_sceua_hbv` (:func:`~dplpaper.experiments.hbv_baselines.sceua_hbv_search`),
    keeping every loop's best points; the test metric is then computed for each loop.

    Returns (curve, SCEUAResult). Curve rows: an epoch-0 row (the mid-cube point, only when
    ``start_at_mid``), then one per shuffling loop (row for loop 0: after the initial population)
    with ``epoch`` = mean over basins of their evaluations so far and ``wall_time_s`` = SCE-UA's
    clock (test evaluation excluded).
    """
    basins = [str(b) for b in basins]
    n_par = len(hbv_unit_table(routing))
    res = sceua_hbv_search(ds, basins, train_period, max_evals, n_complexes, objective, seed, warmup_days, routing,
                           chunk, max_batch, keep_param_history=True, x0=np.full(n_par, 0.5) if start_at_mid else None)
    test = _test_runner(ds, basins, test_period, warmup_days, routing, chunk)
    hist = res.param_history  # [L + 1, S, n]
    if start_at_mid:
        hist = np.concatenate([np.full((1,) + hist.shape[1:], 0.5), hist])
    nse = _median_nse(test, hist)
    epoch = res.epoch_history.mean(axis=1).astype(float)
    wall = res.wall_time_history.max(axis=1).astype(float)
    if start_at_mid:
        epoch, wall = np.concatenate([[0.0], epoch]), np.concatenate([[0.0], wall])
    curve = pd.DataFrame({"method": method, "epoch": epoch, "wall_time_s": wall, "test_nse_median": nse})
    return curve[CURVE_COLUMNS], res


def _coef_from_unit(u: np.ndarray, tf: TransferFunctions, coef_bound: float = 3.0,
                    intercept_bound: float = 5.0) -> np.ndarray:
    """Coefficients ``[..., n_params, n_attr + 1]`` of unit-cube search points ``u [..., n_coef]``:
    the search box of :func:`~dplpaper.calibrate.regionalization.fit_regionalization` (defaults)."""
    shape = (tf.n_params, tf.n_attributes + 1)
    box = np.full(shape, float(coef_bound))
    box[:, 0] = float(intercept_bound)
    return ((2.0 * np.asarray(u) - 1.0) * box.ravel()).reshape(np.shape(u)[:-1] + shape)


def regionalization_curve(ds: xr.Dataset, attrs: xr.Dataset, basins: Sequence[str], train_period: tuple[str, str],
                          test_period: tuple[str, str], attribute_names: Sequence[str], max_evals: int = 4000,
                          n_complexes: int = 2, objective: str = "nse", seed: int = 0, warmup_days: int = 365,
                          routing: bool = True, chunk: int = 8,
                          method: str = METHOD_LABELS["regionalization"]) -> tuple[pd.DataFrame, sf.BaselineRun]:
    """Transfer-function regionalization fitted on ``basins`` x ``train_period``
    (:func:`~dplpaper.experiments.streamflow.run_regionalization`), tested on the same basins over
    ``test_period`` at every loop of the coefficient search.

    Returns (curve, BaselineRun). Curve rows: epoch 0 (all-zero coefficients = mid-cube
    parameters, in the initial population), then one per loop with ``epoch`` = evaluations of
    the domain-wide objective (each runs HBV once per training basin) and ``wall_time_s`` = the
    search's clock. Raises if the coefficients rebuilt from the search history do not give the
    fitted transfer functions (a changed search box).
    """
    basins = [str(b) for b in basins]
    run = sf.run_regionalization(ds, attrs, basins, basins, train_period, test_period, attribute_names, max_evals,
                                 n_complexes, objective, seed, warmup_days, routing, chunk)
    tf = run.transfer_functions
    res = tf.fit_result
    coefs = _coef_from_unit(res.param_history[:, 0, :], tf)  # [L + 1, n_params, n_attr + 1]
    if not np.allclose(coefs[-1], tf.coef, rtol=0, atol=1e-12):
        raise RuntimeError("regionalization_curve: coefficients rebuilt from the search history differ from "
                           "the fitted ones (fit_regionalization's search box changed?)")
    a = sf.attribute_matrix(attrs, basins, attribute_names, fill_basins=basins)
    z = tf.standardize(a)
    coefs = np.concatenate([np.zeros((1,) + coefs.shape[1:]), coefs])
    theta = tf._predict_z(z, coefs)  # [L + 2, site, n_params]
    test = _test_runner(ds, basins, test_period, warmup_days, routing, chunk)
    nse = _median_nse(test, theta)
    epoch = np.concatenate([[0.0], res.epoch_history[:, 0].astype(float)])
    wall = np.concatenate([[0.0], res.wall_time_history[:, 0].astype(float)])
    curve = pd.DataFrame({"method": method, "epoch": epoch, "wall_time_s": wall, "test_nse_median": nse})
    return curve[CURVE_COLUMNS], run


# ============================================================================ summaries
def epochs_to_reach(curve: pd.DataFrame, threshold: float) -> tuple[float, float]:
    """(epoch, wall seconds) of the first point of one method's curve with
    ``test_nse_median >= threshold`` (NaN, NaN if it never gets there)."""
    c = curve.sort_values("epoch", kind="stable")
    ok = c["test_nse_median"].values >= threshold
    if not np.isfinite(threshold) or not ok.any():
        return float("nan"), float("nan")
    i = int(np.argmax(ok))
    return float(c["epoch"].values[i]), float(c["wall_time_s"].values[i])


def summary_table(curves: pd.DataFrame, thresholds: dict[str, float]) -> pd.DataFrame:
    """Per method: ``final_test_nse`` (last point), ``final_epoch``, ``wall_time_s`` (last point)
    and, for each ``name -> threshold``, ``epochs_to_<name>`` and ``wall_s_to_<name>``
    (:func:`epochs_to_reach`). Index: method, in order of appearance."""
    rows = {}
    for m, c in curves.groupby("method", sort=False):
        c = c.sort_values("epoch", kind="stable")
        r = {"final_test_nse": float(c["test_nse_median"].values[-1]), "final_epoch": float(c["epoch"].values[-1]),
             "wall_time_s": float(c["wall_time_s"].values[-1])}
        for name, thr in thresholds.items():
            r[f"epochs_to_{name}"], r[f"wall_s_to_{name}"] = epochs_to_reach(c, thr)
        rows[m] = r
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "method"
    return out


def curve_dict(curves: pd.DataFrame, x: str = "epoch", min_x: float = 0.5) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{method: (x, test_nse_median)}`` for :func:`dplpaper.plots.learning_curves`; ``x`` values
    below ``min_x`` (epoch 0, on a log axis) are drawn at ``min_x``."""
    out = {}
    for m, c in curves.groupby("method", sort=False):
        c = c.sort_values(x, kind="stable")
        out[m] = (np.maximum(c[x].values.astype(float), min_x), c["test_nse_median"].values.astype(float))
    return out


# ============================================================================ driver
def run_methods(config: MethodsConfig, ds: xr.Dataset | None = None, attrs: xr.Dataset | None = None,
                methods: Sequence[str] = ("dpl_ga", "dpl_gz", "sceua", "regionalization"),
                write: bool = True) -> dict:
    """Run the chosen methods (keys of :data:`METHOD_LABELS`) on the same basins and split.

    Returns a dict: ``curves`` (tidy DataFrame ``method, epoch, wall_time_s, test_nse_median``,
    methods in the order given), ``runs`` (method label -> DPLRun / BaselineRun / SCEUAResult),
    ``basins``, ``mid_cube_nse`` (median test NSE of the mid-cube parameters), ``wall_time_s``
    (method label -> total seconds including set-up and test evaluations). ``write``: save
    ``results/methods/learning_curves_<mode>.csv``.
    """
    unknown = [m for m in methods if m not in METHOD_LABELS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {list(METHOD_LABELS)}")
    if ds is None or attrs is None:
        ds, attrs = sf.load_streamflow_data(quick=config.quick_data)
    basins = select_basins([str(b) for b in ds["site"].values], config.n_basins)
    c = config
    routing = c.ga.routing
    parts, runs, wall = [], {}, {}
    for key in methods:
        label = METHOD_LABELS[key]
        t0 = time.perf_counter()
        if key == "dpl_ga":
            r = sf.run_dpl_hbv(ds, attrs, basins, basins, c.train_period, c.test_period, c.attributes, c.ga, c.seed,
                               c.warmup_days)
            curve = dpl_curve(r, label)
        elif key == "dpl_gz":
            r = run_dpl_gz(ds, attrs, basins, c.train_period, c.test_period, c.attributes, c.gz, c.seed,
                           c.warmup_days)
            curve = dpl_curve(r, label)
        elif key == "sceua":
            curve, r = sceua_curve(ds, basins, c.train_period, c.test_period, c.sceua_max_evals, c.sceua_complexes,
                                   c.objective, c.seed, c.warmup_days, routing, c.start_at_mid, method=label)
        else:
            curve, r = regionalization_curve(ds, attrs, basins, c.train_period, c.test_period, c.attributes,
                                             c.regionalization_max_evals, c.regionalization_complexes, c.objective,
                                             c.seed, c.warmup_days, routing, method=label)
        wall[label] = time.perf_counter() - t0
        parts.append(curve)
        runs[label] = r
    curves = pd.concat(parts, ignore_index=True)[CURVE_COLUMNS]
    out = {"curves": curves, "runs": runs, "basins": basins, "wall_time_s": wall,
           "mid_cube_nse": mid_cube_score(ds, basins, c.test_period, c.warmup_days, routing)}
    if write:
        curves.to_csv(results_dir("methods") / f"learning_curves_{c.mode}.csv", index=False)
    return out


def methods_claims(summary: pd.DataFrame, config: "MethodsConfig", n_basins: int) -> list:
    """The methods page's claims (paper: Fig. 1e-f) from :func:`summary_table` (one row per method with
    ``final_test_nse``, ``epochs_to_sceua_final``, ``wall_s_to_sceua_final``), judged by rule and at most
    "partly" in quick mode (:func:`dplpaper.verdicts.cap_quick`):

    * dPL (gA and gZ) reaches SCE-UA's final median test NSE in fewer epochs ("partly": one of them);
    * dPL gA's final score nearly identical to or better than SCE-UA's (within 0.02 NSE; "partly"
      within 0.05);
    * dPL gA reaches SCE-UA's final score in less wall time (a timing claim: depends on the machine);
    * gZ at least as good as gA ("partly" within 0.02 NSE).
    Keys: ``fewer_epochs``, ``final_vs_sceua``, ``less_wall_time``, ``gz_vs_ga``.
    """
    from dplpaper.results import Claim
    from dplpaper.verdicts import cap_quick

    ga, gz, sce = (METHOD_LABELS[k] for k in ("dpl_ga", "dpl_gz", "sceua"))
    final = summary["final_test_nse"]
    e = summary["epochs_to_sceua_final"]
    fewer = [m for m in (ga, gz) if pd.notna(e[m]) and (pd.isna(e[sce]) or e[m] < e[sce])]
    gap, gz_gap = final[ga] - final[sce], final[gz] - final[ga]
    w_ga, w_sce = summary.loc[ga, "wall_s_to_sceua_final"], summary.loc[sce, "wall_s_to_sceua_final"]
    note = (f"real CAMELS streamflow (Daymet), Case 2 temporal split, {n_basins} basins, HBV; paper: Case 1 soil "
            f"moisture, VIC surrogate, RMSE; {config.mode} mode, seed {config.seed}")
    mode, nb = config.mode, "05_methods_one_axis"
    rule = lambda ok, near: "yes" if ok else ("partly" if near else "no")  # noqa: E731
    return [
        Claim("Methods", "dPL reaches SCE-UA's final test score in fewer epochs (forward runs per site)",
              "5-310 epochs (dPL) vs 840 (SCE-UA) to RMSE 0.05 (Fig. 1e-f)",
              f"gA {e[ga]:.1f}, gZ {e[gz]:.1f} vs SCE-UA {e[sce]:.0f} epochs to median test NSE {final[sce]:.2f}",
              cap_quick(rule(len(fewer) == 2, bool(fewer)), mode), "real", mode, nb, note, key="fewer_epochs"),
        Claim("Methods", "dPL's final test score nearly identical to or better than SCE-UA's",
              "nearly identical ending RMSE, dPL marginally better (Fig. 1e-f)",
              f"median test NSE gA {final[ga]:.2f} vs SCE-UA {final[sce]:.2f} ({gap:+.2f})",
              cap_quick(rule(gap >= -0.02, gap >= -0.05), mode), "real", mode, nb, note, key="final_vs_sceua"),
        Claim("Methods", "dPL reaches SCE-UA's final test score in less wall time",
              "9.9 vs 253 min (1/82), 11 vs 1,004 min (1/42)", f"{w_ga:.1f} s (gA) vs {w_sce:.1f} s (SCE-UA)",
              cap_quick(rule(pd.notna(w_ga) and (pd.isna(w_sce) or w_ga < w_sce), False), mode), "real", mode, nb,
              note + "; both on the same CPU, fused C HBV", timing=True, key="less_wall_time"),
        Claim("Methods", "gZ vs gA, final median test NSE", "gZ slightly better than gA (Case 1, Fig. 2d)",
              f"gZ {final[gz]:.2f} vs gA {final[ga]:.2f} ({gz_gap:+.2f})",
              cap_quick(rule(gz_gap >= 0, gz_gap >= -0.02), mode), "real", mode, nb,
              note + "; gZ test parameters from training-period series", key="gz_vs_ga"),
    ]

