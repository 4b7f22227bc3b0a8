"""The tick loop every worker process runs (a thread of the Celery main process).

Each loop wakes every ``tick_interval_s``; the one that holds the leader lease (``Leadership``)
runs the tick and dispatches its plan, the others only try to take the lease. So a fleet of
workers needs no ``vidsearch beat`` and keeps ticking when any host goes away. Every wake-up also
records the worker's heartbeat (``pipeline/state/presence.py``), which the exporter counts.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

import redis

from pipeline.ingest.scheduler import Leadership, TickPlan
from pipeline.logs import get_logger
from pipeline.state.presence import WorkerPresence
from workers.context import Runtime

log = get_logger("vidsearch.ticker")


class TickLoop:
    """Leader-by-lease tick loop with its own clients (never shared with pool processes)."""

    def __init__(
        self, rt: Runtime, dispatch: Callable[[TickPlan], None], node: str, queues: tuple[str, ...]
    ) -> None:
        self.rt = rt
        self.dispatch = dispatch
        self.node, self.queues = node, queues
        self.presence = WorkerPresence(rt.redis, rt.keys)
        self.leadership = Leadership(rt.redis, rt.jobs, rt.settings)
        self.leading = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vidsearch-tick", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with contextlib.suppress(redis.RedisError):
            self.leadership.resign()
        with contextlib.suppress(redis.RedisError):
            self.presence.leave(self.node, self.queues)
        self.rt.clients.close()

    def _run(self) -> None:
        while not self._stop.wait(self.rt.settings.tick_interval_s):
            try:
                self.presence.beat(self.node, self.queues, time.time())
                self.step()
            except redis.RedisError as exc:
                log.warning("tick_loop_redis_error", error=str(exc))

    def step(self) -> TickPlan | None:
        """One wake-up: lead (or stand by) and, as the leader, tick and dispatch."""
        leading = self.leadership.lead()
        if leading != self.leading:
            log.info("tick_leader" if leading else "tick_standby")
            self.leading = leading
        if not leading:
            return None
        plan = self.rt.scheduler.tick()
        if plan is not None:
            self.dispatch(plan)
        return plan
