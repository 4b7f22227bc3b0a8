"""The tick: what to dispatch now. Runs every ``tick_interval_s``, at most one at a time.

Every worker runs a tick loop (``workers/ticker.py``); one of them leads by lease (``Leadership``)
and the others stand by, so a fleet needs no beat and survives the loss of any host. Each tick
runs under a fenced lock and leaves a heartbeat (``{prefix}:tick``, expiring after
``tick_stall_intervals`` intervals) that ``status`` and ``submit --wait`` read to say when
nothing is ticking.

1. creates whose lease expired (a lost message, a dead worker, a deferred retry) are re-driven;
2. waiting items are admitted, as many as the in-flight cap, their jobs' budgets and every
   dimension of the global quota allow (their first request's token and their estimated media
   minutes are taken here, so the create task starts at once: ``pipeline/ingest/minutes.py``);
   when a dimension is spent, admission holds for every worker until its window frees, and
   ``{prefix}:quota:hold`` says which limit holds and until when (``admission_hold``);
3. in-flight items whose next check is due are claimed for polling;
4. a writing task is asked for when the segment stream has a backlog and no writer drains it.
Every claim pushes a lease forward, so a dispatched message that is lost is re-driven later.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import redis

from pipeline.ingest.minutes import MinuteBook
from pipeline.ingest.stream import stream_backlog
from pipeline.ledger.store import JobStore
from pipeline.settings import Settings
from pipeline.state.keys import Keys
from pipeline.state.limits import PAUSE, Hold, Limits
from pipeline.state.locks import FencedLock
from pipeline.state.quota import Quota

POLL_BATCH = 1000


@dataclass(slots=True)
class TickPlan:
    """What one tick decided to dispatch."""

    admitted: list[str] = field(default_factory=list)
    redriven: list[str] = field(default_factory=list)
    polls: list[str] = field(default_factory=list)
    drain: str | None = None
    """The token of the drain lock this tick took (the write task releases it), or None."""


class Scheduler:
    def __init__(self, client: redis.Redis[bytes], jobs: JobStore, quota: Quota, settings: Settings) -> None:
        self.r = client
        self.jobs = jobs
        self.quota = quota
        self.settings = settings
        self.limits = Limits(client, jobs.keys.limits, settings)
        self.book = MinuteBook(client, jobs, self.limits, settings)

    def tick(self) -> TickPlan | None:
        """Plan one tick, or None when another tick is running."""
        lock = FencedLock(self.r, self.jobs.keys.lock("tick"), max(5.0, self.settings.tick_interval_s * 5))
        if not lock.acquire():
            return None
        try:
            plan = self._plan(time.time())
            self.r.set(self.jobs.keys.tick, time.time(), px=int(self.stall_after_s() * 1000))
            return plan
        finally:
            lock.release()

    def stall_after_s(self) -> float:
        """Seconds without a tick after which dispatching has stopped."""
        return self.settings.tick_interval_s * self.settings.tick_stall_intervals

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
        heads = self.book.within_budgets(self.book.head(wanted))
        fit = self.limits.fit([h.minutes for h in heads])
        count = fit.count
        if heads and self._probing(heads[0].guessed):  # one create at a time, to learn from it
            count = min(count, 0 if self.r.zcard(self.jobs.keys.creating) else 1)
        grant = self.quota.take(count)
        self._note_hold(fit.hold if fit.count < len(heads) else None, grant.granted, count)
        chosen = heads[: self.limits.charge([h.minutes for h in heads[: grant.granted]]).count]
        admitted = self.jobs.admit(len(chosen), now + s.create_lease_s)
        self.book.charged(chosen, admitted)
        return admitted

    def _probing(self, guessed: bool) -> bool:
        """Whether admission goes one create at a time (``pipeline/state/limits.py``)."""
        return not self.limits.heard() or (guessed and self.limits.media_limited())

    def _note_hold(self, hold: Hold | None, granted: int, wanted: int) -> None:
        """Record which limit holds admission (a window, else a 429's pause), or that none does."""
        if hold is None and granted < wanted:
            until = self.quota.paused_until()
            hold = Hold(PAUSE, until) if until > time.time() else None
        if hold is None:
            self.r.delete(self.jobs.keys.hold)
            return
        ttl_ms = max(1, int((hold.until - time.time()) * 1000))
        self.r.set(self.jobs.keys.hold, f"{hold.dimension}|{hold.until:.3f}", px=ttl_ms)

    def _want_drain(self) -> str | None:
        if stream_backlog(self.r, self.settings) <= 0:
            return None
        lock = self._drain_lock()
        return lock.token if lock.acquire() else None

    def _drain_lock(self, token: str = "") -> FencedLock:
        lease_s = self.settings.writer_drain_s + self.settings.writer_claim_idle_s
        return FencedLock(self.r, self.jobs.keys.lock("drain"), lease_s, token=token)

    def drain_finished(self, token: str) -> bool:
        """Release the drain lock taken with ``token`` (only if it is still that one)."""
        return self._drain_lock(token).release()


class Leadership:
    """Leader by lease: the process holding ``{prefix}:lock:leader`` runs the fleet's ticks.

    ``lead()`` extends our lease or takes a free one; a leader that dies or stalls loses the
    lease after ``lease_s`` and another process takes over."""

    def __init__(self, client: redis.Redis[bytes], jobs: JobStore, settings: Settings) -> None:
        lease_s = max(3.0, settings.tick_interval_s * 3)
        self.lock = FencedLock(client, jobs.keys.lock("leader"), lease_s)

    def lead(self) -> bool:
        return self.lock.extend() or self.lock.acquire()

    def resign(self) -> None:
        self.lock.release()


def admission_hold(client: redis.Redis[bytes], keys: Keys) -> Hold | None:
    """The limit that holds admission and when it frees, or None when admission is free."""
    raw = client.get(keys.hold)
    if raw is None:
        return None
    name, _, until = raw.decode().partition("|")
    return Hold(name, float(until))


def last_tick(client: redis.Redis[bytes], jobs: JobStore) -> float | None:
    """When the last tick ran (epoch seconds), or None when none ran for ``stall_after_s``."""
    raw = client.get(jobs.keys.tick)
    return float(raw) if raw is not None else None
