"""Import rules of the shipped packages (pipeline, workers, vidsearch).

* Direction: the import-linter contracts (pyproject.toml, ``[tool.importlinter]``) hold, checked by
  the real ``lint-imports`` as CI runs it; and a wrong-way import, written into a copy of the tree,
  breaks the contract that forbids it.
* No module imports itself through others. The contracts order packages and root modules, not the
  modules inside one package, and import-linter's ``acyclic_siblings`` works on packages: it flags
  two package-level loops that hold no module cycle (``pipeline.metrics`` <-> ``pipeline.ingest``:
  the exporter reads the stream, the writer records with the recorder; ``vidsearch.api`` <->
  ``vidsearch.cli``), and with those edges ignored it would miss a module cycle through them.
* Long-lived clients (Redis, ``MilvusStore``, ``TwelveLabsGateway``, ``JobStore``) are built only in
  ``pipeline/clients.py``, plus the metrics modules' own short-timeout Redis clients. No import
  contract can say who *calls* a constructor, so this reads every call in the shipped code and
  resolves its callee through the module's imports (aliases, ``import x as y``, relative imports,
  attribute chains, names assigned from a class) to the class it builds; a classmethod such as
  ``from_url`` counts as building one. Not followed: a class passed around as a value and called
  elsewhere under another name.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pipeline", "vidsearch", "workers")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

CLIENT_CLASSES = (
    "redis.Redis", "redis.StrictRedis", "redis.client.Redis", "redis.client.StrictRedis",
    "redis.from_url", "redis.RedisCluster", "redis.cluster.RedisCluster",
    "redis.asyncio.Redis", "redis.asyncio.from_url", "redis.asyncio.client.Redis",
    "redis.sentinel.Sentinel", "redis.Sentinel",
    "pipeline.milvus.store.MilvusStore", "pipeline.twelvelabs.TwelveLabsGateway",
    "pipeline.ledger.store.JobStore",
)
OWN_CLIENTS = {"pipeline/clients.py", "pipeline/connect.py", "pipeline/metrics/recorder.py",
               "pipeline/metrics/exporter.py"}
"""Where clients may be built: the pipeline's clients (``pipeline/connect.py`` opens their Redis, plain
or through Sentinel), and the recorder's and exporter's own Redis clients (short timeouts on purpose:
recording must never block the pipeline)."""


def lint_imports(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


# --- direction --------------------------------------------------------------------------------------
def test_the_import_contracts_hold() -> None:
    run = lint_imports(cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert " 0 broken" in run.stdout


WRONG_WAY = [
    ("pipeline/ingest/writer.py", "import pipeline.search.searcher", "Ingest does not import search",
     "pipeline.ingest.writer -> pipeline.search.searcher"),
    ("pipeline/twelvelabs.py", "from pipeline.search.query import Query",
     "The Twelve Labs boundary imports neither search nor the ledger",
     "pipeline.twelvelabs -> pipeline.search.query"),
    ("pipeline/twelvelabs.py", "from pipeline.metrics.exporter import RedisCollector",
     "The domain's own layers", "pipeline.twelvelabs -> pipeline.metrics.exporter"),
    ("pipeline/state/keys.py", "import workers.app", "Interfaces above the Celery adapters above the domain",
     "pipeline.state.keys -> workers.app"),
    ("vidsearch/sandbox/config.py", "from vidsearch.cli import display",
     "The sandbox is a separate program: it imports nothing else of ours",
     "vidsearch.sandbox.config -> vidsearch.cli.display"),
    ("pipeline/metrics/exporter.py", "import kombu", "Only workers imports Celery",
     "pipeline.metrics.exporter -> kombu"),
]


@pytest.mark.parametrize(("path", "line", "contract", "chain"), WRONG_WAY, ids=[w[0] for w in WRONG_WAY])
def test_a_wrong_way_import_breaks_the_contract_that_forbids_it(
    tmp_path: Path, path: str, line: str, contract: str, chain: str,
) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with (tmp_path / path).open("a") as module:
        module.write(f"\n{line}\n")

    run = lint_imports(str(tmp_path / "pyproject.toml"), cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(tmp_path)})

    assert run.returncode != 0, run.stdout + run.stderr
    assert f"{contract} BROKEN" in run.stdout
    assert chain in run.stdout


# --- cycles -----------------------------------------------------------------------------------------
def test_no_module_imports_itself_through_others() -> None:
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    cycles = sorted(
        (importer, *(graph.find_shortest_chain(imported, importer) or ()))
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if graph.chain_exists(imported, importer)
    )
    assert cycles == []


# --- who builds clients ---------------------------------------------------------------------------
def _module_name(rel: Path) -> str:
    return ".".join(rel.with_suffix("").parts).removesuffix(".__init__")


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


class _Resolver:
    """Qualified names of the expressions of one module, through its imports and assignments."""

    def __init__(self, tree: ast.Module, module: str, is_package: bool) -> None:
        self.names: dict[str, str] = {}
        nodes = list(ast.walk(tree))
        for node in nodes:
            self._bind(node, module, is_package)
        for node in nodes:  # `R = redis.Redis`, `Redis = redis.Redis[bytes]`: aliases of a class
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                self._alias(node.targets if isinstance(node, ast.Assign) else [node.target], node.value)

    def _bind(self, node: ast.AST, module: str, is_package: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                self.names[bound] = alias.name if alias.asname else bound
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, module, is_package)
            for alias in node.names:
                self.names[alias.asname or alias.name] = f"{source}.{alias.name}"
        elif isinstance(node, ast.ClassDef):
            self.names.setdefault(node.name, f"{module}.{node.name}")

    def _alias(self, targets: list[ast.expr], value: ast.expr) -> None:
        qualified = self.qualify(value)
        for target in targets:
            if isinstance(target, ast.Name) and qualified:
                self.names[target.id] = qualified

    def qualify(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return self.names.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.qualify(node.value)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, ast.Subscript):
            return self.qualify(node.value)
        return None


def client_constructions(source: str, module: str, is_package: bool = False) -> list[str]:
    """``line: qualified callee`` of every call in ``source`` that builds a client."""
    tree = ast.parse(source)
    resolver = _Resolver(tree, module, is_package)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            callee = resolver.qualify(node.func)
            if callee and any(callee == c or callee.startswith(f"{c}.") for c in CLIENT_CLASSES):
                found.append(f"{node.lineno}: {callee}")
    return found


@pytest.mark.parametrize("source", [
    "import redis\nredis.Redis.from_url('redis://x')",
    "import redis\nredis.from_url('redis://x')",
    "import redis as r\nr.StrictRedis(host='x')",
    "from redis import Redis as R\nR()",
    "from redis.client import Redis\nRedis.from_pool(None)",
    "import redis.asyncio\nredis.asyncio.Redis()",
    "import redis\nClient = redis.Redis[bytes]\nClient()",
    "def f():\n    from pipeline.milvus.store import MilvusStore\n    return MilvusStore(s)",
    "from pipeline.milvus import store\nstore.MilvusStore(s)",
    "import pipeline.twelvelabs as tl\ntl.TwelveLabsGateway(s)",
    "from ..ledger.store import JobStore as Jobs\nJobs(r, k)",
])
def test_the_client_check_sees_every_way_of_calling_a_client_class(source: str) -> None:
    assert len(client_constructions(source, "pipeline.ingest.example")) == 1


@pytest.mark.parametrize("source", [
    "import redis\nredis.RedisError('x')",
    "import redis\ndef f(c: redis.Redis) -> None:\n    isinstance(c, redis.Redis)",
    "from pipeline.ledger.store import JobStore\ndef f(jobs: JobStore) -> None:\n    jobs.fail('k', 'r')",
    "from pipeline.clients import Clients\nClients.from_settings(s).jobs",
])
def test_the_client_check_ignores_uses_that_build_nothing(source: str) -> None:
    assert client_constructions(source, "pipeline.ingest.example") == []


def test_clients_are_built_only_in_pipeline_clients() -> None:
    builders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if rel.as_posix() in OWN_CLIENTS:
                continue
            calls = client_constructions(path.read_text(), _module_name(rel), path.name == "__init__.py")
            builders += [f"{rel.as_posix()}:{call}" for call in calls]
    assert builders == []
