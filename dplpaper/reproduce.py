"""Reproduce the book: execute every notebook with papermill, then build the Jupyter Book.

``python -m dplpaper.reproduce --mode quick`` (what ``make reproduce`` runs):

1. executes each notebook of ``notebooks/`` listed in :data:`NOTEBOOKS` with papermill into
   ``book/executed/`` (the source notebooks are never modified; ``--refresh-outputs`` copies the
   executed quick-mode notebooks back over ``notebooks/`` so that nbval compares against them);
2. builds the Jupyter Book (v1, offline) from ``book/`` with the root ``_config.yml`` into
   ``book/_build/html``.

Each notebook has a cell tagged ``parameters`` whose defaults are the quick mode; ``--mode full``
passes ``mode="full"`` to every notebook, which then uses all sites, more epochs and seeds.

``--jobs N`` (default 2, what ``make reproduce`` uses) executes independent notebook *groups* in
``N`` processes side by side: the notebooks of one case share caches (Case 1's surrogate, Case 3's
folds) and run in order within their group (:func:`notebook_groups`); the results page (``90_``),
which reads every case's output, runs after all others. Each process runs one PyTorch thread
(:mod:`dplpaper.threads`), so two jobs use two cores without the thread contention that slows
two-thread runs on a busy machine. ``--timings PATH`` writes each notebook's wall time (JSON).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
BOOK_DIR = ROOT / "book"
EXECUTED_DIR = BOOK_DIR / "executed"
RESULTS_DIR = ROOT / "results"


def notebook_order() -> list[Path]:
    """Notebooks in execution order: sorted by their numeric prefix (results page last)."""
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def check_only(only: list[str] | None) -> list[Path]:
    """The notebooks that ``--only`` selects; a key that matches no notebook raises ValueError
    listing the notebooks (so a typo never runs nothing and exits 0)."""
    nbs = notebook_order()
    if only is None:
        return nbs
    if not only:
        raise ValueError("--only needs at least one name (or leave it out to run every notebook)")
    names = [nb.name for nb in nbs]
    bad = [k for k in only if not any(k in n for n in names)]
    if bad:
        raise ValueError(f"--only {', '.join(map(repr, bad))} matches no notebook; notebooks: {', '.join(names)}")
    return [nb for nb in nbs if any(k in nb.name for k in only)]


#: notebook groups run after every other group has finished (they read the others' results)
LAST_GROUPS = ("9",)


def group_key(name: str) -> str:
    """A notebook's group: the first digit of its number (``0x``, ``1x`` = Case 1, ...). The root
    ``conftest.py`` groups the notebooks for pytest-xdist by the same rule."""
    return name[0]


def notebook_groups(nbs: list[Path]) -> list[list[Path]]:
    """Notebooks grouped by :func:`group_key`, each group in execution order; groups in
    :data:`LAST_GROUPS` come last."""
    groups: dict[str, list[Path]] = {}
    for nb in nbs:
        groups.setdefault(group_key(nb.name), []).append(nb)
    keys = sorted(groups, key=lambda k: (k in LAST_GROUPS, k))
    return [groups[k] for k in keys]


def _write_timings(path: str | os.PathLike | None, rows: list[dict]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(rows, indent=1) + "\n")


def execute_parallel(mode: str = "quick", only: list[str] | None = None, refresh_outputs: bool = False,
                     jobs: int = 2, timings: str | os.PathLike | None = None) -> list[dict]:
    """Execute the notebook groups in up to ``jobs`` child processes (each runs
    :func:`execute_notebooks` on one group); groups in :data:`LAST_GROUPS` start when all others
    are done. Returns the timing rows of every notebook (name, seconds, start/end relative to the
    start, group). A failing group fails the whole run (after the running ones finish)."""
    import tempfile

    groups = list(enumerate(notebook_groups(check_only(only))))
    last = [(i, g) for i, g in groups if group_key(g[0].name) in LAST_GROUPS]
    first = [(i, g) for i, g in groups if group_key(g[0].name) not in LAST_GROUPS]
    t_start = time.time()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="dplpaper_reproduce_") as tmp:
        def launch(i, group):
            tfile = Path(tmp) / f"group{i}.json"
            cmd = [sys.executable, "-m", "dplpaper.reproduce", "--mode", mode, "--no-book", "--jobs", "1",
                   "--timings", str(tfile), "--only", *[nb.name for nb in group]]
            if refresh_outputs:
                cmd.append("--refresh-outputs")
            print(f"[reproduce] group {i}: {', '.join(nb.name for nb in group)}", flush=True)
            return subprocess.Popen(cmd, cwd=ROOT), tfile

        failed = []
        for batch in (first, last):
            pending = list(batch)
            running = []
            while pending or running:
                while pending and len(running) < max(1, jobs):
                    i, g = pending.pop(0)
                    running.append((i, g, *launch(i, g)))
                time.sleep(0.5)
                for item in list(running):
                    i, g, proc, tfile = item
                    if proc.poll() is None:
                        continue
                    running.remove(item)
                    if proc.returncode != 0:
                        failed.append((g, proc.returncode))
                    if tfile.exists():
                        for r in json.loads(tfile.read_text()):
                            rows.append({**r, "group": i, "start_s": r["start"] - t_start,
                                         "end_s": r["end"] - t_start})
            if failed:
                break
    rows.sort(key=lambda r: r["start_s"])
    _write_timings(timings, rows)
    if failed:
        names = "; ".join(f"{', '.join(nb.name for nb in g)} (exit {rc})" for g, rc in failed)
        raise RuntimeError(f"notebook execution failed: {names}")
    print(f"[reproduce] {len(rows)} notebooks in {time.time() - t_start:.1f} s with {jobs} jobs", flush=True)
    return rows


def execute_notebooks(mode: str = "quick", only: list[str] | None = None,
                      refresh_outputs: bool = False, timings: str | os.PathLike | None = None) -> list[Path]:
    """Run the notebooks with papermill, one after the other; return the executed copies' paths.
    ``timings``: write each notebook's wall time there (JSON)."""
    import papermill as pm

    check_only(only)
    if refresh_outputs and mode != "quick":
        raise ValueError("--refresh-outputs only stores quick-mode outputs (what nbval checks)")
    EXECUTED_DIR.mkdir(parents=True, exist_ok=True)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    done, rows = [], []
    for nb in notebook_order():
        if only and not any(key in nb.name for key in only):
            continue
        out = EXECUTED_DIR / nb.name
        t0, start = time.perf_counter(), time.time()
        print(f"[reproduce] {nb.name} (mode={mode}) ...", flush=True)
        params = {} if mode == "quick" else {"mode": mode}
        pm.execute_notebook(str(nb), str(out), parameters=params, kernel_name="python3",
                            cwd=str(NOTEBOOK_DIR), progress_bar=False, log_output=False)
        seconds = time.perf_counter() - t0
        print(f"[reproduce] {nb.name} done in {seconds:.1f} s", flush=True)
        rows.append({"notebook": nb.name, "seconds": seconds, "start": start, "end": time.time(),
                     "pid": os.getpid()})
        _write_timings(timings, rows)
        if refresh_outputs:
            if mode != "quick":
                raise ValueError("--refresh-outputs only stores quick-mode outputs (what nbval checks)")
            shutil.copyfile(out, nb)
        done.append(out)
    return done


#: MathJax 3 as one self-contained file (SVG output, fonts inside), served with the book so that
#: its math renders offline; from the ``django-static-mathjax`` wheel (static files only, Apache-2.0)
MATHJAX_FILE = Path("mathjax") / "tex-svg.js"


def install_mathjax(static_dir: Path | None = None) -> Path:
    """Copy MathJax's ``tex-svg.js`` from the installed ``mathjax`` static package into the book's
    ``_static/`` (``_config.yml`` points ``mathjax_path`` at it); returns the copy's path."""
    import importlib.util

    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("MathJax for the book: pip install django-static-mathjax (listed in requirements.txt)")
    src = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax" / "es5" / "tex-svg.js"
    if not src.exists():
        raise FileNotFoundError(f"MathJax file {src} missing from the installed package")
    dest = (static_dir or BOOK_DIR / "_static") / MATHJAX_FILE
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists() or dest.stat().st_size != src.stat().st_size:
        shutil.copyfile(src, dest)
    return dest


def build_book(book_dir: Path | None = None) -> Path:
    """Build the Jupyter Book to ``<book_dir>/_build/html`` (offline: notebooks are not re-executed
    and MathJax is served from the book's ``_static``). ``book_dir``: the pages, ``_toc.yml`` and
    ``executed/`` notebooks (default ``book/``; a test builds a copy from the committed outputs)."""
    book = Path(book_dir or BOOK_DIR)
    if not any((book / "executed").glob("*.ipynb")):
        raise FileNotFoundError(f"no executed notebooks in {book / 'executed'}: run without --book-only first")
    install_mathjax(book / "_static")
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(book), "--config", str(ROOT / "_config.yml"),
           "--toc", str(book / "_toc.yml"), "--path-output", str(book)]
    print("[reproduce] " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)
    index = book / "_build" / "html" / "index.html"
    if not index.exists():
        raise FileNotFoundError(f"the book build did not write {index}")
    print(f"[reproduce] book written to {index}", flush=True)
    return index


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dplpaper.reproduce", description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=["quick", "full"], default="quick")
    p.add_argument("--only", nargs="*", help="run only notebooks whose name contains one of these")
    p.add_argument("--no-book", action="store_true", help="execute notebooks, skip the book build")
    p.add_argument("--book-only", action="store_true", help="build the book from executed notebooks")
    p.add_argument("--refresh-outputs", action="store_true",
                   help="copy executed quick-mode notebooks back over notebooks/ (for nbval)")
    p.add_argument("--jobs", type=int, default=2,
                   help="notebook groups executed side by side, one process each (default 2; 1 = in order)")
    p.add_argument("--timings", help="write each notebook's wall time to this JSON file")
    a = p.parse_args(argv)
    try:  # validate before anything runs
        check_only(a.only)
        if a.refresh_outputs and a.mode != "quick":
            raise ValueError("--refresh-outputs only stores quick-mode outputs (what nbval checks)")
        if a.jobs < 1:
            raise ValueError(f"--jobs {a.jobs}: expected 1 or more")
    except ValueError as e:
        p.error(str(e))
    # kernels must use the inline backend (figures in the book), never a headless one inherited here
    if os.environ.get("MPLBACKEND", "").lower() == "agg":
        del os.environ["MPLBACKEND"]
    if not a.book_only:
        if a.jobs > 1:
            execute_parallel(a.mode, a.only, a.refresh_outputs, a.jobs, a.timings)
        else:
            execute_notebooks(a.mode, a.only, a.refresh_outputs, a.timings)
    if not a.no_book:
        build_book()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
