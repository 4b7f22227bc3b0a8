"""``vidsearch up`` as an operator runs it: a real subprocess on free ports in a temporary data dir.

One stack is started for the module; the last test stops it with SIGINT and checks that every
process of its tree is gone and every port is closed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.errors import ConfigError, StackLockedError
from pipeline.settings import load_settings
from vidsearch.stack.embedded import DataDirLock, EmbeddedStack
from vidsearch.stack.services import free_port, port_open

pytestmark = [pytest.mark.integration, pytest.mark.slow]

READY_TIMEOUT_S = 240
STOP_TIMEOUT_S = 150


def stack_env(data_dir: Path) -> tuple[dict[str, str], dict[str, int]]:
    """The caller's environment without vidsearch settings, plus free ports and ``data_dir``."""
    ports: set[int] = set()
    while len(ports) < 5:
        ports.add(free_port())
    redis_port, milvus_port, sandbox_port, flower_port, api_port = sorted(ports)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDSEARCH_", "TWELVE", "FLOWER_"))}
    env.update({
        "VIDSEARCH_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "VIDSEARCH_MILVUS_URI": f"http://127.0.0.1:{milvus_port}",
        "TWELVELABS_BASE_URL": f"http://127.0.0.1:{sandbox_port}/v1.3",
        "VIDSEARCH_FLOWER_PORT": str(flower_port),
        "VIDSEARCH_API_PORT": str(api_port),
        "VIDSEARCH_DATA_DIR": str(data_dir),
        "VIDSEARCH_LOG_FORMAT": "json",
    })
    return env, {"redis": redis_port, "milvus": milvus_port, "sandbox": sandbox_port, "flower": flower_port,
                 "api": api_port}


def run_vidsearch(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vidsearch", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def process_tree(root: int) -> set[int]:
    """``root`` and all its descendants, from the ppid field of /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                children.setdefault(int(stat[1]), []).append(int(entry.name))
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo.extend(children.get(pid, []))
    return tree


def _stat(pid: int) -> list[str] | None:
    """State and ppid of a process (fields 3 and 4 of /proc/pid/stat), None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[:2]


def running(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


@dataclass
class UpProcess:
    proc: subprocess.Popen[bytes]
    env: dict[str, str]
    ports: dict[str, int]
    data_dir: Path
    out: Path
    err: Path

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")


def wait_ready(up: UpProcess) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while "\nready\n" not in up.stdout():
        if up.proc.poll() is not None:
            raise AssertionError(f"vidsearch up exited {up.proc.returncode}: {up.stderr()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"vidsearch up not ready after {READY_TIMEOUT_S} s: {up.stderr()[-3000:]}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpProcess]:
    root = tmp_path_factory.mktemp("up")
    env, ports = stack_env(root / "data")
    out, err = root / "up.out", root / "up.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "vidsearch", "up"], env=env, stdout=stdout,
                                stderr=stderr, start_new_session=True)
    handle = UpProcess(proc, env, ports, root / "data", out, err)
    try:
        wait_ready(handle)
        yield handle
    finally:
        if proc.poll() is None:
            tree = process_tree(proc.pid)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                for pid in tree:
                    if running(pid):
                        os.kill(pid, signal.SIGKILL)


def test_ready_lists_every_url_warns_of_simulated_embeddings_and_keeps_all_in_the_data_dir(
    up: UpProcess,
) -> None:
    out = up.stdout()
    for port in up.ports.values():
        assert f":{port}" in out
    assert f"Logs         {up.data_dir / 'logs'}" in out
    assert "SIMULATED" in up.stderr()
    logs = {p.name for p in (up.data_dir / "logs").iterdir()}
    assert {"redis.log", "milvus.log", "worker.log", "writer.log", "flower.log", "serve.log"} <= logs
    assert f"sandbox-{up.ports['sandbox']}.log" in logs
    assert any((up.data_dir / "redis").rglob("*.aof*"))
    assert (up.data_dir / "milvus" / "data").is_dir()


def test_ready_prints_the_web_page_url_and_the_page_answers(up: UpProcess) -> None:
    page = f"http://127.0.0.1:{up.ports['api']}/"
    assert f"Web page     {page}" in up.stdout()
    with urllib.request.urlopen(page, timeout=30) as response:
        assert response.status == 200 and b'id="search-form"' in response.read()
    with urllib.request.urlopen(f"{page}v1/jobs", timeout=30) as response:
        assert response.status == 200


def test_a_second_up_on_the_same_data_dir_exits_2_naming_the_first_pid(up: UpProcess) -> None:
    second = run_vidsearch(up.env, "up")
    assert second.returncode == 2
    assert f"pid {up.proc.pid}" in second.stderr
    assert str(up.data_dir) in second.stderr
    assert "ready" not in second.stdout
    assert up.proc.poll() is None


def test_sigint_stops_every_process_of_the_tree_and_closes_every_port(up: UpProcess) -> None:
    tree = process_tree(up.proc.pid)
    assert len(tree) >= 7  # up, redis, milvus, sandbox, worker (+ pool), writer, flower
    up.proc.send_signal(signal.SIGINT)
    assert up.proc.wait(STOP_TIMEOUT_S) == 0
    assert "stopped" in up.stdout()
    assert {pid for pid in tree if running(pid)} == set()
    assert [name for name, port in up.ports.items() if port_open("127.0.0.1", port)] == []


def test_up_refuses_a_port_in_use_naming_the_port_and_the_setting(tmp_path: Path) -> None:
    env, _ = stack_env(tmp_path / "data")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env["VIDSEARCH_FLOWER_PORT"] = str(port)
        result = run_vidsearch(env, "up")
    assert result.returncode == 2
    assert f"port {port}" in result.stderr
    assert "VIDSEARCH_FLOWER_PORT" in result.stderr
    assert "ready" not in result.stdout


def test_up_with_the_milvus_server_but_without_its_extra_exits_2_naming_the_extra(tmp_path: Path) -> None:
    env, _ = stack_env(tmp_path / "data")
    hidden = tmp_path / "no-milvus-wheel" / "milvus"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('the milvus wheel is not installed')\n")
    env["PYTHONPATH"] = str(hidden.parent)
    result = run_vidsearch(env, "up", "--milvus", "server")
    assert result.returncode == 2, result.stderr
    assert "pip install 'vidsearch[milvus-server]'" in result.stderr
    assert "--milvus lite" in result.stderr
    assert "ready" not in result.stdout


def test_up_refuses_an_unknown_milvus_engine(tmp_path: Path) -> None:
    env, _ = stack_env(tmp_path / "data")
    result = run_vidsearch(env, "up", "--milvus", "cluster")
    assert result.returncode == 2
    assert "invalid choice: 'cluster'" in result.stderr


def test_the_data_dir_lock_names_its_holder_and_is_free_again_after_release(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    first = DataDirLock(settings.data_dir)
    first.acquire()
    with pytest.raises(StackLockedError) as refused:
        DataDirLock(settings.data_dir).acquire()
    assert refused.value.pid == os.getpid()
    first.release()
    again = DataDirLock(settings.data_dir)
    again.acquire()
    again.release()


def test_sigterm_while_starting_stops_what_started_and_exits_130(tmp_path: Path) -> None:
    env, ports = stack_env(tmp_path / "data")
    with (tmp_path / "out").open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "vidsearch", "up"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not port_open("127.0.0.1", ports["redis"]):
        assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "out").read_text()
        time.sleep(0.05)
    tree = process_tree(proc.pid)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(STOP_TIMEOUT_S) == 130, (tmp_path / "out").read_text()
    assert "ready" not in (tmp_path / "out").read_text()
    assert {pid for pid in tree if running(pid)} == set()
    assert [name for name, port in ports.items() if port_open("127.0.0.1", port)] == []
    assert not [p for p in Path("/proc").glob("[0-9]*/cmdline")
                if str(tmp_path / "data").encode() in _read(p)]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def test_the_embedded_stack_refuses_a_sentinel_url_without_showing_its_password(tmp_path: Path) -> None:
    settings = load_settings(redis_url="redis+sentinel://:pw-9z@127.0.0.1:26379/vidsearch",
                             data_dir=tmp_path)
    with pytest.raises(ConfigError, match="Sentinel set") as caught:
        EmbeddedStack(settings)
    assert "pw-9z" not in str(caught.value)
