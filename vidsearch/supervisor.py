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
from collections.abc import Sequence
from types import FrameType

from pipeline.logs import get_logger

log = get_logger("vidsearch.supervisor")


class Supervisor:
    def __init__(self, argv: Sequence[str], min_uptime_s: float = 30.0, max_backoff_s: float = 30.0) -> None:
        self.argv = list(argv)
        self.min_uptime_s = min_uptime_s
        self.max_backoff_s = max_backoff_s
        self.stopping = threading.Event()
        self.child: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping.set()
        child = self.child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)  # warm shutdown, even for Ctrl-C

    def run(self) -> int:
        """Run (and re-run) the child until asked to stop; returns the exit code."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        backoff = 1.0
        while True:
            started = time.monotonic()
            self.child = subprocess.Popen(self.argv)
            code = self.child.wait()
            if self.stopping.is_set():
                return 0 if code in (0, -signal.SIGTERM, -signal.SIGINT) else code
            uptime = time.monotonic() - started
            backoff = 1.0 if uptime >= self.min_uptime_s else min(self.max_backoff_s, backoff * 2)
            self.restarts += 1
            log.warning("worker_exited", code=code, uptime_s=round(uptime, 1),
                        restart_in_s=backoff, restarts=self.restarts)
            if self.stopping.wait(backoff):
                return 0
