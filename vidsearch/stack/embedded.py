"""The embedded stack: Redis, Milvus (Lite in server mode, or a real Milvus standalone server, per the
setting ``milvus_engine``), the sandbox, Celery workers and Flower.

``vidsearch up`` runs it in the foreground; ``vidsearch demo`` runs one on free ports. Everything
lives in ``settings.data_dir``: ``redis/`` (append-only file), ``milvus/`` (Lite) or
``milvus-server/`` (server), ``logs/`` (one file per
process) and ``up.lock``, an exclusive ``flock`` held for the stack's lifetime so that a second
stack on the same directory is refused. Every child runs in its own process group; ``stop()``
stops them in reverse order (SIGTERM, then SIGKILL after a timeout) and sweeps each group.

Ctrl-C and SIGTERM only set an event (``stop_signals``), so a stack is never left half-started:
``start()`` checks the event between steps and cleans up what it started.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pipeline.errors import (
    ConfigError,
    PortInUseError,
    ServiceError,
    StackLockedError,
    StopRequestedError,
)
from pipeline.settings import Settings, env_name
from pipeline.twelvelabs import SANDBOX_BASE_URL
from vidsearch.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from vidsearch.stack.services import (
    Service,
    port_open,
    start_child,
    start_milvus_engine,
    start_redis,
    start_sandbox,
)

WORKER_NODE, WRITER_NODE = "vidsearch", "writer"
LOCK_NAME = "up.lock"
MILVUS_LABELS = {"lite": "Milvus Lite", "server": "Milvus server"}
MILVUS_DIRS = {"lite": "milvus", "server": "milvus-server"}


@dataclass(frozen=True)
class Endpoint:
    """Where one server of the stack listens, and the setting that says so."""

    what: str
    host: str
    port: int
    setting: str

    def check_free(self) -> None:
        if port_open(self.host, self.port):
            raise PortInUseError(
                f"port {self.port} on {self.host} ({self.what}) is already in use by another program; "
                f"stop it or change the setting {self.setting} (env {env_name(self.setting)})"
            )


def _endpoint(what: str, url: str, setting: str, schemes: Sequence[str], default_port: int) -> Endpoint:
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        raise ConfigError(f"{setting} must be a {' or '.join(schemes)} URL for the embedded stack: {url}")
    return Endpoint(what, parts.hostname or "127.0.0.1", parts.port or default_port, setting)


def redacted_url(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


@contextlib.contextmanager
def stop_signals() -> Iterator[threading.Event]:
    """While inside, SIGINT and SIGTERM set the yielded event instead of interrupting."""
    event = threading.Event()

    def _handler(_signum: int, _frame: FrameType | None) -> None:
        event.set()

    previous = {sig: signal.signal(sig, _handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield event
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class DataDirLock:
    """An exclusive ``flock`` on ``data_dir/up.lock`` holding the owner's pid."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise StackLockedError(self.data_dir, pid, env_name("data_dir")) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


class EmbeddedStack:
    """Start with ``start()`` (or ``with``), stop with ``stop()``; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        sandbox: bool | None = None,
        sandbox_args: Sequence[str] = (),
        extra_env: Mapping[str, str] | None = None,
        concurrency: int = 2,
        stop_event: threading.Event | None = None,
        ready_timeout_s: float = 180.0,
        stop_timeout_s: float = 30.0,
    ) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.resolve()
        self.log_dir = self.data_dir / "logs"
        self.use_sandbox = settings.uses_sandbox if sandbox is None else sandbox
        self.sandbox_args = list(sandbox_args)
        self.concurrency = concurrency
        self.stop_event = stop_event or threading.Event()
        self.ready_timeout_s = ready_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.services: list[Service] = []
        self._extra_env = dict(extra_env or {})
        self._lock = DataDirLock(self.data_dir)
        self._celery: Any = None
        if settings.redis_target.is_sentinel:
            raise ConfigError(
                f"the embedded stack runs one redis-server; redis_url names a Sentinel set "
                f"({settings.redis_target.shown}): run the workers, writer and beat against it "
                "with `vidsearch worker` (docs/operations.md, Redis with Sentinel)"
            )
        self.redis = _endpoint("Redis", settings.redis_url, "redis_url", ["redis"], 6379)
        self.milvus = _endpoint(MILVUS_LABELS[settings.milvus_engine], settings.milvus_uri, "milvus_uri",
                                ["http"], 19530)
        self.sandbox_base = settings.twelvelabs_base_url or SANDBOX_BASE_URL
        self.sandbox = _endpoint("sandbox", self.sandbox_base, "twelvelabs_base_url", ["http"], 80)
        self.flower = Endpoint("Flower", "127.0.0.1", settings.flower_port, "flower_port")
        self.api = Endpoint("the HTTP API", "127.0.0.1", settings.api_port, "api_port")

    # --- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> EmbeddedStack:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        """Start every part and wait until each answers; on any failure stop what started."""
        self._lock.acquire()
        try:
            self._check_ports()
            self._start_servers()
            self._start_workers()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every child in reverse order; release the data directory."""
        while self.services:
            service = self.services.pop()
            with contextlib.suppress(OSError, ServiceError):
                service.stop(self.stop_timeout_s)
            _sweep_group(service)
        if self._celery is not None:
            self._celery.close()
            self._celery = None
        self._lock.release()

    def dead(self) -> Service | None:
        """The first child that exited on its own, if any."""
        return next((s for s in self.services if not s.alive()), None)

    # --- what it runs ------------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """The environment every child gets: the caller's, plus the stack's own addresses."""
        env = {**os.environ, **self._extra_env}
        env.update({
            env_name("redis_url"): self.settings.redis_url,
            env_name("milvus_uri"): self.settings.milvus_uri,
            env_name("data_dir"): str(self.data_dir),
        })
        if self.use_sandbox:
            env[env_name("twelvelabs_base_url")] = self.sandbox_base
        if self.settings.twelve_labs_api_key is None:
            env.pop(env_name("twelve_labs_api_key"), None)
        return env

    def urls(self) -> dict[str, str]:
        """What an operator opens or points clients at."""
        twelve = self.sandbox_base if self.use_sandbox else (self.settings.twelvelabs_base_url or "api")
        return {
            "redis": redacted_url(self.settings.redis_url),
            "milvus": self.settings.milvus_uri,
            "twelvelabs": twelve,
            "flower": f"http://{self.flower.host}:{self.flower.port}",
            "page": f"http://{self.api.host}:{self.api.port}/",
            "data": str(self.data_dir),
            "logs": str(self.log_dir),
        }

    def _check_ports(self) -> None:
        wanted = [self.redis, self.milvus, self.flower, self.api]
        wanted += [self.sandbox] if self.use_sandbox else []
        for endpoint in wanted:
            endpoint.check_free()
        ports = [e.port for e in wanted if e.host in ("127.0.0.1", "localhost", "0.0.0.0")]
        if len(set(ports)) != len(ports):
            raise ConfigError(f"the stack's ports must differ: {', '.join(map(str, ports))}")

    def _checkpoint(self) -> None:
        if self.stop_event.is_set():
            raise StopRequestedError("stopped while starting")

    def _start_servers(self) -> None:
        password = urlsplit(self.settings.redis_url).password
        self.services.append(start_redis(
            self.data_dir / "redis", self.redis.port, self.redis.host, password=password,
            timeout_s=self.ready_timeout_s, log_path=self.log_dir / "redis.log",
        ))
        self._checkpoint()
        engine = self.settings.milvus_engine
        self.services.append(start_milvus_engine(
            engine, self.data_dir / MILVUS_DIRS[engine], self.milvus.port, self.milvus.host,
            timeout_s=self.ready_timeout_s, log_path=self.log_dir / "milvus.log",
        ))
        self._checkpoint()
        if self.use_sandbox:
            self.services.append(start_sandbox(
                self.log_dir, self.sandbox.port, self.sandbox.host, args=self.sandbox_args,
                timeout_s=self.ready_timeout_s,
            ))
            self._checkpoint()

    def _start_workers(self) -> None:
        env = self.env
        vidsearch = [sys.executable, "-m", "vidsearch"]
        self._child("worker", [*vidsearch, "worker", "--name", WORKER_NODE, "--queues",
                               "embedding,polling", "--concurrency", str(self.concurrency)], env)
        self._child("writer", [*vidsearch, "writer", "--name", WRITER_NODE], env)
        self.services.append(start_flower(self.settings, env, self.log_dir / "flower.log", self.flower.host))
        self._child("serve", [*vidsearch, "serve", "--host", self.api.host,
                              "--port", str(self.api.port)], env)

    def _child(self, name: str, argv: list[str], env: Mapping[str, str]) -> None:
        self.services.append(start_child(name, argv, self.log_dir / f"{name}.log", env=env))

    # --- readiness ---------------------------------------------------------------------------------
    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        self._until(deadline, "the Celery workers to answer a ping", self._workers_answer)
        self._until(deadline, "Flower's /healthcheck", self._flower_answers)
        self._until(deadline, "the HTTP API's /healthz", self._api_answers)

    def _until(self, deadline: float, what: str, check: Callable[[], bool]) -> None:
        while True:
            self._checkpoint()
            dead = self.dead()
            if dead is not None:
                raise ServiceError(f"{dead.name} exited with {dead.proc.returncode}; see {dead.log_path}")
            if check():
                return
            if time.monotonic() > deadline:
                raise ServiceError(f"timed out after {self.ready_timeout_s:.0f} s waiting for {what}; "
                                   f"see the logs in {self.log_dir}")
            time.sleep(0.5)

    def _workers_answer(self) -> bool:
        if self._celery is None:
            from workers.app import create_app  # noqa: PLC0415  (Celery only once workers run)

            self._celery = create_app(self.settings)
        try:
            replies = self._celery.control.ping(timeout=1.0) or []
        except Exception:  # not up yet: any broker error means "ask again"
            return False
        nodes = {name.split("@", 1)[0] for reply in replies for name in reply}
        return {WORKER_NODE, WRITER_NODE} <= nodes

    def _flower_answers(self) -> bool:
        return flower_answers(self.flower.host, self.flower.port)

    def _api_answers(self) -> bool:
        return http_ok(f"http://{self.api.host}:{self.api.port}/healthz")


def start_flower(settings: Settings, env: Mapping[str, str], log_path: Path,
                 host: str = "127.0.0.1") -> Service:
    """``vidsearch flower`` on ``settings.flower_port`` for the broker in ``env``; basic auth (passed
    in the environment, never on the command line) when ``settings.flower_basic_auth`` is set."""
    flower_env = {k: v for k, v in env.items() if not k.startswith("FLOWER_")}
    flower_env[env_name("flower_port")] = str(settings.flower_port)
    auth = settings.flower_basic_auth
    if auth is not None:
        value = auth.get_secret_value()
        if not all(":" in pair for pair in value.split(",")):
            raise ConfigError("flower_basic_auth must be user:password (comma-separate several)")
        flower_env[env_name("flower_basic_auth")] = value
    argv = [sys.executable, "-m", "vidsearch", "flower", "--address", host]
    return start_child("flower", argv, log_path, env=flower_env, host=host, port=settings.flower_port)


def flower_answers(host: str, port: int) -> bool:
    """Flower's ``/healthcheck`` (never behind auth) says OK."""
    return http_ok(f"http://{host}:{port}/healthcheck")


def http_ok(url: str) -> bool:
    """``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _sweep_group(service: Service) -> None:
    """SIGKILL whatever is left in the child's process group (orphaned pool processes)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(service.proc.pid, signal.SIGKILL)


# --- vidsearch up ------------------------------------------------------------------------------------
SANDBOX_WARNING = """\
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!! WARNING: TWELVE_LABS_API_KEY is not set. Embeddings come from the local sandbox at
!!   {base}
!! and are SIMULATED: searches only match words of the URLs (or of a sandbox catalog).
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"""


def run_up(settings: Settings, concurrency: int = 2, sandbox_speed: float = 1.0) -> int:
    """``vidsearch up``: start the stack, serve until Ctrl-C / SIGTERM, stop all of it.

    Exit codes: 0 stopped on request, 1 a part died while running, 130 interrupted while starting;
    a refused start (port taken, directory locked, a part did not answer) raises ``VidsearchError``.
    """
    with stop_signals() as stop:
        stack = EmbeddedStack(settings, sandbox_args=["--speed", str(sandbox_speed)],
                              concurrency=concurrency, stop_event=stop)
        print(f"starting the embedded stack in {stack.data_dir} ...", flush=True)
        try:
            stack.start()
        except StopRequestedError:
            print("interrupted while starting; everything started was stopped", flush=True)
            return EXIT_INTERRUPTED
        try:
            if stack.use_sandbox:
                print(SANDBOX_WARNING.format(base=stack.sandbox_base), file=sys.stderr, flush=True)
            print_ready(stack)
            return _serve(stack, stop)
        finally:
            print("stopping ...", flush=True)
            stack.stop()
            print("stopped", flush=True)


def print_ready(stack: EmbeddedStack) -> None:
    urls, host = stack.urls(), socket.gethostname()
    sandbox = " (sandbox: SIMULATED embeddings)" if stack.use_sandbox else ""
    auth = "" if stack.settings.flower_basic_auth else " (no auth; API needs flower_basic_auth)"
    milvus = f"{urls['milvus']} ({MILVUS_LABELS[stack.settings.milvus_engine]})"
    print("ready", flush=True)
    for label, value in (("Redis", urls["redis"]), ("Milvus", milvus),
                         ("Twelve Labs", urls["twelvelabs"] + sandbox), ("Flower", urls["flower"] + auth),
                         ("Web page", urls["page"] + " (API: /v1, docs: /docs)"),
                         ("Workers", f"{WORKER_NODE}@{host} (embedding, polling, tick), "
                                     f"{WRITER_NODE}@{host} (writing)"),
                         ("Data", urls["data"]), ("Logs", urls["logs"])):
        print(f"  {label:<12} {value}", flush=True)
    if stack.use_sandbox and stack.sandbox_base != SANDBOX_BASE_URL:
        hint = f"export {env_name('twelvelabs_base_url')}={stack.sandbox_base}"
        print(f"  In another shell, before submit/search: {hint}", flush=True)
    print("Press Ctrl-C to stop.", flush=True)


def _serve(stack: EmbeddedStack, stop: threading.Event) -> int:
    while not stop.wait(1.0):
        dead = stack.dead()
        if dead is not None:
            print(f"vidsearch: error: {dead.name} exited with {dead.proc.returncode}; see {dead.log_path}",
                  file=sys.stderr, flush=True)
            return EXIT_FAILED
    return EXIT_OK
