"""Test glue around ``vidsearch.stack.services.start_sentinel_set``: a module-scoped Sentinel set
(a primary, one replica, three Sentinels, with data and Sentinel passwords), and a failover done the
hard way (SIGKILL of the primary) that reports how long the Sentinels took to promote a replica."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vidsearch.stack.services import SentinelSet, Service, start_redis, start_sentinel_set

DATA_PASSWORD = "data-pw"
SENTINEL_PASSWORD = "sentinel-pw"
FAILOVER_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Failover:
    old: Service
    new: Service
    promoted_s: float
    """From the SIGKILL of the old primary until every live Sentinel names a writable new one."""


def sentinel_set(root: Path, replicas: int = 1) -> Iterator[SentinelSet]:
    """Body of a fixture: start the set under ``root``, yield it, stop it."""
    found = start_sentinel_set(root, replicas=replicas, password=DATA_PASSWORD,
                               sentinel_password=SENTINEL_PASSWORD)
    yield found
    found.stop()


def settings_of(found: SentinelSet) -> dict[str, str]:
    """The settings that point vidsearch at ``found``."""
    return {"redis_url": found.url, "redis_sentinel_password": SENTINEL_PASSWORD}


def env_of(found: SentinelSet) -> dict[str, str]:
    """The same, as the environment of a ``vidsearch`` process."""
    return {f"VIDSEARCH_{k.upper()}": v for k, v in settings_of(found).items()}


def kill_primary(found: SentinelSet) -> Failover:
    """SIGKILL the primary and wait until the Sentinels promote a replica."""
    old = found.primary()
    old.kill()
    killed = time.monotonic()
    new = found.wait_primary(FAILOVER_TIMEOUT_S, not_port=old.port)
    return Failover(old, new, time.monotonic() - killed)


def revive(found: SentinelSet, old: Service) -> Service:
    """Start a killed server again on its port and data; the Sentinels make it a replica of the
    current primary. Returns it (also put back in ``found.servers``)."""
    primary = found.primary()
    index = found.servers.index(old)
    data_dir = Path(old.argv[old.argv.index("--dir") + 1])
    back = start_redis(data_dir, port=old.port, host=old.host, password=found.password,
                       args=["--replicaof", primary.host, str(primary.port)])
    found.servers[index] = back
    found.wait_synced(FAILOVER_TIMEOUT_S)
    return back


@pytest.fixture(scope="module")
def sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    """One Sentinel set per test module (import this fixture into the module)."""
    yield from sentinel_set(tmp_path_factory.mktemp("sentinel"))
