"""The shipped packages import without cycles, and build their clients only in pipeline/clients.py."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pipeline", "vidsearch", "workers")
CLIENT_BUILDERS = re.compile(r"Redis\.from_url\(|\bMilvusStore\(|\bTwelveLabsGateway\(|\bJobStore\(")
# Processes that are not the pipeline's clients: the metrics exporter and recorder keep their own
# short-timeout Redis client on purpose (recording must never block the pipeline).
OWN_CLIENTS = {"pipeline/clients.py", "pipeline/metrics/exporter.py"}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every shipped module ``path`` imports, at the top or inside a function."""
    deps: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        deps |= {n for n in names if n in modules}
    return deps


def _cycle_from(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for dep in graph[node]:
            if dep == start:
                return [*path, start]
            if dep not in seen:
                seen.add(dep)
                stack.append((dep, [*path, dep]))
    return None


def test_no_module_imports_itself_through_others() -> None:
    modules = _modules()
    graph = {name: _imports(path, modules) for name, path in modules.items()}
    cycles = [c for c in (_cycle_from(name, graph) for name in sorted(graph)) if c]
    assert cycles == []


def test_clients_are_built_only_in_pipeline_clients() -> None:
    builders = []
    for path in _modules().values():
        rel = path.relative_to(ROOT).as_posix()
        if rel not in OWN_CLIENTS and CLIENT_BUILDERS.search(path.read_text()):
            builders.append(rel)
    assert builders == []
