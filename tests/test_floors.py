"""The house's floors (docs/ARCHITECTURE.md), read from the project's own imports with `ast`:

    3  application   sparkcast/
    2  parts         ingest/  jobs/  serve/  edge/   (none imports another)
    1  core          core/  manifest/  store/  hdfs_layout/

Every import points down (or stays in its own package), and no modules import each
other in a circle, directly or through others, counting imports inside functions and
under TYPE_CHECKING alike.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FLOOR = {"core": 1, "manifest": 1, "store": 1, "hdfs_layout": 1,
         "ingest": 2, "jobs": 2, "serve": 2, "edge": 2, "sparkcast": 3}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in FLOOR for p in (REPO / pkg).rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules `name` imports (a `from pkg import mod` names the module itself)."""
    out = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _top(module: str) -> str:
    return module.split(".")[0]


def test_every_import_points_down_a_floor_or_stays_in_its_package():
    wrong = []
    for name, deps in _graph().items():
        for dep in deps:
            mine, theirs = _top(name), _top(dep)
            if mine == theirs:
                continue
            if FLOOR[theirs] > FLOOR[mine] or (FLOOR[theirs] == FLOOR[mine] == 2):
                wrong.append(f"{name} (floor {FLOOR[mine]}) imports {dep} "
                             f"(floor {FLOOR[theirs]})")
    assert not wrong, "imports against the floors:\n" + "\n".join(sorted(wrong))


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    circles = _circles(_graph())
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


@pytest.mark.parametrize(("graph", "expected"), [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_the_circle_finder_finds_circles(graph, expected):
    assert _circles(graph) == expected


def test_the_reader_sees_function_local_and_from_package_imports(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from serve import db\n    import jobs.live\n"
                    "from . import sibling\n")
    known = {"serve", "serve.db", "jobs", "jobs.live", "pkg", "pkg.sibling", "pkg.m"}
    assert _imports("pkg.m", path, known) == {"serve.db", "jobs.live", "pkg.sibling"}
