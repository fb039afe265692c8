"""The layering of the library and the example: no import runs upward, nothing imports in a circle.

Every ``import`` statement is read from the source (module level and inside functions alike), so a
lazy import cannot hide a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"sslkeypoint": ROOT / "src" / "sslkeypoint", "iugc_aop": ROOT / "examples" / "iugc_aop" / "src" / "iugc_aop",
            "hc18_biometry": ROOT / "examples" / "hc18_biometry" / "src" / "hc18_biometry"}
EXAMPLES = ("iugc_aop", "hc18_biometry")

# Floors of the library, bottom to top (docs/architecture.rst). A module may import its own floor
# and the floors below.
FLOORS: list[tuple[str, ...]] = [
    ("_utils", "_version", "atomic"),
    ("heatmaps", "geometry", "masks", "measures", "encoders", "weights", "augment", "data"),
    ("models", "_predictor_files", "prediction", "metrics", "losses", "ssl", "methods", "configs", "runs", "locks"),
    ("inference", "export", "lightning", "recipes", "selection", "cli", "visualize", "__init__", "__main__"),
]


def _module_name(package: str, root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join([package, *parts]) if parts != ["__init__"] else package


def _graph() -> dict[str, set[str]]:
    modules: dict[str, Path] = {}
    for package, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            if "template" in path.parts:  # the challenge's model.py is a standalone file
                continue
            modules[_module_name(package, root, path)] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def _floor(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    for level, names in enumerate(FLOORS):
        if top in names:
            return level
    raise AssertionError(f"{module} is on no floor of tests/test_import_graph.py: add it to FLOORS")


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return _graph()


def test_no_import_circles(graph: dict[str, set[str]]) -> None:
    found = _cycle(graph)
    assert found is None, " -> ".join(found or [])


def test_no_library_import_runs_upward(graph: dict[str, set[str]]) -> None:
    upward = [
        f"{m} (floor {_floor(m)}) imports {t} (floor {_floor(t)})"
        for m, targets in graph.items() if m.startswith("sslkeypoint")
        for t in targets if t.startswith("sslkeypoint") and _floor(t) > _floor(m)
    ]
    assert not upward, "\n".join(upward)


def test_the_examples_use_only_the_public_library(graph: dict[str, set[str]]) -> None:
    private = [f"{m} imports {t}" for m, targets in graph.items() if m.startswith(EXAMPLES)
               for t in targets if t.startswith("sslkeypoint") and any(p.startswith("_") for p in t.split(".")[1:])]
    assert not private, "\n".join(private)
    assert not any(t.startswith(EXAMPLES) for m, ts in graph.items() if m.startswith("sslkeypoint") for t in ts)
    # Each example stands on the library alone, not on the other example.
    crossed = [f"{m} imports {t}" for m, ts in graph.items() for t in ts
               if m.startswith(EXAMPLES) and t.startswith(EXAMPLES) and t.split(".")[0] != m.split(".")[0]]
    assert not crossed, "\n".join(crossed)


def test_the_graph_sees_imports() -> None:
    """The parser finds both kinds of import statement (a guard against a check that cannot fail)."""
    g = _graph()
    assert "sslkeypoint.heatmaps" in g["sslkeypoint.configs.finetune"]  # from sslkeypoint.heatmaps import ...
    assert "sslkeypoint.measures" in g["iugc_aop.landmarks"]
    assert "sslkeypoint.geometry" in g["hc18_biometry.measures"]
    assert _cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
