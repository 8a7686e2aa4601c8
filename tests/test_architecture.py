"""Architecture rules of the library (issue 14): no import cycles, case modules stay small."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "dplpaper"


def _modules() -> dict[str, Path]:
    mods = {}
    for p in ROOT.rglob("*.py"):
        parts = p.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = p
    return mods


def _targets(mods, cur: str, node) -> list[str]:
    """Library modules an import statement of module ``cur`` loads (function-level ones included)."""
    out = []
    if isinstance(node, ast.Import):
        out = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            pkg = cur.split(".") if mods[cur].name == "__init__.py" else cur.split(".")[:-1]
            pkg = pkg[:len(pkg) - node.level + 1]
            base = ".".join(pkg + ([base] if base else []))
        out = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
    return [t for t in out if t in mods and t != cur and not cur.startswith(t + ".") and t != "dplpaper"]


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    graph = {m: set() for m in mods}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[m].update(_targets(mods, m, node))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_in_the_library_even_through_function_level_imports():
    graph = import_graph()
    assert "dplpaper.experiments.streamflow" in graph and graph["dplpaper.experiments.streamflow"]
    assert cycles(graph) == []


@pytest.mark.parametrize("module, limit", [("experiments/streamflow.py", 500), ("experiments/hbv_baselines.py", 350),
                                           ("experiments/streamflow_dpl.py", 250), ("data/streamflow.py", 300),
                                           ("experiments/configs.py", 450), ("experiments/soil_moisture.py", 350),
                                           ("experiments/case1_methods.py", 350), ("data/soil_moisture.py", 200)])
def test_case_modules_stay_small(module, limit):
    n = len((ROOT / module).read_text().splitlines())
    assert n <= limit, f"{module}: {n} lines (limit {limit}); split it by concern"
