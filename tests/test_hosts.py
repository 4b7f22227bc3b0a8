"""The hosts harness (tests/hosts.py): namespaces, partitions that really cut TCP, heals that
restore it, a host killed outright, nothing left behind."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.hosts import Host, Hosts, ip, namespaces, open_hosts, remove_stale, skip_reason

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason()))

PORT = 7070
ECHO = (
    "import socket,sys\n"
    "s=socket.create_server((sys.argv[1],int(sys.argv[2])))\n"
    "while True:\n"
    "  c,_=s.accept()\n"
    "  f=c.makefile('rwb',0)\n"
    "  for line in f: f.write(line)\n"
)


@pytest.fixture(scope="module")
def hosts() -> Iterator[Hosts]:
    with open_hosts("a", "b", "c") as made:
        for name in ("b", "c"):
            _echo(made[name])
        yield made


@pytest.fixture(autouse=True)
def healed(hosts: Hosts) -> Iterator[None]:
    yield
    hosts.heal()


def _echo(host: Host) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(host.argv(sys.executable, "-c", ECHO, host.addr, str(PORT)))
    for _ in range(100):
        probe = host.argv(sys.executable, "-c", _PROBE, host.addr, str(PORT))
        if subprocess.run(probe, check=False, stderr=subprocess.DEVNULL).returncode == 0:
            return proc
    raise AssertionError(f"echo server on {host.name} did not start")


_PROBE = "import socket,sys\nsocket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=0.2).close()"


def _connects(hosts: Hosts, src: str, dst: str) -> bool:
    with hosts.enter(src):
        try:
            socket.create_connection((hosts[dst].addr, PORT), timeout=2).close()
        except OSError:
            return False
        return True


def _echoes(conn: socket.socket, text: bytes) -> bool:
    try:
        conn.sendall(text + b"\n")
        return conn.makefile("rb").readline() == text + b"\n"
    except OSError:
        return False


def test_hosts_reach_each_other_and_the_root_namespace_gets_no_address(hosts: Hosts) -> None:
    assert _connects(hosts, "a", "b") and _connects(hosts, "a", "c")
    assert "10.231.7." not in ip("-o", "addr")
    assert all(h.ns in namespaces() for h in hosts.hosts.values())


def test_a_link_taken_down_cuts_tcp_and_up_restores_it(hosts: Hosts) -> None:
    hosts["b"].down()
    assert not _connects(hosts, "a", "b")
    assert _connects(hosts, "a", "c")
    hosts["b"].up()
    assert _connects(hosts, "a", "b")


def test_a_cut_partitions_two_hosts_only_and_an_open_connection_resumes_after_the_mend(
    hosts: Hosts,
) -> None:
    with hosts.enter("a"):
        conn = socket.create_connection((hosts["b"].addr, PORT), timeout=2)
    with conn:
        assert _echoes(conn, b"before")
        hosts.cut("a", "b")
        assert not _connects(hosts, "a", "b")
        assert _connects(hosts, "a", "c") and _connects(hosts, "c", "b")
        conn.settimeout(1.5)
        assert not _echoes(conn, b"during")  # the line is held back, not delivered
        hosts.mend("a", "b")
        conn.settimeout(30)
        assert conn.makefile("rb").readline() == b"during\n"  # TCP retransmits once mended
        assert _echoes(conn, b"after")
    assert _connects(hosts, "a", "b")


def test_killing_a_host_ends_every_process_in_it(hosts: Hosts) -> None:
    with open_hosts("k") as extra:
        _echo(extra["k"])
        assert extra["k"].pids()
        assert extra["k"].kill() >= 1
        for _ in range(50):
            if not extra["k"].pids():
                break
            subprocess.run(["sleep", "0.1"], check=True)
        assert extra["k"].pids() == []


def test_closing_removes_every_namespace_and_stale_ones_of_dead_runs_are_removed() -> None:
    made = Hosts().open()
    made.add("x")
    names = [made.bridge_ns, made["x"].ns]
    made.close()
    assert not set(names) & set(namespaces())
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"vsh{dead.pid}x0-old"
    ip("netns", "add", stale)
    try:
        assert stale in remove_stale()
        assert stale not in namespaces()
    finally:
        ip("netns", "del", stale, check=False)
