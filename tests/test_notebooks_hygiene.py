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
def test_committed_outputs_have_no_errors(path: Path):
    nb = nbformat.read(path, as_version=4)
    for c in nb.cells:
        if c.cell_type == "code":
            for out in c.get("outputs", []):
                assert out.get("output_type") != "error", f"{path.name}: committed outputs contain an error"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_key_results_checked_not_printed_digits(path: Path):
    """Key results go through dplpaper.keyresults (tolerances), not nbval's exact output comparison."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    for c in nb.cells:
        assert "NBVAL_CHECK_OUTPUT" not in c.source, \
            f"{path.name}: cell {c.get('id')} still mentions NBVAL_CHECK_OUTPUT (record key results with KeyResults)"
    checked = [c for c in code if "KeyResults(" in c.source and ".check()" in c.source]
    assert checked, f"{path.name}: no cell records its key results with KeyResults(...) and .check()"
    assert any(f'KeyResults("{path.stem}"' in c.source for c in checked), \
        f"{path.name}: KeyResults must be named after the notebook: KeyResults(\"{path.stem}\", mode=mode)"
    assert any("from dplpaper.keyresults import KeyResults" in c.source for c in code), \
        f"{path.name}: import KeyResults in the import cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_no_function_or_class_definitions(path: Path):
    """Notebooks only call the library and plot: logic lives in dplpaper/, where it is tested."""
    nb = nbformat.read(path, as_version=4)
    for c in nb.cells:
        if c.cell_type == "code":
            for line in c.source.splitlines():
                assert not line.startswith(("def ", "class ")), f"{path.name}: move `{line.strip()}` into dplpaper/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_code_inputs_folded_in_the_book(path: Path):
    """Pages read figures first: every code cell carries Jupyter Book's ``hide-input`` tag."""
    nb = nbformat.read(path, as_version=4)
    bare = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "hide-input" not in c.metadata.get("tags", [])]
    assert not bare, f"{path.name}: code cells {bare} lack the 'hide-input' tag"


#: every notebook's claims and verdicts come from library code (issue 14)
CLAIMS_FROM_LIBRARY = tuple(p.stem for p in NOTEBOOKS)
#: what such a notebook must not do itself: build claims, judge, write tables, parse method labels
NOT_IN_NOTEBOOKS = ("Claim(", "verdict(", ".to_csv(", "lambda", ".startswith(", ".endswith(")


@pytest.mark.parametrize("name", CLAIMS_FROM_LIBRARY)
def test_notebook_only_calls_and_plots(name: str):
    path = next(p for p in NOTEBOOKS if p.stem == name)
    nb = nbformat.read(path, as_version=4)
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    found = [s for s in NOT_IN_NOTEBOOKS if s in code]
    assert not found, f"{name}: {found} belong in library code (dplpaper.experiments.archived, dplpaper.verdicts)"
