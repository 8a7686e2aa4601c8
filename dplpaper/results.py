"""Results files shared by the notebooks, the book and the "Paper vs this package" page.

Every case-study notebook writes its headline numbers with :func:`write_claims`, one JSON file per
notebook under ``results/claims/``; the results page reads them all with :func:`read_claims`.
A row is one claim of the paper, with the paper's number, ours, whether ours replicates the
claim, and whether our number comes from real data or from a twin experiment.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def results_dir(*parts: str) -> Path:
    """``$DPLPAPER_RESULTS`` or ``<repo>/results``, joined with ``parts`` and created."""
    base = Path(os.environ.get("DPLPAPER_RESULTS", ROOT / "results"))
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


class RunStore:
    """One run's result files: ``results/<case>/<kind>_<label><_tag>.<ext>``, written through it,
    remembered in order, and copied to ``book/full_runs/<case>/`` by :meth:`archive` with the
    provenance beside them.

    ``label`` is the run's mode (``"quick"``/``"full"``), with a prefix where a case has variants
    (Case 1: ``"real_full"``); ``tag`` tells runs of one mode apart (``"daymet_reg_f8"``)."""

    def __init__(self, case: str, label: str, tag: str = ""):
        if not case or not label:
            raise ValueError(f"RunStore needs a case and a label, got {case!r}, {label!r}")
        self.case, self.label, self.tag = case, label, tag.lstrip("_")
        self.files: list[Path] = []

    @property
    def stem_suffix(self) -> str:
        return f"{self.label}_{self.tag}" if self.tag else self.label

    def path(self, kind: str, ext: str = "csv") -> Path:
        """Where ``kind`` (e.g. ``"metrics"``) of this run lives (the folder is created)."""
        return results_dir(self.case) / f"{kind}_{self.stem_suffix}.{ext}"

    def _remember(self, path: Path) -> Path:
        if path not in self.files:
            self.files.append(path)
        return path

    def write_table(self, kind: str, table: pd.DataFrame, index: bool = False) -> Path:
        """Write ``table`` as ``kind``'s CSV; returns its path."""
        path = self.path(kind)
        table.to_csv(path, index=index)
        return self._remember(path)

    def add(self, kind: str, ext: str = "csv") -> Path:
        """Record a file written by other means (e.g. NetCDF) as part of the run; returns its path."""
        return self._remember(self.path(kind, ext))

    def write_provenance(self, prov: dict) -> Path:
        """The provenance JSON beside the run's first table (``provenance_<first stem>.json``)."""
        if not self.files:
            raise ValueError(f"RunStore({self.case!r}, {self.stem_suffix!r}): no file written before the provenance")
        path = self.files[0].parent / f"provenance_{self.files[0].stem}.json"
        path.write_text(json.dumps(prov, indent=2))
        return path

    def archive(self, prov: dict, kinds: list[str] | None = None, folder: Path | None = None) -> Path:
        """Copy the run's CSV tables (or those of ``kinds``) and ``prov`` to ``book/full_runs/<case>/``."""
        files = [f for f in self.files if f.suffix == ".csv" and (kinds is None or f.stem.rsplit(
            f"_{self.stem_suffix}", 1)[0] in kinds)]
        return archive_run(self.case, files, prov, folder=folder)


@dataclass
class Claim:
    """One paper claim and our number for it.

    Attributes:
        case: e.g. ``"Case 1"``.
        claim: the claim in words, e.g. ``"median test NSE, dPL (HBV gA) vs regionalization"``.
        paper: the paper's number(s) as text, e.g. ``"0.44 vs 0.32"``.
        ours: our number(s) as text, formatted by the notebook from computed values.
        replicated: ``"yes"``, ``"no"``, ``"partly"`` or ``"n/a"``.
        data: ``"real"`` or ``"twin"`` (where our number comes from).
        mode: ``"quick"`` or ``"full"``.
        notebook: the notebook that computed it.
        note: anything a reader must know (e.g. different forcing or period).
        timing: True when the verdict rests on wall-clock time, which depends on the machine and
            its load; such rows are shown but left out of the checked (nbval) summaries.
        key: a stable identifier (e.g. ``"full_daymet_dpl_8_vs_regionalization_8"``) for code that
            picks a claim (key results, tests) without parsing its text; not shown in the book.
    """

    case: str
    claim: str
    paper: str
    ours: str
    replicated: str
    data: str
    mode: str
    notebook: str
    note: str = ""
    timing: bool = False
    key: str = ""

    def __post_init__(self) -> None:
        if self.replicated not in {"yes", "no", "partly", "n/a"}:
            raise ValueError(f"replicated must be yes/no/partly/n/a, got {self.replicated!r}")
        if self.data not in {"real", "twin"}:
            raise ValueError(f"data must be 'real' or 'twin', got {self.data!r}")


def write_claims(notebook: str, claims: list[Claim]) -> Path:
    """Write the claims of one notebook to ``results/claims/<notebook>.json`` (overwrites)."""
    path = results_dir("claims") / f"{notebook}.json"
    path.write_text(json.dumps([asdict(c) for c in claims], indent=2))
    return path


def read_claims() -> pd.DataFrame:
    """All claims written so far, one row each, ordered by case and notebook."""
    rows = []
    for f in sorted(results_dir("claims").glob("*.json")):
        rows += json.loads(f.read_text())
    cols = [f.name for f in Claim.__dataclass_fields__.values()]
    df = pd.DataFrame(rows, columns=cols)
    df["timing"] = df["timing"].fillna(False).astype(bool)
    return df.sort_values(["case", "notebook"], kind="stable").reset_index(drop=True)


#: background colour of each verdict on the rendered results page
VERDICT_COLOURS = {"yes": "#c8e6c9", "partly": "#fff3c4", "no": "#ffcdd2", "n/a": "#eceff1"}

#: columns of the rendered claims tables, in order
CLAIM_COLUMNS = ("claim", "paper", "ours", "replicated", "data", "mode", "note")


def claims_html(rows: pd.DataFrame, columns=CLAIM_COLUMNS) -> str:
    """An HTML ``<table>`` of claims (rows of :func:`read_claims`) for the book: one row per claim,
    ``columns`` in order, the ``replicated`` cell coloured by verdict (:data:`VERDICT_COLOURS`),
    text escaped, no index. Jupyter Book renders it as a real table (a Markdown string would stay
    raw text in a notebook output)."""
    missing = [c for c in columns if c not in rows.columns]
    if missing:
        raise ValueError(f"claims_html: columns {missing} not in the claims table")
    table = rows[list(columns)].reset_index(drop=True).fillna("")

    def colour(v):
        c = VERDICT_COLOURS.get(str(v))
        return f"background-color: {c}; font-weight: bold" if c else ""

    import hashlib

    uid = hashlib.sha1(table.to_csv(index=False).encode()).hexdigest()[:10]  # stable ids: same table, same HTML
    styler = table.style.set_uuid(uid).hide(axis="index").format(escape="html")
    if "replicated" in table:
        styler = styler.map(colour, subset=["replicated"])
    styler = styler.set_table_attributes('class="dataframe claims"').set_properties(
        **{"text-align": "left", "vertical-align": "top"})
    return styler.to_html()


def verdict(gap: float, mode: str, margin: float = 0.05) -> str:
    """Replication verdict for a claim "ours beats the baseline" from the score gap (ours - baseline).

    ``"no"`` when the gap is not positive (or NaN); ``"partly"`` in quick mode (few sites, small
    budgets: the direction is shown, not the size) or when the gap is below ``margin``; else ``"yes"``.
    """
    if not gap > 0:
        return "no"
    if mode == "quick" or gap < margin:
        return "partly"
    return "yes"


def benchmark_results(names=("hbv", "sceua", "sceua_overhead", "summary"),
                      folder: Path | None = None) -> dict[str, dict | None]:
    """The JSON written by ``make bench`` (``benchmarks/results/<name>.json``); ``None`` where absent."""
    folder = Path(folder) if folder is not None else ROOT / "benchmarks" / "results"
    out = {}
    for name in names:
        path = folder / f"{name}.json"
        out[name] = json.loads(path.read_text()) if path.exists() else None
    return out


def sig(x: float, n: int = 2) -> float:
    """``x`` rounded to ``n`` significant digits (for printed results that nbval compares)."""
    return float(f"{x:.{n}g}")


# ---------------------------------------------------------------------------- archived full-mode runs
#: Tracked folder holding the small result tables of full-mode runs (one sub-folder per case),
#: so that the book can show full-mode numbers without re-running hours of computation.
ARCHIVE_DIR = ROOT / "book" / "full_runs"


def _archive_root(folder: Path | None = None) -> Path:
    """``folder``, else ``$DPLPAPER_ARCHIVE``, else :data:`ARCHIVE_DIR`."""
    return Path(folder or os.environ.get("DPLPAPER_ARCHIVE") or ARCHIVE_DIR)


def git_state() -> dict:
    """``{"git_commit": HEAD, "git_dirty": tracked files changed}`` of the repository now (take it
    when a run *starts*: the tree may change while it runs). Empty commit outside a checkout."""
    import subprocess

    def _git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"git_commit": _git("rev-parse", "HEAD"), "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no"))}


def provenance(command: str, started: float, finished: float, git: dict | None = None, **extra) -> dict:
    """Who/what/when of a run: the command, git commit (and whether tracked files differed from it;
    pass ``git`` = :func:`git_state` taken at the start, else it is read now), start and end time
    (UTC, ISO), wall time, host CPU count, torch / OpenMP thread settings, plus ``extra``."""
    import datetime as _dt
    import platform

    import torch

    iso = lambda t: _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="seconds")  # noqa: E731
    g = git_state() if git is None else git
    return {"command": command, "git_commit": g["git_commit"], "git_dirty": g["git_dirty"],
            "started_utc": iso(started), "finished_utc": iso(finished), "wall_time_s": round(finished - started, 1),
            "machine": platform.machine(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "torch": torch.__version__, **extra}


def archive_run(case: str, files: list[Path], prov: dict, folder: Path | None = None) -> Path:
    """Copy a run's small result ``files`` and its ``prov`` (:func:`provenance`) to
    ``book/full_runs/<case>/`` (``provenance_<first file stem>.json``); returns the folder."""
    import shutil

    dest = _archive_root(folder) / case
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        f = Path(f)
        if not f.exists():
            raise FileNotFoundError(f"archive_run: {f} does not exist")
        shutil.copy2(f, dest / f.name)
    stem = Path(files[0]).stem if files else "run"
    (dest / f"provenance_{stem}.json").write_text(json.dumps(prov, indent=2))
    return dest


def archived(case: str, name: str, folder: Path | None = None) -> tuple[pd.DataFrame | None, dict | None]:
    """(table, provenance) of an archived run file ``book/full_runs/<case>/<name>`` (a CSV);
    ``(None, None)`` when it was never archived."""
    dest = _archive_root(folder) / case
    path = dest / name
    if not path.exists():
        return None, None
    prov_path = dest / f"provenance_{path.stem}.json"
    prov = json.loads(prov_path.read_text()) if prov_path.exists() else None
    return pd.read_csv(path, dtype={"site": str}), prov


def describe_provenance(prov: dict | None) -> str:
    """One or two lines on how an archived run was made (:func:`provenance`, or a device run's
    collected provenance): command, commit, finish time, data, budgets and where/how long it ran.
    Only the fields present are named."""
    if not prov:
        return "no provenance recorded"
    head = f"`{prov.get('command', '?')}`"
    bits = []
    if prov.get("git_commit"):
        bits.append(f"commit {prov['git_commit'][:10]}" + (" (with local changes)" if prov.get("git_dirty") else ""))
    if prov.get("finished_utc"):
        bits.append(f"finished {prov['finished_utc']}")
    if "n_basins" in prov:
        bits.append(f"{prov['n_basins']} basins" + (f" in {prov['k_folds']} folds" if "k_folds" in prov else ""))
    if "folds" in prov:
        bits.append(f"tested folds {prov['folds']}")
    for key, name in (("seeds", "seeds"), ("scaling_seeds", "scaling seeds"), ("forcing", "forcing")):
        if key in prov:
            bits.append(f"{name} {prov[key]}")
    if "dpl_epochs" in prov and "dpl" in str(prov.get("methods", "dpl")):
        bits.append(f"dPL {prov['dpl_epochs']} epochs")
    no_reg = prov.get("parts") == ["scaling"] and not prov.get("scaling_baseline", True)
    if "regionalization" in str(prov.get("methods", "")) and not no_reg:
        reg = f"regionalization {prov.get('regionalization_max_evals', '?')} SCE-UA evaluations"
        if prov.get("regionalization_refine_steps"):
            reg += f" + {prov['regionalization_refine_steps']} gradient steps"
            if prov.get("regionalization_refine_max_steps"):
                reg += f" (to convergence, at most {prov['regionalization_refine_max_steps']})"
        bits.append(reg)
    if "wall_time_per_run_s" in prov:
        w = prov["wall_time_per_run_s"]
        bits.append(f"{prov.get('n_runs', len(w))} runs of {min(w) / 60:.1f}-{max(w) / 60:.1f} min, "
                    f"{prov.get('threads_per_run', '?')} thread each, side by side on {prov.get('cpu_count', '?')} "
                    "CPU cores")
    elif "wall_time_s" in prov:
        bits.append(f"{prov['wall_time_s'] / 60:.0f} min on {prov.get('cpu_count', '?')} CPU cores")
    return head + "\n  " + ", ".join(bits)


def page_summary(claims: list[Claim], lead: str = "") -> str:
    """Markdown for the top of a case page ("what this page shows and what we found"), written from
    computed claims: ``lead`` (one sentence on what the page shows), then one bullet per claim with a
    verdict (``n/a`` rows: their number only), quick-mode rows first, then the archived full runs."""
    lines = [lead.strip()] if lead.strip() else []
    for mode in ("quick", "full"):
        rows = [c for c in claims if c.mode == mode]
        if not rows:
            continue
        lines.append("")
        lines.append(f"*{'This run (quick mode)' if mode == 'quick' else 'Archived full runs'}:*")
        lines.append("")
        for c in rows:
            paper = f" (paper: {c.paper})" if c.paper and c.paper != "n/a" else ""
            verdict_txt = f" — replicated: **{c.replicated}**" if c.replicated != "n/a" else ""
            lines.append(f"- {c.claim}: {c.ours}{paper}{verdict_txt}")
    return "\n".join(lines).strip() + "\n"

