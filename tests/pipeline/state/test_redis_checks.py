"""Start-up checks against real redis-servers: one started with ``--maxmemory-policy allkeys-lru``
(a worker and ``vidsearch submit`` refuse to start, naming the setting), one with no persistence
(a warning), one that forbids CONFIG GET to our user (a warning, no crash); and the Celery timing
checks (a visibility timeout at or under a lease refuses a worker). A worker started before its Redis
waits for it, then checks it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from structlog.testing import capture_logs

from pipeline.errors import UnsafeSettingsError
from pipeline.settings import load_settings
from pipeline.state.redis_checks import check_redis, check_timing, longest_delay
from tests.stack import wait_for
from vidsearch.exit_codes import EXIT_BAD_INPUT
from vidsearch.stack.services import (
    Service,
    free_port,
    port_open,
    redis_server_binary,
    start_child,
    wait_until,
)

pytestmark = [pytest.mark.integration]


def _redis(root: Path, *args: str, port: int = 0) -> Service:
    port = port or free_port()
    argv = [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(root),
            "--daemonize", "no", "--protected-mode", "no", *args]
    service = start_child("redis", argv, root / "redis.log", env=dict(os.environ), port=port)
    wait_until(lambda: port_open("127.0.0.1", port), 20, "redis-server", service)
    return service


@pytest.fixture(scope="module")
def evicting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A Redis that may drop any key under memory pressure."""
    service = _redis(tmp_path_factory.mktemp("evicting"), "--maxmemory-policy", "allkeys-lru",
                     "--maxmemory", "64mb", "--appendonly", "yes")
    yield service
    service.stop()


@pytest.fixture(scope="module")
def volatile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """No persistence at all: no append-only file, no save points."""
    service = _redis(tmp_path_factory.mktemp("volatile"), "--appendonly", "no", "--save", "")
    yield service
    service.stop()


def _url(service: Service, user: str = "") -> str:
    auth = f"{user}:secret@" if user else ""
    return f"redis://{auth}{service.host}:{service.port}/0"


def _vidsearch(service: Service, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VIDSEARCH_", "TWELVE"))}
    clean.update({"VIDSEARCH_REDIS_URL": _url(service), "VIDSEARCH_DATA_DIR": str(tmp_path / "data"),
                  "VIDSEARCH_LOG_FORMAT": "json", **env})
    return subprocess.run([sys.executable, "-m", "vidsearch", *args], env=clean, capture_output=True,
                          text=True, timeout=120, check=False)


def test_an_evicting_redis_is_refused_naming_maxmemory_policy(evicting: Service) -> None:
    client = redis.Redis.from_url(_url(evicting))
    with pytest.raises(UnsafeSettingsError, match=r"maxmemory-policy is 'allkeys-lru'.*noeviction"):
        check_redis(client)


@pytest.mark.parametrize("policy", ["volatile-lru", "volatile-ttl", "allkeys-random"])
def test_every_policy_but_noeviction_is_refused(evicting: Service, policy: str) -> None:
    client = redis.Redis.from_url(_url(evicting))
    client.config_set("maxmemory-policy", policy)
    try:
        with pytest.raises(UnsafeSettingsError, match=f"'{policy}'"):
            check_redis(client)
        client.config_set("maxmemory-policy", "noeviction")
        check_redis(client)  # the same server, now safe
    finally:
        client.config_set("maxmemory-policy", "allkeys-lru")


def test_a_worker_refuses_to_start_on_an_evicting_redis(evicting: Service, tmp_path: Path) -> None:
    proc = _vidsearch(evicting, tmp_path, "worker", "--name", "evict", "--queues", "polling")

    assert proc.returncode == EXIT_BAD_INPUT, proc.stderr[-2000:]
    assert "maxmemory-policy is 'allkeys-lru'" in proc.stderr
    assert "maxmemory-policy noeviction" in proc.stderr


@pytest.mark.parametrize("argv", [
    ["metrics", "--port", "0"],
    ["serve", "--port", "0"],
    ["beat", "--schedule", str(Path(__file__).resolve().parents[3] / "config" / "beat_schedule.py")],
    ["writer", "--name", "evict-writer"],
], ids=lambda argv: argv[0])
def test_every_long_lived_process_refuses_an_evicting_redis(
    evicting: Service, tmp_path: Path, argv: list[str]
) -> None:
    proc = _vidsearch(evicting, tmp_path, *argv)

    assert proc.returncode == EXIT_BAD_INPUT, proc.stderr[-2000:]
    assert "maxmemory-policy is 'allkeys-lru'" in proc.stderr


def test_submit_refuses_an_evicting_redis_and_writes_nothing(evicting: Service, tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("url,category\nhttps://cdn.example.com/evict/1.mp4,ops\n")
    client = redis.Redis.from_url(_url(evicting))
    client.flushdb()

    proc = _vidsearch(evicting, tmp_path, "submit", str(manifest))

    assert proc.returncode == EXIT_BAD_INPUT, proc.stderr[-2000:]
    assert "maxmemory-policy" in proc.stderr and proc.stdout == ""
    assert client.dbsize() == 0


def test_a_redis_without_persistence_is_accepted_with_a_warning(volatile: Service, tmp_path: Path) -> None:
    with capture_logs() as logs:
        check_redis(redis.Redis.from_url(_url(volatile)))
    assert [e["event"] for e in logs] == ["redis_persistence_off"]
    assert logs[0]["log_level"] == "warning"

    manifest = tmp_path / "m.csv"
    manifest.write_text("url,category\nhttps://cdn.example.com/volatile/1.mp4,ops\n")
    proc = _vidsearch(volatile, tmp_path, "submit", str(manifest), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "redis_persistence_off" in proc.stderr and "redis_persistence_off" not in proc.stdout


def test_a_redis_with_aof_raises_no_warning(evicting: Service) -> None:
    client = redis.Redis.from_url(_url(evicting))
    client.config_set("maxmemory-policy", "noeviction")
    try:
        with capture_logs() as logs:
            check_redis(client)
    finally:
        client.config_set("maxmemory-policy", "allkeys-lru")
    assert logs == []


def test_a_redis_that_forbids_config_get_is_warned_about_not_refused(evicting: Service) -> None:
    admin = redis.Redis.from_url(_url(evicting))
    admin.acl_setuser("managed", enabled=True, passwords=["+secret"], keys=["*"], channels=["*"],
                      commands=["+@all", "-config"])
    with capture_logs() as logs:
        check_redis(redis.Redis.from_url(_url(evicting, user="managed")))
    assert [e["event"] for e in logs] == ["redis_config_unreadable"]
    assert "maxmemory-policy" in logs[0]["hint"]


def test_a_visibility_timeout_at_or_under_a_lease_refuses_a_worker(volatile: Service, tmp_path: Path) -> None:
    proc = _vidsearch(volatile, tmp_path, "worker", "--name", "vis", "--queues", "polling",
                      VIDSEARCH_VISIBILITY_TIMEOUT_S="100")

    assert proc.returncode == EXIT_BAD_INPUT, proc.stderr[-2000:]
    assert "visibility timeout (100 s) does not exceed create_lease_s (120 s)" in proc.stderr
    assert "VIDSEARCH_VISIBILITY_TIMEOUT_S" in proc.stderr


def test_the_longest_delay_is_the_largest_of_leases_polls_retries_and_drains() -> None:
    assert longest_delay(load_settings()) == ("create_lease_s", 120.0)
    assert longest_delay(load_settings(writer_claim_idle_s=900)) == ("writer_claim_idle_s", 900.0)
    assert longest_delay(load_settings(poll_max_s=1000, visibility_timeout_s=3600)) == ("poll_max_s", 1000.0)


def test_timing_refuses_a_soft_shutdown_that_is_off_and_a_short_visibility_timeout() -> None:
    settings = load_settings()
    check_timing(settings, 3600, 30)
    with pytest.raises(UnsafeSettingsError, match="soft shutdown is off"):
        check_timing(settings, 3600, 0)
    with pytest.raises(UnsafeSettingsError, match=r"\(120 s\) does not exceed create_lease_s"):
        check_timing(settings, 120, 30)


def test_a_worker_started_before_redis_waits_for_it_then_refuses_it_if_it_evicts(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDSEARCH_", "TWELVE"))}
    env.update({"VIDSEARCH_REDIS_URL": f"redis://127.0.0.1:{port}/0", "VIDSEARCH_LOG_FORMAT": "json",
                "VIDSEARCH_DATA_DIR": str(tmp_path / "data")})
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "vidsearch", "worker", "--name", "early", "--queues", "polling"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    service = None
    try:
        wait_for(lambda: b"redis_unreachable_at_start" in log.read_bytes(), 60, "the worker waiting")
        assert worker.poll() is None
        service = _redis(tmp_path, "--maxmemory-policy", "allkeys-lru", port=port)
        assert worker.wait(120) == EXIT_BAD_INPUT
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        if service is not None:
            service.stop()
    assert b"maxmemory-policy is 'allkeys-lru'" in log.read_bytes()
