"""The book, built from the committed notebook outputs (no re-execution), read as HTML.

What a reader meets: every notebook page exists, the results page shows real HTML tables with the
claim columns (not raw ``| a | b |`` markdown), no traceback or warning text in rendered outputs,
every image a page references exists, and MathJax is served with the book (math offline).
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from dplpaper import reproduce

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    if shutil.which("jupyter-book") is None and not Path(reproduce.sys.executable).with_name("jupyter-book").exists():
        pytest.skip("jupyter-book not installed")
    book = tmp_path_factory.mktemp("book")
    for f in reproduce.BOOK_DIR.iterdir():
        if f.suffix in (".md", ".yml", ".bib"):
            shutil.copy(f, book / f.name)
    (book / "executed").mkdir()
    for nb in reproduce.notebook_order():   # the committed quick-mode outputs
        shutil.copy(nb, book / "executed" / nb.name)
    index = reproduce.build_book(book)
    return index.parent


def _pages(html: Path) -> dict[str, str]:
    return {p.stem: p.read_text(errors="replace") for p in (html / "executed").glob("*.html")}


def test_every_notebook_page_exists(html):
    pages = _pages(html)
    missing = [nb.stem for nb in reproduce.notebook_order() if nb.stem not in pages]
    assert not missing, f"no HTML page for {missing}"
    assert (html / "index.html").exists()


def test_results_page_has_html_tables_with_claim_columns(html):
    page = _pages(html)["90_paper_vs_package"]
    tables = re.findall(r"<table[^>]*class=\"[^\"]*claims[^\"]*\".*?</table>", page, flags=re.S)
    assert len(tables) >= 3, "the results page should hold one claims table per case and data kind"
    for t in tables:
        for col in ("claim", "paper", "ours", "replicated", "data", "mode"):
            assert f">{col}</th>" in t
    assert "|---|" not in page and "| claim |" not in page


def test_no_tracebacks_or_warnings_in_rendered_outputs(html):
    bad = {}
    for name, page in _pages(html).items():
        outputs = " ".join(re.findall(r'<div class="cell_output.*?</div>\s*</div>', page, flags=re.S))
        for pat in ("Traceback (most recent call last)", "Error:", "Warning:", "IProgress not found"):
            if pat in outputs:
                bad.setdefault(name, []).append(pat)
    assert not bad, f"rendered outputs with error/warning text: {bad}"


def test_referenced_images_exist_and_math_is_offline(html):
    missing = []
    for page in (html / "executed").glob("*.html"):
        for src in re.findall(r'<img[^>]+src="([^"]+)"', page.read_text(errors="replace")):
            if src.startswith("data:") or src.startswith("http"):
                continue
            if not (page.parent / src).resolve().exists():
                missing.append((page.name, src))
    assert not missing, f"images referenced but missing: {missing[:5]}"
    assert (html / "_static" / "mathjax" / "tex-svg.js").exists()
    index = (html / "index.html").read_text()
    assert "cdn.jsdelivr" not in index


def test_case_pages_open_with_a_computed_summary(html):
    """The glued summary ("what this page shows and what we found") is rendered, not left as a raw directive."""
    pages = _pages(html)
    for stem in ("10_case1_surrogate", "11_case1_learning_curves", "12_case1_generalization", "13_case1_parameter_maps",
                 "14_case1_real", "20_case2_temporal", "30_case3_pub", "31_case3_scaling"):
        page = pages[stem]
        assert "What this page shows and what we found" in page, stem
        assert "glue:md" not in page and "glue:" not in re.sub(r"<[^>]+>", "", page).split("What this page shows")[1][:2000], stem
        assert "replicated:" in page, f"{stem}: no claim in the summary"
