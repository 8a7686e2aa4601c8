"""The fused HBV kernel gives the same bits on every x86-64 code path (AVX-512, AVX2, baseline SSE2).

The library ships AVX-512/AVX2/baseline clones chosen by the CPU at load time; with FMA
contraction off and no reassociation, each must round alike, or results would move with the CPU
that runs them (the portability the key results rely on). The AVX2 and baseline clones are built
alone (``DPLPAPER_HBV_ISA``) in subprocesses and their forward and gradients compared bit for bit
with the default build in this process, which runs the CPU's best clone (AVX-512 where present:
so that one is covered too). About 20 s: two compilations of 6-7 s, cached after."""
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dplpaper.models import hbv_fused

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import cpu_flags  # noqa: E402

CHILD = """
import json, sys, numpy as np, torch
from dplpaper.models.hbv import HBV
from dplpaper.models import hbv_fused


def bits():
    g = torch.Generator().manual_seed(3)
    T, B, M = 400, 7, 4
    P = torch.rand(T, B, generator=g) * 20 * (torch.rand(T, B, generator=g) < 0.35)
    day = torch.arange(T, dtype=torch.float32)[:, None]
    Tm = 10 * torch.sin(2 * np.pi * day / 365) + 3 * torch.randn(T, B, generator=g)
    E = torch.clamp(2 + 2 * torch.sin(2 * np.pi * day / 365), min=0).expand(T, B)
    forcing = torch.stack([P, Tm, E], -1)
    u = (0.05 + 0.9 * torch.rand(B, 14, M, generator=g)).requires_grad_()
    q = HBV(nmul=M, backend="fused")(forcing, u)["streamflow"]
    (q * torch.linspace(0.5, 1.5, T)[:, None]).sum().backward()
    assert hbv_fused.available(), hbv_fused.unavailable_reason()
    out = np.concatenate([q.detach().numpy().ravel(), u.grad.numpy().ravel()]).astype(np.float32)
    return {"isa": hbv_fused.isa(), "bits": out.view(np.uint32).tolist()}


if __name__ == "__main__":
    sys.stdout.write(json.dumps(bits()))
"""


def _run(path: str) -> dict:
    env = dict(os.environ, DPLPAPER_HBV_ISA=path, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or not hbv_fused.available(),
                    reason="x86-64 clones of the fused HBV kernel")
def test_every_code_path_gives_the_same_bits(monkeypatch):
    monkeypatch.delenv("DPLPAPER_HBV_ISA", raising=False)
    scope: dict = {"__name__": "hbv_isa_child"}
    exec(compile(CHILD, "child", "exec"), scope)                 # the default build, in this process
    ref = scope["bits"]()
    assert ref["isa"] == "auto"
    for p in ["baseline"] + (["avx2"] if "avx2" in cpu_flags() else []):
        got = _run(p)
        assert got["isa"] == p
        diff = np.flatnonzero(np.asarray(got["bits"]) != np.asarray(ref["bits"]))
        assert diff.size == 0, f"{p}: {diff.size} of {len(ref['bits'])} values differ from the clones' (first at {diff[:5]})"


def test_bad_isa_names_the_variable(monkeypatch):
    monkeypatch.setenv("DPLPAPER_HBV_ISA", "avx1024")
    with pytest.raises(ValueError, match="DPLPAPER_HBV_ISA"):
        hbv_fused.isa()
    monkeypatch.setenv("DPLPAPER_HBV_ISA", "AVX2")
    assert hbv_fused.isa() == "avx2"
