"""A whole vidsearch stack for end-to-end tests and drills: real redis-server, Milvus (Lite server or
a real Milvus server), sandbox, and Celery worker processes started through the ``vidsearch`` command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import redis.sentinel

from pipeline.settings import parse_redis_url
from tests.hosts import Hosts
from vidsearch.stack.services import (
    MilvusEngine,
    Service,
    start_milvus,
    start_milvus_engine,
    start_redis,
    start_sandbox,
)

FAST_SETTINGS = {
    "VIDSEARCH_TICK_INTERVAL_S": "0.3",
    "VIDSEARCH_POLL_INITIAL_S": "0.3",
    "VIDSEARCH_POLL_MAX_S": "2",
    "VIDSEARCH_WRITER_MAX_WAIT_S": "0.2",
    "VIDSEARCH_WRITER_FLUSH_INTERVAL_S": "0.5",
    "VIDSEARCH_RATE_LIMIT_PER_MIN": "6000",
    "VIDSEARCH_RATE_BURST": "50",
    "VIDSEARCH_MAX_IN_FLIGHT": "100",
    "VIDSEARCH_RETRY_INITIAL_S": "0.1",
    "VIDSEARCH_RETRY_MAX_S": "1",
    "VIDSEARCH_RETRY_TOTAL_S": "20",
    "VIDSEARCH_NUM_PARTITIONS": "4",
    "VIDSEARCH_LOG_FORMAT": "json",
}


@dataclass
class Stack:
    """Services and workers of one test stack; ``env`` is what every process of it gets."""

    root: Path
    redis: Service
    milvus: Service
    sandbox: Service
    env: dict[str, str]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    engine: MilvusEngine = "lite"

    def restart_milvus(self, port: int) -> None:
        """Start the stack's Milvus again on its data directory and ``port`` (after a stop)."""
        self.milvus = start_milvus_engine(self.engine, self.root / "milvus", port=port)

    @property
    def redis_url(self) -> str:
        return self.env["VIDSEARCH_REDIS_URL"]

    def client(self) -> redis.Redis:
        """A client of the stack's Redis (for a ``redis+sentinel://`` URL, of its current primary)."""
        target = parse_redis_url(self.redis_url)
        if not target.is_sentinel:
            return redis.Redis.from_url(self.redis_url)
        password = self.env.get("VIDSEARCH_REDIS_SENTINEL_PASSWORD")
        sentinel = redis.sentinel.Sentinel(list(target.sentinels), sentinel_kwargs={"password": password})
        return sentinel.master_for(target.service_name, db=target.db, password=target.password)

    def vidsearch(
        self, *args: str, timeout: float = 300, check: bool = True, env: Mapping[str, str] | None = None,
        wrap: Sequence[str] = (),
    ) -> subprocess.CompletedProcess[str]:
        """Run a ``vidsearch`` command with the stack's settings (plus ``env``, if given; ``wrap``
        prefixes the command line, e.g. ``ip netns exec HOST``)."""
        proc = subprocess.run(
            [*wrap, sys.executable, "-m", "vidsearch", *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode not in (0, 1):
            raise AssertionError(f"vidsearch {args} exited {proc.returncode}: {proc.stderr[-3000:]}")
        return proc

    def start_worker(
        self,
        name: str,
        queues: str,
        concurrency: int = 2,
        env: Mapping[str, str] | None = None,
        *,
        wrap: Sequence[str] = (),
    ) -> subprocess.Popen[bytes]:
        """``vidsearch worker`` with the stack's settings (plus ``env``; ``wrap`` as for ``vidsearch``)."""
        argv = [
            *wrap,
            sys.executable,
            "-m",
            "vidsearch",
            "worker",
            "--name",
            name,
            "--queues",
            queues,
            "--concurrency",
            str(concurrency),
        ]
        log = (self.root / f"worker-{name}.log").open("ab")
        proc = subprocess.Popen(
            argv,
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(proc)
        return proc

    def sandbox_stats(self) -> dict[str, Any]:
        return sandbox_stats(self.sandbox)

    def sandbox_config(self, **values: Any) -> None:
        sandbox_config(self.sandbox, **values)

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        self.workers.clear()

    def stop(self) -> None:
        self.stop_workers()
        for service in (self.sandbox, self.milvus, self.redis):
            service.stop()


def sandbox_stats(sandbox: Service) -> dict[str, Any]:
    """The sandbox's counters (``GET /_sandbox/stats``)."""
    with urllib.request.urlopen(f"{sandbox.url}/_sandbox/stats", timeout=10) as resp:
        return dict(json.loads(resp.read()))


def sandbox_config(sandbox: Service, **values: Any) -> None:
    """Change the sandbox's quotas and faults at run time (``POST /_sandbox/config``)."""
    request = urllib.request.Request(
        f"{sandbox.url}/_sandbox/config",
        data=json.dumps(values).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


def start_stack(
    root: Path, sandbox_args: Sequence[str] = (), engine: MilvusEngine = "lite", **settings: str
) -> Stack:
    """Start redis, Milvus (``engine``) and the sandbox; workers are started by the test."""
    redis_service = start_redis(root / "redis")
    milvus = start_milvus_engine(engine, root / "milvus")
    sandbox = start_sandbox(root, args=["--speed", "50", *sandbox_args])
    return assemble_stack(root, redis_service, milvus, sandbox, engine=engine, settings=settings)


def assemble_stack(
    root: Path, redis_service: Service, milvus: Service, sandbox: Service, *, engine: MilvusEngine,
    settings: Mapping[str, str],
) -> Stack:
    """A ``Stack`` of services already running: the environment every process of it gets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDSEARCH_", "TWELVE"))}
    env.update(FAST_SETTINGS)
    env.update(
        {
            "VIDSEARCH_REDIS_URL": f"redis://{redis_service.host}:{redis_service.port}/0",
            "VIDSEARCH_MILVUS_URI": milvus.url,
            "TWELVELABS_BASE_URL": f"{sandbox.url}/v1.3",
            "VIDSEARCH_DATA_DIR": str(root / "data"),
            "VIDSEARCH_LOG_FILE": str(root / "logs" / "vidsearch.log"),
        }
    )
    env.update(settings)
    return Stack(root=root, redis=redis_service, milvus=milvus, sandbox=sandbox, env=env, engine=engine)


def start_stack_on_hosts(
    root: Path, hosts: Hosts, sandbox_args: Sequence[str] = (), **settings: str
) -> Stack:
    """Like ``start_stack``, each service on its own host (``tests/hosts.py``): redis-server on
    ``redis``, Milvus Lite on ``milvus``, the sandbox on ``tl`` (which ``hosts`` must have)."""
    redis_host, milvus_host, tl = hosts["redis"], hosts["milvus"], hosts["tl"]
    redis_service = start_redis(root / "redis", 6379, redis_host.addr, wrap=redis_host.argv())
    milvus = start_milvus(root / "milvus", 19530, milvus_host.addr, wrap=milvus_host.argv())
    sandbox = start_sandbox(root, 8080, tl.addr, args=["--speed", "50", *sandbox_args], wrap=tl.argv())
    return assemble_stack(root, redis_service, milvus, sandbox, engine="lite", settings=settings)


def wait_for(predicate: Any, timeout_s: float, what: str, interval_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
