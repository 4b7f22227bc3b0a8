"""Real services for the tests: redis-server, Milvus (Lite in server mode and a real Milvus standalone
server), the Twelve Labs sandbox.

Each is started once per session on free ports in a temporary directory, through the same
starters ``vidsearch up`` uses. A service that cannot start fails the tests; nothing is skipped.

Two Milvus engines: ``milvus_uri`` is Milvus Lite, except in modules (or tests) marked
``both_engines``, where every test runs twice, ``[lite]`` and ``[server]`` (the server starts only
when such a test runs). ``milvus_engine`` says which one a test got.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from xdist.scheduler import LoadFileScheduling

from vidsearch.stack.services import (
    MILVUS_ENGINES,
    Service,
    start_milvus,
    start_milvus_server,
    start_redis,
    start_sandbox,
)

SANDBOX_API_KEY = "sandbox-test-key"


@pytest.fixture(scope="session")
def redis_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_redis(tmp_path_factory.mktemp("redis"))
    yield service
    service.stop()


@pytest.fixture(scope="session")
def redis_url(redis_service: Service) -> str:
    return f"redis://{redis_service.host}:{redis_service.port}/0"


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on a database emptied before the test."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def milvus_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Milvus Lite in server mode."""
    service = start_milvus(tmp_path_factory.mktemp("milvus"))
    yield service
    service.stop()


@pytest.fixture(scope="session")
def milvus_server_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A real Milvus standalone server (the ``milvus`` wheel of the dev extra)."""
    service = start_milvus_server(tmp_path_factory.mktemp("milvus-server"))
    yield service
    service.stop()


@pytest.fixture(scope="session")
def milvus_engine(request: pytest.FixtureRequest) -> str:
    """``lite`` or ``server``: the engine behind ``milvus_uri`` (parametrized by ``both_engines``)."""
    return str(getattr(request, "param", "lite"))


@pytest.fixture(scope="session")
def milvus_uri(milvus_engine: str, request: pytest.FixtureRequest) -> str:
    name = "milvus_server_service" if milvus_engine == "server" else "milvus_service"
    service: Service = request.getfixturevalue(name)
    return service.url


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``both_engines`` run once per Milvus engine."""
    if "milvus_engine" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_engines"):
        metafunc.parametrize("milvus_engine", MILVUS_ENGINES, indirect=True, scope="session")


@pytest.fixture(scope="session")
def sandbox_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A sandbox that finishes tasks fast (speed 50) and accepts any key."""
    service = start_sandbox(tmp_path_factory.mktemp("sandbox"), args=["--speed", "50"])
    yield service
    service.stop()


@pytest.fixture
def own_sandbox(tmp_path: Path) -> Iterator[Service]:
    """A sandbox of this test's own (its faults and counters are the test's to change)."""
    service = start_sandbox(tmp_path, args=["--speed", "100", "--seed", "7"])
    yield service
    service.stop()


@pytest.fixture
def sandbox_env(sandbox_service: Service, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the SDK at the session sandbox; returns its base URL."""
    base = f"{sandbox_service.url}/v1.3"
    monkeypatch.setenv("TWELVELABS_BASE_URL", base)
    return base


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("VIDSEARCH_LOG_FORMAT", "json")


# --- how the three test processes share the suite ---------------------------------------------------
# pytest-xdist (``--dist loadfile --no-loadscope-reorder``) hands out work units in collection order:
# a unit is a module, except in ONE_PROCESS_PACKAGES, whose package-scoped stack (started and
# ingested once) would otherwise start again in every process, and again each time the process
# came back to the package after another module. Units go out longest first: the package, then
# the stack tests and the drills (few tests, minutes each), the many short modules last to fill the
# gaps. (xdist's default orders modules by their number of tests, which left the drills for a
# long tail.)
ONE_PROCESS_PACKAGES = ("tests/vidsearch/api/",)
_LONGEST_FIRST = ("both_engines", "drill", "slow", "integration")


def work_unit(nodeid: str) -> str:
    """The test's package if it is one of ONE_PROCESS_PACKAGES, else its module."""
    module = nodeid.split("::", 1)[0]
    return next((p for p in ONE_PROCESS_PACKAGES if module.startswith(p)), module)


def _rank(item: pytest.Item) -> int:
    if work_unit(item.nodeid) in ONE_PROCESS_PACKAGES:
        return 0
    marks = {mark.name for mark in item.iter_markers()}
    return 1 + next((i for i, name in enumerate(_LONGEST_FIRST) if name in marks), len(_LONGEST_FIRST))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Work units by rank (a stable sort: tests keep their order within a unit)."""
    rank: dict[str, int] = {}
    for item in items:
        unit = work_unit(item.nodeid)
        rank[unit] = min(rank.get(unit, 99), _rank(item))
    items.sort(key=lambda item: rank[work_unit(item.nodeid)])


class _WorkUnitScheduling(LoadFileScheduling):
    """``--dist loadfile`` with ``work_unit`` as the unit."""

    def _split_scope(self, nodeid: str) -> str:
        return work_unit(nodeid)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LoadFileScheduling | None:
    """Only for ``--dist loadfile`` (the default); another ``--dist`` keeps xdist's own."""
    if config.getoption("dist") != "loadfile":
        return None
    return _WorkUnitScheduling(config, log)
