"""Root pytest configuration: how ``make test`` spreads the work over pytest-xdist workers.

``make test`` runs ``pytest -n 2 --dist loadgroup notebooks tests``. Every notebook of a case (the
first digit of its number) must run on one worker, in order: they share caches (Case 1's surrogate,
Case 3's folds). xdist's own ``xdist_group`` marks do not take effect with pytest 9 (xdist 3.8
rewrites ``item._nodeid``, which pytest 9 no longer reads), so the grouping is a scheduler here:
a notebook cell's scope is its case group, a unit test is a scope of its own.
"""
import os


def _scope(nodeid: str) -> str:
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
