"""Key results of a notebook, checked across machines with a tolerance declared beside each number.

Why: training is chaotic in floating point. The same seeded run is bit-for-bit identical on one
machine, but another CPU (another vector ISA, another BLAS code path) or another thread count
rounds differently, and the difference grows through training: a median NSE of 0.42 on one
machine can be 0.45 on the next. Comparing printed digits (nbval) then fails on every new CPU.
Instead each notebook states its key results with the precision its claim needs::

    kr = KeyResults("20_case2_temporal")
    kr.add("dpl_median_test_nse", 0.6712, tol=0.03, why="seed/CPU spread of a 40-basin median")
    kr.add("verdict_dpl_vs_reg", "partly")            # strings compare exactly
    kr.check()

``check()`` compares with the committed file ``notebooks/key_results/<notebook>.json``
(``{name: {"value": ..., "tol": ..., "why": ...}}``) and raises :class:`KeyResultMismatch`
listing every number outside ``|value - expected| <= tol`` (NaN matches only NaN) when the
notebook runs under pytest/nbval (``make test``; ``notebooks/conftest.py`` sets
``DPLPAPER_CHECK_KEY_RESULTS=1``), so a mismatch fails the test suite; in other runs
(``make reproduce``) it warns and the notebook goes on. The printed table is for the reader. The tolerance that counts is the committed one (a notebook edit cannot loosen a check
without a refresh that shows up in the diff).

Refresh: with ``DPLPAPER_UPDATE_KEY_RESULTS=1`` (``make refresh-outputs`` sets it) ``check()``
writes the file from the current values and tolerances instead of comparing. In full mode
(``mode != "quick"``) nothing is compared: the values go to ``results/key_results/`` only.
"""
from __future__ import annotations

import json
import math
import os
import warnings
import re
from dataclasses import dataclass
from pathlib import Path

from dplpaper.results import ROOT, results_dir

__all__ = ["EXPECTED_DIR", "CHECK_ENV", "UPDATE_ENV", "AuditRow", "KeyResultMismatch", "KeyResultWarning", "KeyResults",
           "SPREAD_FACTOR", "SPREAD_FILE", "audit", "compare", "read_spread", "record_spread", "rows_from_log",
           "widen_to_spread"]

#: committed expected key results, one JSON file per notebook
EXPECTED_DIR = ROOT / "notebooks" / "key_results"
UPDATE_ENV = "DPLPAPER_UPDATE_KEY_RESULTS"
#: set (to 1) by ``notebooks/conftest.py`` when pytest/nbval runs the notebooks: a mismatch is then an
#: error; elsewhere (``make reproduce``, a user's own run) it is a warning and the notebook goes on.
CHECK_ENV = "DPLPAPER_CHECK_KEY_RESULTS"


class KeyResultWarning(UserWarning):
    """A key result is outside its tolerance in a run that is not a test (see :data:`CHECK_ENV`)."""


class KeyResultMismatch(AssertionError):
    """A key result differs from its committed value by more than its tolerance."""


@dataclass
class _Entry:
    value: object
    tol: float | None
    why: str


_NAME = re.compile(r"[a-z0-9_]+")


def _clean(value, name: str = "?"):
    """JSON-able scalar: numpy/torch scalars -> Python, bool kept, str kept."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool) or value is None:
        return value
    if hasattr(value, "item"):
        try:
            value = value.item()
        except (ValueError, RuntimeError) as err:
            raise TypeError(f"key result {name!r} must be a scalar, got {type(value).__name__} "
                            f"of shape {getattr(value, 'shape', '?')}") from err
    if isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"key result {name!r} must be a number or a string, got {type(value).__name__}: {value!r}")


def compare(name: str, value, expected: dict) -> str | None:
    """``None`` if ``value`` matches ``expected`` (``{"value", "tol"}``), else a one-line reason."""
    ev, tol = expected.get("value"), expected.get("tol")
    exact = (str, bool, type(None))
    if isinstance(ev, exact) or isinstance(value, exact):
        # strings, bools and None compare exactly, and only with their own kind (True is not 1)
        same = type(value) is type(ev) or (isinstance(value, str) and isinstance(ev, str))
        return None if same and value == ev else f"{name}: got {value!r}, expected {ev!r} (exact)"
    v, e = float(value), float(ev)
    if math.isnan(e) or math.isnan(v):
        return None if (math.isnan(e) and math.isnan(v)) else f"{name}: got {v!r}, expected {e!r}"
    if v == e:  # also +inf == +inf, where v - e is NaN
        return None
    if math.isinf(v) or math.isinf(e):
        return f"{name}: got {v!r}, expected {e!r}"
    t = 0.0 if tol is None else float(tol)
    if abs(v - e) <= t + 1e-12 * max(1.0, abs(e)):
        return None
    return f"{name}: got {v:.6g}, expected {e:.6g} +/- {t:g} (off by {abs(v - e):.3g})"


#: the measured floating-point spread of key results (``python -m dplpaper.keyresults audit --record``):
#: ``{notebook: {name: {"shift": float, "seen": str}}}``, beside the committed key results
SPREAD_FILE = "fp_spread.json"
#: a refresh writes ``tol = max(declared tol, SPREAD_FACTOR * measured shift)``
SPREAD_FACTOR = 3.0


def read_spread(folder: Path | None = None) -> dict:
    """The recorded floating-point spreads (``{}`` when none)."""
    path = (Path(folder) if folder is not None else EXPECTED_DIR) / SPREAD_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected {{notebook: {{name: {{shift, seen}}}}}}")
    return data


def _round_up(x: float) -> float:
    """``x`` rounded up to two significant digits (0.4941 -> 0.5, 0.04407 -> 0.045)."""
    q = 10.0 ** (math.floor(math.log10(x)) - 1)
    return float(f"{math.ceil(x / q - 1e-9) * q:.2g}")


def widen_to_spread(payload: dict, spread: dict) -> dict:
    """``payload`` with each number's tolerance raised to ``SPREAD_FACTOR`` times its measured shift
    between floating-point paths (``spread``: ``{name: {"shift", "seen"}}``); the why says so."""
    out = {}
    for name, entry in payload.items():
        entry = dict(entry)
        rec = spread.get(name)
        if rec is not None and entry.get("tol") is not None and 0 < float(rec["shift"]) < math.inf:
            floor = SPREAD_FACTOR * float(rec["shift"])
            tol = _round_up(floor)
            if tol > entry["tol"]:
                note = (f"tol {tol:g} = {SPREAD_FACTOR:g} x the shift {float(rec['shift']):.3g} measured between "
                        f"floating-point paths ({rec.get('seen', '?')}; {SPREAD_FILE}); declared {entry['tol']:g}")
                entry["why"] = f"{entry['why']} [{note}]" if entry.get("why") else f"[{note}]"
                entry["tol"] = tol
        out[name] = entry
    return out


def record_spread(rows, seen: str, folder: Path | None = None) -> dict:
    """Add the finite non-zero shifts of audit ``rows`` to the spread file (keeping the largest per
    key) and return its content. Flips (NaN vs a number, another string) are not spreads: such a
    key needs another formulation, not a tolerance. Keys declared exact (``tol == 0``: counts, settings)
    are left out too: a change there is a change of code or data, not of rounding."""
    folder = Path(folder) if folder is not None else EXPECTED_DIR
    data = read_spread(folder)
    for r in rows:
        if not r.tol or not math.isfinite(r.shift) or r.shift == 0:
            continue
        old = data.setdefault(r.notebook, {}).get(r.name)
        if old is None or float(old["shift"]) < r.shift:
            data[r.notebook][r.name] = {"shift": float(f"{r.shift:.4g}"), "seen": seen}
    data = {nb: dict(sorted(v.items())) for nb, v in sorted(data.items())}
    (folder / SPREAD_FILE).write_text(json.dumps(data, indent=1) + "\n")
    return data


class KeyResults:
    """The key results of one notebook (see the module docstring).

    Args:
        notebook: the notebook's stem, e.g. ``"20_case2_temporal"``.
        mode: ``"quick"`` compares with the committed file; any other mode only records.
        folder: where the expected files live (default :data:`EXPECTED_DIR`).
    """

    def __init__(self, notebook: str, mode: str = "quick", folder: Path | None = None):
        self.notebook, self.mode = str(notebook), str(mode)
        self.folder = Path(folder) if folder is not None else EXPECTED_DIR
        self.entries: dict[str, _Entry] = {}

    @property
    def path(self) -> Path:
        return self.folder / f"{self.notebook}.json"

    def add(self, name: str, value, tol: float | None = None, why: str = "") -> None:
        """Record ``value`` under a snake_case ``name`` (a-z, 0-9, _); numbers need ``tol`` (absolute,
        finite, >= 0); strings and bools compare exactly. ``why``: what the tolerance rests on."""
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"key result name {name!r} in {self.notebook}: use snake_case (a-z, 0-9, _)")
        value = _clean(value, name)
        if name in self.entries:
            raise ValueError(f"key result {name!r} recorded twice in {self.notebook}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if tol is None or not 0 <= float(tol) < math.inf:
                raise ValueError(f"key result {name!r}: a number needs a finite tolerance tol >= 0, got {tol!r}")
            tol = float(tol)
        else:
            tol = None
        self.entries[name] = _Entry(value, tol, str(why))

    def table(self) -> str:
        """The recorded values as aligned text (printed by :meth:`check`)."""
        w = max([len(n) for n in self.entries] + [4])
        lines = []
        for n, e in self.entries.items():
            if isinstance(e.value, float):
                v = f"{e.value:.4g}"
            else:
                v = str(e.value)
            t = "" if e.tol is None else f" +/- {e.tol:g}"
            lines.append(f"{n:<{w}}  {v}{t}")
        return "\n".join(lines)

    def _payload(self) -> dict:
        return {n: {"value": e.value, "tol": e.tol, "why": e.why} for n, e in self.entries.items()}

    def check(self, verbose: bool = True) -> dict:
        """Compare with (or, when refreshing, write) the committed file; return the payload."""
        payload = self._payload()
        out = results_dir("key_results") / f"{self.notebook}.{self.mode}.json"
        out.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n")
        if verbose:
            print(self.table())
        if self.mode != "quick":
            return payload
        if os.environ.get(UPDATE_ENV, "") not in ("", "0"):
            self.folder.mkdir(parents=True, exist_ok=True)
            payload = widen_to_spread(payload, read_spread(self.folder).get(self.notebook, {}))
            self.path.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n")
            return payload
        if not self.path.exists():
            raise KeyResultMismatch(f"no committed key results {self.path}: run `make refresh-outputs` "
                                    f"(sets {UPDATE_ENV}=1) and commit the file")
        try:
            expected = json.loads(self.path.read_text())
        except ValueError as err:
            raise KeyResultMismatch(f"{self.path}: not valid JSON ({err}); rerun `make refresh-outputs`") from err
        if not isinstance(expected, dict):
            raise KeyResultMismatch(f"{self.path}: expected a JSON object {{name: {{value, tol, why}}}}")
        problems = []
        for name, exp in expected.items():
            if name not in payload:
                problems.append(f"{name}: expected but not recorded by the notebook")
                continue
            why = compare(name, payload[name]["value"], exp)
            if why:
                problems.append(why)
        problems += [f"{n}: recorded but not in {self.path.name} (refresh)" for n in payload if n not in expected]
        if problems:
            msg = (f"{self.notebook}: {len(problems)} key result(s) differ from {self.path}:\n  "
                   + "\n  ".join(problems))
            if os.environ.get(CHECK_ENV, "") in ("", "0"):
                warnings.warn(msg, KeyResultWarning, stacklevel=2)
                return payload
            raise KeyResultMismatch(msg)
        return payload


@dataclass(frozen=True)
class AuditRow:
    """One key result of a run on another floating-point path against its committed value."""
    notebook: str
    name: str
    value: object
    expected: object
    tol: float | None
    shift: float  # |value - expected|; 0/inf for exact kinds (match/no match); NaN-vs-number: inf

    @property
    def ratio(self) -> float:
        """``shift / tol``: 0 for no shift, inf where the tolerance is 0 or none and the value moved."""
        if self.shift == 0:
            return 0.0
        return self.shift / float(self.tol) if self.tol else math.inf


def _shift(value, exp: dict) -> float:
    """|value - expected| for two finite numbers; else 0 (match) or inf (no match)."""
    ev = exp.get("value")
    numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (value, ev))
    if numeric and math.isfinite(float(value)) and math.isfinite(float(ev)):
        return abs(float(value) - float(ev))
    return 0.0 if compare("x", value, exp) is None else math.inf


def audit(run_dir: Path, mode: str = "quick", folder: Path | None = None) -> list[AuditRow]:
    """Key results written by a run (``<run_dir>/<notebook>.<mode>.json``, e.g. a results folder's
    ``key_results/`` after a run on another CPU or floating-point path) against the committed ones,
    largest ``shift / tol`` first. A ratio near or above 1 marks a tolerance that another path can
    break: widen it (with its why) or check a steadier quantity. Keys missing on either side are
    left out (``check`` reports them)."""
    folder = Path(folder) if folder is not None else EXPECTED_DIR
    rows = []
    for path in sorted(Path(run_dir).glob(f"*.{mode}.json")):
        notebook = path.name[: -len(f".{mode}.json")]
        committed = folder / f"{notebook}.json"
        if not committed.exists():
            continue
        got, expected = json.loads(path.read_text()), json.loads(committed.read_text())
        for name, exp in expected.items():
            if name not in got:
                continue
            value = got[name]["value"]
            rows.append(AuditRow(notebook, name, value, exp.get("value"), exp.get("tol"), _shift(value, exp)))
    return sorted(rows, key=lambda r: (-r.ratio, r.notebook, r.name))


_LOG_HEAD = re.compile(r"([0-9a-z_]+): \d+ key result\(s\) differ from")
_LOG_ROW = re.compile(r"^\W*([a-z0-9_]+): got (\S+), expected (\S+) \+/- (\S+) \(off by")


def rows_from_log(text: str) -> list[AuditRow]:
    """The numeric mismatches a failed ``make test`` printed (:class:`KeyResultMismatch` messages, e.g. a
    CI log), as audit rows: each ``name: got v, expected e +/- t`` under its notebook's header line."""
    rows, notebook = [], None
    for line in text.splitlines():
        head = _LOG_HEAD.search(line)
        if head:
            notebook = head.group(1)
            continue
        m = _LOG_ROW.match(line)
        if m and notebook:
            name, v, e, t = m.group(1), float(m.group(2)), float(m.group(3)), float(m.group(4))
            rows.append(AuditRow(notebook, name, v, e, t, abs(v - e)))
    return rows


def _main(argv=None) -> int:
    import argparse
    p = argparse.ArgumentParser(prog="python -m dplpaper.keyresults",
                                description="audit: key results of a run against the committed ones")
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("audit", help="shift / tolerance of every key result, largest first")
    a.add_argument("run_dir", type=Path, help="folder with <notebook>.quick.json (a results folder's key_results/)")
    a.add_argument("--show", type=float, default=0.25, help="list keys with shift/tol at least this (default 0.25)")
    a.add_argument("--record", metavar="SEEN", help=f"add the shifts to {SPREAD_FILE} (SEEN: which paths, when); "
                   f"the next refresh raises each tolerance to {SPREAD_FACTOR:g} x its largest shift")
    w = sub.add_parser("widen", help=f"raise the committed tolerances to {SPREAD_FACTOR:g} x the shifts in {SPREAD_FILE} "
                       "(what the next refresh would write)")
    w.add_argument("--folder", type=Path, default=None, help="committed key results (default notebooks/key_results)")
    r = sub.add_parser("record-log", help=f"add the shifts a failed test run printed (e.g. `issues ci`) to {SPREAD_FILE}")
    r.add_argument("log", type=Path, help="text with KeyResultMismatch messages")
    r.add_argument("--seen", required=True, help="where and when (kept beside each shift)")
    args = p.parse_args(argv)
    if args.cmd == "record-log":
        rows = rows_from_log(args.log.read_text(errors="replace"))
        record_spread(rows, args.seen, folder=EXPECTED_DIR)
        print(f"{len(rows)} shifts recorded from {args.log}; run `widen` (or a refresh) to apply them")
        return 0
    if args.cmd == "widen":
        folder = args.folder or EXPECTED_DIR
        for nb, spread in read_spread(folder).items():
            path = folder / f"{nb}.json"
            if path.exists():
                path.write_text(json.dumps(widen_to_spread(json.loads(path.read_text()), spread), indent=1) + "\n")
        return 0
    rows = audit(args.run_dir, folder=EXPECTED_DIR)
    if args.record:
        record_spread(rows, args.record, folder=EXPECTED_DIR)
    worst = 0.0
    for r in rows:
        worst = max(worst, r.ratio)
        if r.ratio >= args.show:
            tol = "exact" if r.tol is None else f"{r.tol:g}"
            print(f"{r.ratio:7.2f}  {r.notebook}  {r.name}: {r.value!r} vs {r.expected!r} (tol {tol})")
    over = sum(r.ratio > 1 for r in rows)
    print(f"{len(rows)} key results compared; {over} outside their tolerance; largest shift/tol {worst:.2f}")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(_main())
