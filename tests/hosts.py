"""Hosts for tests: each "host" is a Linux network namespace of its own on this machine.

Every host gets one veth pair: ``eth0`` in the host, its peer plugged into a bridge that lives in a
namespace this harness created too, so the root namespace gets no interface and no address. The
addresses come from a private /24 that exists only inside these namespaces.

- A process runs in a host with ``host.argv(...)`` (``ip netns exec NAME ...``).
- The test process itself enters a host (``Hosts.enter``, ``setns`` on its main thread), so its
  Redis, HTTP and sandbox clients reach the hosts' addresses; subprocesses it starts inherit that
  namespace. Only the calling thread moves: no in-process client that runs its own threads (gRPC,
  i.e. pymilvus) may be used meanwhile; read Milvus from a subprocess instead.
- ``down``/``up`` takes a host's link down (its bridge-side end) and back: the host is cut from
  every other, packets vanish silently, as with a pulled cable.
- ``cut``/``mend`` is a partial partition: ``blackhole`` routes to each other's address in both
  hosts, every other path stays.
- ``kill`` SIGKILLs every process in a host (``ip netns pids``): a host lost outright.

Names are ``vsh<pid>x<run>-<host>``: unique per process and per run; namespaces whose pid is dead
(a run killed before its teardown) are removed, with their processes, when a new ``Hosts`` starts.
Needs root and ``ip`` (iproute2); ``skip_reason`` says why not.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field

PREFIX = "vsh"
SUBNET = "10.231.7"
"""The hosts' /24: private, and present only inside the namespaces of one ``Hosts``."""
_NAME = re.compile(rf"^{PREFIX}(\d+)x[0-9a-f]+-")
_CLONE_NEWNET = 0x40000000


def skip_reason() -> str | None:
    """Why hosts cannot be made here (not root, no ``ip``), or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    if shutil.which("ip") is None:
        return "no `ip` command (Debian package iproute2)"
    return None


def ip(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def namespaces() -> list[str]:
    return [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]


def ns_pids(ns: str) -> list[int]:
    return [int(p) for p in ip("netns", "pids", ns, check=False).split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> list[str]:
    """Delete the namespaces (and SIGKILL the processes) that runs of dead processes left."""
    removed = []
    for ns in namespaces():
        found = _NAME.match(ns)
        if found and not _alive(int(found.group(1))):
            _delete(ns)
            removed.append(ns)
    return removed


def _delete(ns: str) -> None:
    for pid in ns_pids(ns):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    ip("netns", "del", ns, check=False)


@dataclass
class Host:
    """One host: its namespace, its address, its link (``port`` is its end in the bridge)."""

    name: str
    ns: str
    addr: str
    port: str
    bridge_ns: str

    def argv(self, *cmd: str) -> list[str]:
        """``cmd`` run in this host; with no ``cmd``, the prefix (``ip netns exec NS``)."""
        return ["ip", "netns", "exec", self.ns, *cmd]

    def down(self) -> None:
        """Take the host's link down: it is cut from every host (its own processes keep running)."""
        ip("-n", self.bridge_ns, "link", "set", self.port, "down")

    def up(self) -> None:
        ip("-n", self.bridge_ns, "link", "set", self.port, "up")

    def pids(self) -> list[int]:
        return ns_pids(self.ns)

    def kill(self) -> int:
        """SIGKILL every process of this host; returns how many there were."""
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)


@dataclass
class Hosts:
    """A set of hosts on one bridge; ``close`` removes them all (and their processes)."""

    run: str = field(default_factory=lambda: f"{PREFIX}{os.getpid()}x{secrets.token_hex(3)}")
    hosts: dict[str, Host] = field(default_factory=dict)
    cuts: set[tuple[str, str]] = field(default_factory=set)

    @property
    def bridge_ns(self) -> str:
        return f"{self.run}-bridge"

    def open(self) -> Hosts:
        remove_stale()
        ip("netns", "add", self.bridge_ns)
        ip("-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        ip("-n", self.bridge_ns, "link", "set", "br0", "up")
        return self

    def add(self, name: str) -> Host:
        """A new host ``name`` with the next address of the subnet."""
        if name in self.hosts or not re.fullmatch(r"[a-z0-9]{1,12}", name):
            raise ValueError(f"host name {name!r} is taken or not 1-12 of [a-z0-9]")
        index = len(self.hosts) + 1
        host = Host(name, f"{self.run}-{name}", f"{SUBNET}.{index + 1}", f"p{index}", self.bridge_ns)
        ip("netns", "add", host.ns)
        self.hosts[name] = host
        ip("-n", self.bridge_ns, "link", "add", host.port, "type", "veth", "peer", "name", "eth0",
           "netns", host.ns)
        ip("-n", self.bridge_ns, "link", "set", host.port, "master", "br0", "up")
        ip("-n", host.ns, "addr", "add", f"{host.addr}/24", "dev", "eth0")
        ip("-n", host.ns, "link", "set", "eth0", "up")
        ip("-n", host.ns, "link", "set", "lo", "up")
        return host

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def cut(self, a: str, b: str) -> None:
        """Partition hosts ``a`` and ``b`` from each other only (both directions)."""
        for here, there in ((self[a], self[b]), (self[b], self[a])):
            ip("-n", here.ns, "route", "add", "blackhole", f"{there.addr}/32")
        self.cuts.add((a, b))

    def mend(self, a: str, b: str) -> None:
        for here, there in ((self[a], self[b]), (self[b], self[a])):
            ip("-n", here.ns, "route", "del", "blackhole", f"{there.addr}/32", check=False)
        self.cuts.discard((a, b))

    def heal(self) -> None:
        """Every link up, every cut mended."""
        for a, b in list(self.cuts):
            self.mend(a, b)
        for host in self.hosts.values():
            host.up()

    @contextlib.contextmanager
    def enter(self, name: str) -> Iterator[Host]:
        """Run this thread (and what it starts) in host ``name`` until the block ends."""
        host = self[name]
        with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{host.ns}") as there:
            _setns(there.fileno())
            try:
                yield host
            finally:
                _setns(home.fileno())

    def close(self) -> None:
        for host in self.hosts.values():
            _delete(host.ns)
        _delete(self.bridge_ns)
        self.hosts.clear()


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


@contextlib.contextmanager
def open_hosts(*names: str) -> Iterator[Hosts]:
    """``Hosts`` with ``names``, always removed at the end."""
    hosts = Hosts()
    try:
        hosts.open()
        for name in names:
            hosts.add(name)
        yield hosts
    finally:
        hosts.close()
