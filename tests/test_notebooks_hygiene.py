"""Every notebook is papermill-ready and keeps its logic in the library."""
from pathlib import Path

import nbformat
import pytest

from dplpaper.reproduce import notebook_order

NOTEBOOKS = notebook_order()


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_parameters_cell_with_quick_default(path: Path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
    assert 'mode = "quick"' in tagged[0].source, f"{path.name}: parameters cell must default to mode = \"quick\""


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_executed_without_errors_and_has_checked_cells(path: Path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    for c in code:
        for out in c.get("outputs", []):
            assert out.get("output_type") != "error", f"{path.name}: committed outputs contain an error"
    assert any(c.source.lstrip().startswith("# NBVAL_CHECK_OUTPUT") for c in code), \
        f"{path.name}: no cell marked # NBVAL_CHECK_OUTPUT (its key results would go unchecked)"
    assert all(c.get("outputs") or not c.source.strip() or "NBVAL_CHECK_OUTPUT" not in c.source for c in code), \
        f"{path.name}: a checked cell has no committed output (run `make refresh-outputs`)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_no_function_or_class_definitions(path: Path):
    """Notebooks only call the library and plot: logic lives in dplpaper/, where it is tested."""
    nb = nbformat.read(path, as_version=4)
    for c in nb.cells:
        if c.cell_type == "code":
            for line in c.source.splitlines():
                assert not line.startswith(("def ", "class ")), f"{path.name}: move `{line.strip()}` into dplpaper/"
