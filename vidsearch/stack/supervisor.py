"""Keep one Celery worker process alive.

Celery's worker can exit on its own when the Redis broker goes away mid-flight (a known class of
kombu bugs: "Unrecoverable error ... 'NoneType' object has no attribute ..."), and a SIGKILLed
worker stays dead. ``vidsearch worker`` therefore runs the Celery worker as a child and restarts
it whenever it exits without the supervisor being asked to stop (Celery exits with status 0
even after an "Unrecoverable error", so the status cannot tell a crash apart), with exponential
backoff (reset once a child has run for ``min_uptime_s``). SIGTERM and SIGINT stop the child
warmly (one SIGTERM) and then the supervisor. Durable leases in Redis make a restart safe:
nothing depends on the dead process.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from types import FrameType

from pipeline.logs import get_logger

log = get_logger("vidsearch.stack.supervisor")


class Supervisor:
    """Runs ``argv`` and runs it again when it exits unasked.

    ``stop_grace_s``: after a stop signal, SIGKILL a child still running this much later (Flower,
    for one, ignores SIGTERM while its broker is unreachable). ``None`` waits for the child, as a
    Celery worker finishing its current tasks deserves.
    """

    def __init__(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
        min_uptime_s: float = 30.0, max_backoff_s: float = 30.0, stop_grace_s: float | None = None,
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env) if env is not None else None
        self.min_uptime_s = min_uptime_s
        self.max_backoff_s = max_backoff_s
        self.stop_grace_s = stop_grace_s
        self.stopping = threading.Event()
        self.child: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping.set()
        child = self.child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)  # warm shutdown, even for Ctrl-C
            if self.stop_grace_s is not None:
                timer = threading.Timer(self.stop_grace_s, _kill, args=(child,))
                timer.daemon = True
                timer.start()

    def run(self) -> int:
        """Run (and re-run) the child until asked to stop; returns the exit code."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        backoff = 1.0
        while True:
            started = time.monotonic()
            self.child = subprocess.Popen(self.argv, env=self.env)
            code = self.child.wait()
            if self.stopping.is_set():
                clean = code in (0, -signal.SIGTERM, -signal.SIGINT)
                return 0 if clean else (128 - code if code < 0 else code)  # shell convention
            uptime = time.monotonic() - started
            backoff = 1.0 if uptime >= self.min_uptime_s else min(self.max_backoff_s, backoff * 2)
            self.restarts += 1
            log.warning("worker_exited", code=code, uptime_s=round(uptime, 1),
                        restart_in_s=backoff, restarts=self.restarts)
            if self.stopping.wait(backoff):
                return 0


def _kill(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        log.warning("child_killed_after_grace", pid=child.pid)
        child.kill()
