"""Which workers are alive: every worker's tick loop beats once a tick interval, the exporter counts.

Each beat is one ZADD of ``{node}|{queues}`` (``queues`` comma-separated) scored by the beat's time
on ``{prefix}:workers``; a worker counts as alive while its last beat is younger than
``alive_window_s``. Beats older than ``FORGET_AFTER_S`` are removed on every beat, so the set holds
only the nodes of the last day (memory bounded by the fleet's size, not by time).
"""

from __future__ import annotations

import redis

from pipeline.settings import Settings
from pipeline.state.keys import Keys

FORGET_AFTER_S = 86_400.0
MIN_ALIVE_WINDOW_S = 15.0


def alive_window_s(settings: Settings) -> float:
    """How long after its last beat a worker still counts as alive (several tick intervals)."""
    return max(MIN_ALIVE_WINDOW_S, settings.tick_interval_s * settings.tick_stall_intervals * 2)


class WorkerPresence:
    """Heartbeats of the fleet's worker processes in one sorted set."""

    def __init__(self, client: redis.Redis[bytes], keys: Keys) -> None:
        self.r = client
        self.key = keys.workers

    def beat(self, node: str, queues: tuple[str, ...], now: float) -> None:
        """Record that ``node`` (serving ``queues``) is alive at ``now``."""
        pipe = self.r.pipeline(transaction=False)
        pipe.zadd(self.key, {f"{node}|{','.join(sorted(queues))}": now})
        pipe.zremrangebyscore(self.key, "-inf", now - FORGET_AFTER_S)
        pipe.execute()

    def leave(self, node: str, queues: tuple[str, ...]) -> None:
        """Forget ``node`` at once (a clean shutdown)."""
        self.r.zrem(self.key, f"{node}|{','.join(sorted(queues))}")

    def alive_per_queue(self, now: float, window_s: float) -> dict[str, int]:
        """Live worker processes per queue (beats within ``window_s`` of ``now``)."""
        counts: dict[str, int] = {}
        for member in self.r.zrangebyscore(self.key, now - window_s, "+inf"):
            _, _, queues = member.decode().rpartition("|")
            for queue in filter(None, queues.split(",")):
                counts[queue] = counts.get(queue, 0) + 1
        return counts
