"""Check in-flight tasks without holding a worker: one retrieve per due item, then reschedule.

In-flight items live in a sorted set scored by their next check time; the scheduler tick claims
the due ones. The interval adapts: the first check lands when tasks of this model have recently
taken to finish (an exponentially weighted mean kept in Redis), later checks come at a tenth of
that, growing with the time overdue, capped at ``poll_max_s``. Until a model's first task
finishes, checks follow a geometric schedule from ``poll_initial_s``; the moment one finishes,
every in-flight check is pulled forward to its own submission time plus what that task took.
Past ``task_deadline_s`` the item fails with a clear reason and is never polled again.

Twelve Labs keeps a task's results seven days; a task read after that (our workers were down
longer) answers ``failed`` with "no longer available". The item fails for good with a reason that
says so: its one paid task is spent, and ``vidsearch retry JOB`` (or ``submit --retry-failed``)
embeds it again as a second paid task, by an operator's choice, never silently.
"""

from __future__ import annotations

import time

import redis

from pipeline.errors import ApiRejectedError, TransientError
from pipeline.ingest.minutes import MinuteBook
from pipeline.ledger.records import Item
from pipeline.ledger.store import JobStore
from pipeline.segments import Segment, pack_vector
from pipeline.settings import Settings
from pipeline.spec import EmbeddingSpec, segment_pk
from pipeline.state.keys import Keys
from pipeline.state.limits import Limits
from pipeline.twelvelabs import TaskResult, TwelveLabsGateway

EWMA_WEIGHT = 0.2
EXPIRED_MARK = "no longer available"
"""In the message of a task whose results the service no longer keeps (retention, seven days)."""
MIN_DELAY_S = 0.2


def expected_task_s(client: redis.Redis[bytes], keys: Keys, model: str) -> float | None:
    raw = client.hget(keys.stats, f"task_s:{model}")
    return float(raw) if raw else None


def first_poll_delay(client: redis.Redis[bytes], keys: Keys, spec: EmbeddingSpec, s: Settings) -> float:
    expected = expected_task_s(client, keys, spec.model)
    return min(s.poll_max_s, max(MIN_DELAY_S, expected or s.poll_initial_s))


def next_poll_delay(elapsed_s: float, polls: int, expected_s: float | None, s: Settings) -> float:
    """Seconds until the next check of a task still processing after ``elapsed_s``."""
    if expected_s is None:
        delay = s.poll_initial_s * s.poll_factor**polls
    elif elapsed_s < expected_s:
        delay = expected_s - elapsed_s
    else:
        delay = max(0.1 * expected_s, (s.poll_factor - 1) * (elapsed_s - expected_s))
    return min(s.poll_max_s, max(MIN_DELAY_S, delay))


def failure_reason(task_id: str, error: str | None) -> str:
    """The reason an item whose task ended ``failed`` is failed with."""
    if error and EXPIRED_MARK in error:
        return (f"Twelve Labs task {task_id} finished but its results expired before they were read "
                f"(the service keeps them 7 days): {error} `vidsearch retry JOB` embeds the item "
                "again (a second paid task)")
    return f"Twelve Labs task {task_id} failed: {error}"


class Poller:
    """Polls one item's task and moves it on."""

    def __init__(
        self, client: redis.Redis[bytes], jobs: JobStore, gateway: TwelveLabsGateway, settings: Settings
    ) -> None:
        self.r = client
        self.jobs = jobs
        self.gateway = gateway
        self.settings = settings
        self.book = MinuteBook(client, jobs, Limits(client, jobs.keys.limits, settings), settings)

    def poll(self, key: str) -> str:
        """Check the item's task once; returns what happened (for logs and tests)."""
        item = self.jobs.get_item(key)
        if item is None or item.state != "processing" or not item.task_id:
            self.r.zrem(self.jobs.keys.inflight, key)
            return "skipped"
        try:
            result = self.gateway.retrieve(item.task_id)
        except ApiRejectedError as exc:
            self.jobs.fail(key, f"Twelve Labs task {item.task_id} cannot be read: {exc}")
            return "failed"
        except TransientError:
            self.jobs.schedule_poll(key, time.time() + self.settings.poll_initial_s, item.polls)
            return "error"
        return self._advance(item, result)

    def _advance(self, item: Item, result: TaskResult) -> str:
        now = time.time()
        elapsed = now - (item.submitted_at or now)
        if result.status == "ready":
            return self._ready(item, result, elapsed)
        if result.status == "failed":
            self.jobs.fail(item.key, failure_reason(item.task_id or "", result.error))
            return "failed"
        if elapsed > self.settings.task_deadline_s:
            self.jobs.fail(item.key, (
                f"Twelve Labs task {item.task_id} still processing after {elapsed:.0f} s "
                f"(deadline {self.settings.task_deadline_s:.0f} s)"
            ))
            return "deadline"
        spec = self._spec(item)
        expected = expected_task_s(self.r, self.jobs.keys, spec.model)
        delay = next_poll_delay(elapsed, item.polls + 1, expected, self.settings)
        self.jobs.schedule_poll(item.key, now + delay, item.polls + 1)
        return "processing"

    def _ready(self, item: Item, result: TaskResult, elapsed: float) -> str:
        spec = self._spec(item)
        entries = [s.to_fields() for s in self._segments(item, spec, result)]
        if not self.jobs.record_ready(item.key, item.task_id or "", entries, self.jobs.keys.segments):
            return "skipped"
        took = result.processing_s if result.processing_s is not None else elapsed
        self._learn(spec.model, took)
        self.book.settle(item, [(seg.start_s, seg.end_s) for seg in result.segments])
        return "ready"

    def _segments(self, item: Item, spec: EmbeddingSpec, result: TaskResult) -> list[Segment]:
        collection = self.jobs.collection(item.job_id)
        return [
            Segment(
                pk=segment_pk(item.key, seg.option, seg.scope, seg.start_s, seg.end_s),
                item_key=item.key, job_id=item.job_id, url=item.url, category=item.category,
                title=item.title, metadata=item.metadata, model=spec.model, option=seg.option,
                scope=seg.scope, start_s=seg.start_s, end_s=seg.end_s,
                vector=pack_vector(seg.embedding), collection=collection,
            )
            for seg in result.segments
        ]

    def _learn(self, model: str, took_s: float) -> None:
        field = f"task_s:{model}"
        old = expected_task_s(self.r, self.jobs.keys, model)
        new = took_s if old is None else (1 - EWMA_WEIGHT) * old + EWMA_WEIGHT * took_s
        if self.r.hsetnx(self.jobs.keys.stats, field, f"{new:.3f}"):
            # the first task time ever learned: tasks polled blind so far move to when it says
            self.jobs.pull_forward_polls(time.time(), new)
        else:
            self.r.hset(self.jobs.keys.stats, field, f"{new:.3f}")

    def _spec(self, item: Item) -> EmbeddingSpec:
        spec = self.jobs.spec(item.job_id)
        if spec is None:
            raise TransientError(f"job {item.job_id} of item {item.key} is missing")
        return spec
