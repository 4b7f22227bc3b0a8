"""Real services for the tests: redis-server, Milvus Lite in server mode, the Twelve Labs sandbox.

Each is started once per session on a free port in a temporary directory, through the same
starters ``vidsearch up`` uses. A service that cannot start fails the tests; nothing is skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from vidsearch.services import Service, start_milvus, start_redis, start_sandbox

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
    service = start_milvus(tmp_path_factory.mktemp("milvus"))
    yield service
    service.stop()


@pytest.fixture(scope="session")
def milvus_uri(milvus_service: Service) -> str:
    return milvus_service.url


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


