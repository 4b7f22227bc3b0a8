"""vidsearch worker's supervisor: restarts a worker that dies, stops it warmly when asked."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.stack import wait_for

CHILD = """
import pathlib, sys, time
runs = pathlib.Path(sys.argv[1])
runs.write_text(runs.read_text() + "x" if runs.exists() else "x")
if len(runs.read_text()) < 3:
    sys.exit(0)          # dies on its own, with status 0 as Celery does after an unrecoverable error
time.sleep(60)
"""


def _supervise(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    runs = tmp_path / "runs"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    code = (
        "import sys; from vidsearch.stack.supervisor import Supervisor; "
        f"sys.exit(Supervisor([sys.executable, {str(script)!r}, {str(runs)!r}], max_backoff_s=0.2).run())"
    )
    return subprocess.Popen([sys.executable, "-c", code]), runs


def test_a_worker_that_exits_unasked_is_restarted(tmp_path: Path) -> None:
    proc, runs = _supervise(tmp_path)
    try:
        wait_for(lambda: runs.exists() and len(runs.read_text()) == 3, 30, "three runs")
        time.sleep(0.5)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_sigterm_stops_the_worker_and_the_supervisor_cleanly(tmp_path: Path) -> None:
    proc, runs = _supervise(tmp_path)
    wait_for(lambda: runs.exists() and len(runs.read_text()) == 3, 30, "a steady child")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert len(runs.read_text()) == 3


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    script = tmp_path / "stubborn.py"
    ready = tmp_path / "ready"
    script.write_text(
        "import pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"pathlib.Path({str(ready)!r}).write_text('1')\n"
        "time.sleep(120)\n"
    )
    code = (
        "import sys; from vidsearch.stack.supervisor import Supervisor; "
        f"sys.exit(Supervisor([sys.executable, {str(script)!r}], stop_grace_s=1.0).run())"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    wait_for(ready.exists, 30, "the stubborn child")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 128 + signal.SIGKILL
    assert time.monotonic() - started < 10
