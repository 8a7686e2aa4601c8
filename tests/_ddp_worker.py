"""Twin-experiment helpers for tests/test_train.py, and a torchrun worker.

As a script (one process per rank)::

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/_ddp_worker.py OUTDIR

trains gA on the twin problem with the gloo backend and writes ``OUTDIR/rank{r}.pt``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from dplpaper.models.base import ParameterTable, ParamSpec, ProcessModel
from dplpaper.train import TrainingData


class Bucket(ProcessModel):
    """Two-parameter linear reservoir (tests only): ``S += C * P``; ``Q = K * S``; ``S -= Q``."""

    parameter_table = ParameterTable([
        ParamSpec("C", 0.2, 1.0, "-", "runoff coefficient"),
        ParamSpec("K", 0.05, 0.6, "1/d", "recession constant"),
    ])

    def forward(self, forcing, params, warmup=0):
        phys = self.parameter_table.to_physical(params[..., 0], dim=-1)   # [site, 2]
        c, k = phys[:, 0], phys[:, 1]
        s = torch.zeros_like(c)
        q = []
        for t in range(forcing.shape[0]):
            s = s + c * forcing[t, :, 0]
            out = k * s
            s = s - out
            q.append(out)
        return {"streamflow": torch.stack(q)[warmup:]}


def true_unit_params(attributes: torch.Tensor) -> torch.Tensor:
    """Smooth, nonlinear truth: ``[site, 2, 1]`` in (0, 1) from ``[site, 4]`` attributes."""
    a = attributes.double()
    u0 = torch.sigmoid(1.5 * a[:, 0] - 1.0 * a[:, 1] + 0.3)
    u1 = torch.sigmoid(1.2 * a[:, 2] + 0.8 * torch.tanh(a[:, 3] * a[:, 0]))
    return torch.stack([u0, u1], dim=1).unsqueeze(-1).to(attributes.dtype)


def make_twin(n_sites: int = 64, n_time: int = 400, seed: int = 0, gap: float = 0.1,
              with_series: bool = False) -> tuple[TrainingData, torch.Tensor]:
    """Synthetic twin: random attributes, rain forcing, obs from the Bucket with the true
    parameters, a fraction ``gap`` of obs set to NaN. Returns (data, true unit params)."""
    rng = np.random.default_rng(seed)
    attrs = torch.tensor(rng.normal(size=(n_sites, 4)), dtype=torch.float32)
    rain = rng.exponential(8.0, (n_time, n_sites)) * (rng.random((n_time, n_sites)) < 0.3)
    forcing = torch.zeros(n_time, n_sites, 3)
    forcing[:, :, 0] = torch.tensor(rain, dtype=torch.float32)
    u_true = true_unit_params(attrs)
    with torch.no_grad():
        q = Bucket()(forcing, u_true)["streamflow"]
    q = q.clone()
    q[torch.tensor(rng.random((n_time, n_sites)) < gap)] = float("nan")
    series = None
    if with_series:
        p_n = (forcing[:, :, 0] - forcing[:, :, 0].mean()) / forcing[:, :, 0].std()
        q_n = (q - q.nanmean()) / q[~torch.isnan(q)].std()
        series = torch.stack([p_n, q_n], dim=-1)
    return TrainingData(forcing, attrs, q, series=series, target_name="streamflow"), u_true


def main(outdir: str) -> None:
    import torch.distributed as dist

    from dplpaper.nets import GA, DPLModel
    from dplpaper.train import TrainConfig, train_dpl

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.set_num_threads(1)
    data, _ = make_twin(n_sites=16, n_time=120, seed=1)
    torch.manual_seed(100 + rank)                    # different init per rank: DDP must sync it
    model = DPLModel(GA(4, 2, hidden=8), Bucket())
    cfg = TrainConfig(epochs=2, batch_sites=8, window_days=40, warmup_days=10, lr=0.01, seed=3,
                      progress=False, checkpoint_dir=str(Path(outdir) / "ckpt"))
    res = train_dpl(model, data, cfg)
    torch.save({"state": res.model.state_dict(), "world": dist.get_world_size(),
                "iters": res.iterations_per_epoch, "loss": res.history["train_loss"].tolist()},
               Path(outdir) / f"rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
