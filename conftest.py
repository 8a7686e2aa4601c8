"""Root pytest configuration: how ``make test`` spreads the work over pytest-xdist workers.

``make test`` runs ``pytest -n 2 --dist loadgroup notebooks tests``. Every notebook of a case (the
first digit of its number) must run on one worker, in order: they share caches (Case 1's surrogate,
Case 3's folds). xdist's own ``xdist_group`` marks do not take effect with pytest 9 (xdist 3.8
rewrites ``item._nodeid``, which pytest 9 no longer reads), so the grouping is a scheduler here:
a notebook cell's scope is its case group, a unit test is a scope of its own. The longest case
groups start first (their seconds in the last idle fresh-clone run, ``benchmarks/results/book.json``),
so that the two workers finish together.
"""
import json
import os
from pathlib import Path


def _scope(nodeid: str) -> str:
    """A test's xdist scope: ``notebooks_<group>`` for a notebook cell (the group rule of
    ``dplpaper.reproduce.group_key``, the first digit; a test holds the two to agree; not imported
    here, so that the controller does not load PyTorch), the node id for a unit test."""
    path = nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        return "notebooks_" + os.path.basename(path)[0]
    return nodeid


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class CaseGroupScheduling(LoadScopeScheduling):
        """Load balancing by scope: one scope per case's notebooks, one per unit test."""

        def _split_scope(self, nodeid: str) -> str:
            return _scope(nodeid)

    return CaseGroupScheduling(config, log)


def _group_seconds() -> dict:
    """Seconds per notebook group in the last idle ``reproduce`` run of ``benchmarks/results/book.json``."""
    path = Path(__file__).resolve().parent / "benchmarks" / "results" / "book.json"
    try:
        runs = [r for r in json.loads(path.read_text())["runs"]
                if r["what"] == "reproduce" and not r["busy"] and "notebooks" in r]
    except (OSError, ValueError, KeyError):
        return {}
    out: dict = {}
    for n in (runs[-1]["notebooks"] if runs else []):
        key = _scope(n["notebook"])
        out[key] = out.get(key, 0.0) + float(n["seconds"])
    return out


def pytest_collection_modifyitems(config, items):
    """Under ``--dist loadgroup``: notebook groups first, longest first (stable within a group)."""
    if config.getvalue("dist") != "loadgroup" and not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    secs = _group_seconds()

    def rank(item):
        scope = _scope(item.nodeid)
        if scope.startswith("notebooks_"):
            return (0, -secs.get(scope, 0.0))
        return (1, 0.0)

    items[:] = sorted(items, key=rank)
