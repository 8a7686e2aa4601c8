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

__all__ = ["EXPECTED_DIR", "CHECK_ENV", "UPDATE_ENV", "KeyResultMismatch", "KeyResultWarning", "KeyResults", "compare"]

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
