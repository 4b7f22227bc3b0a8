"""A fleet without a beat: every ``vidsearch worker`` runs the tick loop, one leads by lease.

Real redis-server, Milvus Lite, sandbox and ``vidsearch worker`` processes (there is no beat).
Before any worker runs, ``status`` says that nothing ticks and names the fix."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack import Stack, start_stack, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CDN = "https://cdn.example.com/nobeat"


def _manifest(path: Path, tag: str, n: int) -> Path:
    path.write_text("url,category\n" + "".join(f"{CDN}/{tag}-{i}.mp4,fleet\n" for i in range(n)))
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(tmp_path_factory.mktemp("nobeat"))
    yield stack
    stack.stop()


def test_with_no_worker_status_says_nothing_ticks_and_names_the_fix(stack: Stack, tmp_path: Path) -> None:
    job_id = stack.vidsearch("submit", str(_manifest(tmp_path / "m.csv", "idle", 2))).stdout.split()[0]

    text = stack.vidsearch("status", job_id).stdout
    status = json.loads(stack.vidsearch("status", job_id, "--json").stdout)

    assert "no scheduler tick for more than" in text and "`vidsearch worker`" in text
    assert status["tick_stalled"] is True and status["status"] == "running"


def test_two_workers_and_no_beat_take_a_job_to_done(stack: Stack, tmp_path: Path) -> None:
    stack.start_worker("w1", "embedding,polling,writing", concurrency=2)
    stack.start_worker("w2", "embedding,polling,writing", concurrency=2)

    proc = stack.vidsearch("submit", str(_manifest(tmp_path / "m.csv", "two", 6)), "--wait", "--json",
                           timeout=300)

    result = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (result["status"], result["done"], result["queued"]) == ("done", 6, 6)
    earlier = json.loads(stack.vidsearch("jobs", "--json").stdout)
    assert all(j["status"] == "done" for j in earlier)  # the job submitted while nothing ran, too


def test_when_the_leader_dies_the_other_worker_takes_over(stack: Stack, tmp_path: Path) -> None:
    leader = _leader(stack)
    os.killpg(leader.pid, signal.SIGKILL)
    leader.wait(30)

    proc = stack.vidsearch("submit", str(_manifest(tmp_path / "m.csv", "after", 4)), "--wait",
                           timeout=300)

    assert proc.returncode == 0, proc.stderr[-2000:]
    job_id = proc.stdout.split()[0]
    assert json.loads(stack.vidsearch("status", job_id, "--json").stdout)["done"] == 4
    # stderr is a pipe here, not a terminal: plain lines (no redrawn bar), the last one complete
    progress = [x for x in proc.stderr.splitlines() if f"job {job_id}: [" in x]
    assert progress and "\r" not in proc.stderr
    assert "4/4 items" in progress[-1]


def _leader(stack: Stack):  # type: ignore[no-untyped-def]
    """The worker process whose log says it leads the ticks (its last leadership event)."""
    def events(name: str) -> list[str]:
        lines = (stack.root / f"worker-{name}.log").read_text(errors="replace").splitlines()
        return [e for e in (_event(x) for x in lines) if e in ("tick_leader", "tick_standby")]

    found: list[int] = []

    def one_leads() -> bool:
        found[:] = [i for i, name in enumerate(("w1", "w2")) if events(name)[-1:] == ["tick_leader"]]
        return len(found) == 1

    wait_for(one_leads, 60, "exactly one worker to lead the ticks")
    return stack.workers[found[0]]


def _event(line: str) -> str | None:
    try:
        return str(json.loads(line).get("event"))
    except (ValueError, AttributeError):
        return None
