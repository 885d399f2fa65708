"""The layout's promises, read from the source: imports flow one way, each primitive once."""
from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# each may import only earlier ones: reports reads record files (the one record reader lives there) and
# imports nothing of benchmarks but its metrics, pure functions of arrays (the paired comparisons
# rescore resampled predictions with them); the runner uses the record reader and calls the report
# build at the end. A module belongs to the longest layer name it starts with.
LAYERS = ("plumbing", "datasets", "methods", "benchmarks.metrics", "reports", "benchmarks")


def layer(module: str) -> int:
    return max((i for i, name in enumerate(LAYERS) if module == name or module.startswith(name + ".")),
               key=lambda i: len(LAYERS[i]))


def _modules() -> dict[str, Path]:
    found = {}
    for top in dict.fromkeys(name.split(".")[0] for name in LAYERS):
        for path in (ROOT / top).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Suite modules ``name`` imports (relative imports resolved, names narrowed to modules)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            candidates = [f"{module}.{alias.name}" for alias in node.names] + [module]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
                break
    return targets


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
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

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def test_top_level_packages_import_only_earlier_layers():
    wrong = sorted((a, b) for a, targets in _graph().items() for b in targets if layer(b) > layer(a))
    assert not wrong, f"imports against the flow {' <- '.join(LAYERS)}: {wrong}"


def test_no_cycle_between_benchmarks_stages():
    def stage(module: str) -> str:
        parts = module.split(".")
        return ".".join(parts[:2]) if parts[0] == "benchmarks" else parts[0]

    edges: dict[str, set[str]] = defaultdict(set)
    for a, targets in _graph().items():
        for b in targets:
            if a.startswith("benchmarks") and b.startswith("benchmarks") and stage(a) != stage(b):
                edges[stage(a)].add(stage(b))
    assert not _cycles(edges), f"cycles between benchmarks' sub-packages: {_cycles(edges)}"
    assert not (edges["benchmarks.engine"] - {"benchmarks.engine"}), "the engine must not import later stages"


def test_no_import_cycle_between_modules_outside_datasets_init():
    graph = {a: {b for b in targets if b != "datasets"} for a, targets in _graph().items() if a != "datasets"}
    assert not _cycles(graph)


def test_renames_happen_in_one_place():
    pattern = re.compile(r"\bos\.(replace|rename)\(|\.(replace|rename)\((folder|path|tmp|src)\b")
    users = sorted(str(p.relative_to(ROOT)) for p in _modules().values() if pattern.search(p.read_text(encoding="utf-8")))
    assert users == ["plumbing/files.py"], users
