"""Create one Twelve Labs task per item, and never a second one.

Before a create request leaves, the item records ``ca`` (create attempted) durably (on a Sentinel set,
WAITed for on a replica: ``JobStore.note_create_attempt``). If that attempt's
outcome is unknown (a crash, a dropped connection, a 5xx), the next attempt first looks for the
task through the list endpoint and adopts it; only when none is found does it create again.
A 429 or another 4xx proves nothing was created, so the mark is cleared.

Our own pacing never fails an item: a create whose 429 (or whose wait for the global quota)
outlasts its retries goes back to wait until the limit frees, without spending one of its
``max_item_attempts`` rounds; only other transient errors spend them.

The create lock is fenced (``pipeline/state/locks.py``): each attempt first extends our own lease, and
the ``ca`` mark is written only while the lock is still ours and the item still ``creating``. A
worker paused past its lease (SIGSTOP, a long GC, a slow lookup) finds that out before it sends
anything, so the next holder's task stays the only one, and it never releases that holder's lock.
The check is Redis's, so its answer can be stale: a worker cut from Redis after the mark was
written but before the answer arrived would learn "still yours" only when the partition heals,
long after the lease ran out and another worker created the task. So the create is sent only if
that answer came back within half the lease (``SEND_WITHIN_LEASE``), timed from before it was asked.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from pipeline.errors import (
    ApiRejectedError,
    LeaseLostError,
    NotReplicatedError,
    PermanentError,
    RateLimitedError,
    TransientError,
)
from pipeline.ingest.minutes import duration_minutes
from pipeline.ingest.polling import first_poll_delay
from pipeline.ledger.records import Item
from pipeline.ledger.store import JobStore
from pipeline.settings import Settings
from pipeline.spec import EmbeddingSpec
from pipeline.state.locks import FencedLock
from pipeline.twelvelabs import TwelveLabsGateway

SEND_WITHIN_LEASE = 0.5
"""A create is sent only if the mark's answer came within this share of the lease it pushed: the
lease runs from when Redis ran the script (after we asked), so the rest of the lease is left for
the request to reach Twelve Labs before a next holder could look for it."""


@dataclass(frozen=True, slots=True)
class CreateOutcome:
    """What happened to one item: created, deferred (retried later), failed or skipped."""

    kind: str
    task_id: str | None = None
    reason: str | None = None


class Embedder:
    """Turns admitted items into Twelve Labs tasks."""

    def __init__(
        self, client: redis.Redis[bytes], jobs: JobStore, gateway: TwelveLabsGateway, settings: Settings
    ) -> None:
        self.r = client
        self.jobs = jobs
        self.gateway = gateway
        self.settings = settings

    def create(self, key: str, charged: bool) -> CreateOutcome:
        """Create (or adopt) the task of one item in state ``creating``."""
        item = self.jobs.get_item(key)
        if item is None or item.state != "creating":
            return CreateOutcome("skipped", reason=f"state {item.state if item else 'missing'}")
        lock = FencedLock(self.r, self.jobs.keys.lock(f"create:{key}"), self.settings.create_lease_s)
        if not lock.acquire():
            return CreateOutcome("skipped", reason="another worker is creating it")
        try:
            return self._create_locked(item, charged, lock)
        except LeaseLostError as exc:
            return CreateOutcome("skipped", reason=str(exc))
        finally:
            lock.release()

    def _create_locked(self, item: Item, charged: bool, lock: FencedLock) -> CreateOutcome:
        spec = self.jobs.spec(item.job_id)
        if spec is None:
            self.jobs.fail(item.key, f"job {item.job_id} is missing")
            return CreateOutcome("failed", reason="job missing")
        try:
            task_id = self.gateway.retrying(
                "create", lambda: self._attempt(item, spec, lock), paid=True, charged=charged
            )
        except PermanentError as exc:
            self.jobs.fail(item.key, str(exc))
            return CreateOutcome("failed", reason=str(exc))
        except TransientError as exc:
            return self._defer(item, exc)
        except NotReplicatedError as exc:  # Redis's replica is behind or gone: wait, spend no round
            self.jobs.defer_create(item.key, time.time() + self.settings.retry_max_s)
            return CreateOutcome("deferred", reason=str(exc))
        now = time.time()
        first = first_poll_delay(self.r, self.jobs.keys, spec, self.settings)
        if not self.jobs.record_created(item.key, task_id, now, now + first):
            # a lookup that outlived our lease can find the next holder's task, already recorded
            reason = f"another worker recorded task {task_id} first"
            return CreateOutcome("skipped", task_id=task_id, reason=reason)
        return CreateOutcome("created", task_id=task_id)

    def _attempt(self, item: Item, spec: EmbeddingSpec, lock: FencedLock) -> str:
        if not lock.extend():  # the lease covers this attempt's lookup; lost means another owns it
            raise LeaseLostError(f"the create lease of {item.key} ran out before an attempt")
        fresh = self.jobs.get_item(item.key) or item
        if fresh.create_attempted_at is not None:
            found = self.gateway.find_task(item.url, spec, since=fresh.create_attempted_at)
            if found:
                return found
        asked = time.monotonic()
        if not self.jobs.note_create_attempt(item.key, time.time(), lock):
            raise LeaseLostError(
                f"the create lease of {item.key} ran out and another worker owns it: nothing sent"
            )
        answered_s = time.monotonic() - asked
        if answered_s >= lock.lease_ms / 1000 * SEND_WITHIN_LEASE:
            raise LeaseLostError(
                f"the create mark of {item.key} was confirmed {answered_s:.1f} s after it was asked "
                "for; the lease it pushed may be another worker's by now: nothing sent"
            )
        try:
            return self.gateway.create_task(item.url, spec, request_scopes(item, spec, self.settings))
        except (RateLimitedError, ApiRejectedError):
            self.jobs.clear_create_attempt(item.key)
            raise

    def _defer(self, item: Item, exc: TransientError) -> CreateOutcome:
        if isinstance(exc, RateLimitedError):  # our pacing: wait for the limit, spend no round
            wait = exc.retry_after_s or self.settings.retry_initial_s
            spread = random.uniform(0, self.settings.tick_interval_s)
            self.jobs.defer_create(item.key, time.time() + wait + spread)
            return CreateOutcome("deferred", reason=f"rate limited for {wait:.0f} s: {exc}")
        redrives = int(self.r.hincrby(self.jobs.keys.item(item.key), "rd", 1))
        if redrives >= self.settings.max_item_attempts:
            reason = f"gave up after {redrives} rounds of retries: {exc}"
            self.jobs.fail(item.key, reason, transient=True)
            return CreateOutcome("failed", reason=reason)
        delay = full_jitter(redrives, self.settings.retry_max_s, self.settings.create_lease_s)
        self.jobs.defer_create(item.key, time.time() + delay)
        return CreateOutcome("deferred", reason=str(exc))


def full_jitter(
    rounds: int, base_s: float, cap_s: float, rng: Callable[[float, float], float] = random.uniform
) -> float:
    """A delay drawn uniformly from [0, min(cap, base * 2**rounds)] ("full jitter"), so items
    deferred together after an outage come back spread out, not all at once."""
    return rng(0.0, min(cap_s, base_s * 2**rounds))


def request_scopes(item: Item, spec: EmbeddingSpec, settings: Settings) -> tuple[str, ...]:
    """The scopes to request for ``item``: the spec's, without ``asset`` when the manifest says the
    video is longer than ``asset_scope_max_duration_s`` (asset vectors suit short videos; a long
    one is searched, and "more like this" is answered, from its clips). The spec, and so the item
    key, keeps every scope: the choice is per request, so existing keys stay valid."""
    limit = settings.asset_scope_max_duration_s
    minutes = duration_minutes(item.metadata)
    if not limit or minutes is None or minutes * 60 <= limit or spec.scopes == ("asset",):
        return spec.scopes
    return tuple(s for s in spec.scopes if s != "asset")
