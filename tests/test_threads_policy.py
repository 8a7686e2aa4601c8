"""The thread policy (dplpaper/threads.py) and the notebook groups that `reproduce --jobs` runs side by side."""
import subprocess
import sys
from pathlib import Path

import pytest

from dplpaper import reproduce, threads


def test_configured_threads_order_and_errors():
    assert threads.configured_threads({}) == threads.DEFAULT_THREADS == 1
    assert threads.configured_threads({"OMP_NUM_THREADS": "2"}) == 2
    assert threads.configured_threads({"OMP_NUM_THREADS": "2", "DPLPAPER_THREADS": "3"}) == 3
    assert threads.configured_threads({"DPLPAPER_THREADS": "", "OMP_NUM_THREADS": "4"}) == 4
    for bad in ("0", "-1", "two"):
        with pytest.raises(ValueError, match="DPLPAPER_THREADS"):
            threads.configured_threads({"DPLPAPER_THREADS": bad})


def test_import_sets_one_thread_unless_asked():
    code = "import dplpaper, torch; print(torch.get_num_threads())"
    root = str(Path(__file__).resolve().parents[1])
    env_base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": root}
    out = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**env_base, **extra}).stdout.strip()
           for extra in ({}, {"DPLPAPER_THREADS": "2"})]
    assert out == ["1", "2"]


def test_notebook_groups_keep_cases_together_and_results_page_last():
    nbs = reproduce.notebook_order()
    groups = reproduce.notebook_groups(nbs)
    assert sorted(p for g in groups for p in g) == sorted(nbs)            # every notebook once
    for g in groups:
        assert len({p.name[0] for p in g}) == 1                            # one case per group
        assert [p.name for p in g] == sorted(p.name for p in g)           # in order within it
    assert groups[-1][0].name.startswith("90_")                            # results page last
    fake = [Path(n) for n in ("90_a.ipynb", "11_b.ipynb", "10_a.ipynb", "20_c.ipynb")]
    assert [[p.name for p in g] for g in reproduce.notebook_groups(sorted(fake))] == [
        ["10_a.ipynb", "11_b.ipynb"], ["20_c.ipynb"], ["90_a.ipynb"]]


def test_reproduce_rejects_zero_jobs(capsys):
    with pytest.raises(SystemExit) as e:
        reproduce.main(["--jobs", "0", "--no-book"])
    assert e.value.code == 2 and "--jobs 0" in capsys.readouterr().err


def test_xdist_scopes_keep_each_case_on_one_worker():
    import importlib.util
    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("root_conftest", root / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod._scope("notebooks/10_case1_surrogate.ipynb::Cell 3") == mod._scope("notebooks/14_case1_real.ipynb::Cell 0")
    assert mod._scope("notebooks/10_case1_surrogate.ipynb::Cell 3") != mod._scope("notebooks/20_case2_temporal.ipynb::Cell 0")
    assert mod._scope("tests/test_x.py::test_a") == "tests/test_x.py::test_a"
    # the same groups as `reproduce --jobs` (dplpaper.reproduce.group_key)
    for group in reproduce.notebook_groups(reproduce.notebook_order()):
        assert {mod._scope(f"notebooks/{nb.name}::Cell 0") for nb in group} == {
            "notebooks_" + reproduce.group_key(group[0].name)}


def test_longest_notebook_group_first_under_xdist(tmp_path):
    import importlib.util
    from types import SimpleNamespace
    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("root_conftest2", root / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod._group_seconds = lambda: {"notebooks_1": 300.0, "notebooks_2": 700.0}
    items = [SimpleNamespace(nodeid=n) for n in ("tests/t.py::a", "notebooks/10_x.ipynb::Cell 0",
                                                   "notebooks/11_y.ipynb::Cell 0", "notebooks/20_z.ipynb::Cell 0",
                                                   "notebooks/01_w.ipynb::Cell 0")]
    cfg = SimpleNamespace(getvalue=lambda k: "loadgroup")
    mod.pytest_collection_modifyitems(cfg, items)
    assert [i.nodeid.split("::")[0] for i in items] == ["notebooks/20_z.ipynb", "notebooks/10_x.ipynb",
                                                        "notebooks/11_y.ipynb", "notebooks/01_w.ipynb", "tests/t.py"]
