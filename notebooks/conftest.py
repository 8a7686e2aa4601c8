"""pytest configuration for the notebooks (nbval): key results are checked strictly here.

``dplpaper.keyresults.KeyResults.check`` raises on a key result outside its tolerance only when
``DPLPAPER_CHECK_KEY_RESULTS`` is set; the kernels nbval starts inherit this process's environment.
"""
import os

os.environ.setdefault("DPLPAPER_CHECK_KEY_RESULTS", "1")


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``make test``: ``-n 2 --dist loadgroup``) every notebook of a case runs
    on the same worker, in order: they share caches (Case 1's surrogate, Case 3's folds)."""
    import pytest

    for item in items:
        path = str(getattr(item, "path", item.fspath))
        if path.endswith(".ipynb"):
            name = os.path.basename(path)
            item.add_marker(pytest.mark.xdist_group(name=f"notebooks_{name[0]}"))
