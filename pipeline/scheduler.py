"""The tick: what to dispatch now. Runs every ``tick_interval_s`` (Celery beat), at most one at a time.

1. creates whose lease expired (a lost message, a dead worker, a deferred retry) are re-driven;
2. waiting items are admitted, as many as the in-flight cap and the global quota allow
   (their first request's token is taken here, so the create task starts at once);
3. in-flight items whose next check is due are claimed for polling;
4. a writing task is asked for when the segment stream has a backlog and no writer drains it.
Every claim pushes a lease forward, so a dispatched message that is lost is re-driven later.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import redis

from pipeline.jobs import JobStore
from pipeline.quota import Quota
from pipeline.settings import Settings
from pipeline.stream import stream_backlog

POLL_BATCH = 1000


@dataclass(slots=True)
class TickPlan:
    """What one tick decided to dispatch."""

    admitted: list[str] = field(default_factory=list)
    redriven: list[str] = field(default_factory=list)
    polls: list[str] = field(default_factory=list)
    drain: bool = False


class Scheduler:
    def __init__(self, client: redis.Redis[bytes], jobs: JobStore, quota: Quota, settings: Settings) -> None:
        self.r = client
        self.jobs = jobs
        self.quota = quota
        self.settings = settings

    def tick(self) -> TickPlan | None:
        """Plan one tick, or None when another tick is running."""
        lock = self.jobs.keys.lock("tick")
        lease_ms = int(max(5.0, self.settings.tick_interval_s * 5) * 1000)
        if not self.r.set(lock, "1", nx=True, px=lease_ms):
            return None
        try:
            return self._plan(time.time())
        finally:
            self.r.delete(lock)

    def _plan(self, now: float) -> TickPlan:
        s, keys = self.settings, self.jobs.keys
        plan = TickPlan()
        plan.redriven = self.jobs.claim_due(keys.creating, now, now + s.create_lease_s, s.admit_batch)
        plan.admitted = self._admit(now)
        plan.polls = self.jobs.claim_due(keys.inflight, now, now + s.poll_lease_s, POLL_BATCH)
        plan.drain = self._want_drain()
        return plan

    def _admit(self, now: float) -> list[str]:
        s = self.settings
        room = s.max_in_flight - self.jobs.in_flight_count()
        wanted = min(s.admit_batch, room, self.jobs.waiting_count())
        if wanted <= 0:
            return []
        grant = self.quota.take(wanted)
        admitted = self.jobs.admit(grant.granted, now + s.create_lease_s)
        return admitted

    def _want_drain(self) -> bool:
        if stream_backlog(self.r, self.settings) <= 0:
            return False
        lease_s = int(self.settings.writer_drain_s + self.settings.writer_claim_idle_s)
        return bool(self.r.set(self.jobs.keys.lock("drain"), "1", nx=True, ex=lease_s))

    def drain_finished(self) -> None:
        self.r.delete(self.jobs.keys.lock("drain"))
