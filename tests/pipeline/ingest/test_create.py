"""One paid task per item: creation, reconciliation and failure paths on real Redis and sandbox."""

from __future__ import annotations

import random
import threading
import time

import redis
from twelvelabs import TwelveLabs

from pipeline.errors import TransientError
from pipeline.ingest.create import CreateOutcome, Embedder, full_jitter
from pipeline.ledger.records import Item
from pipeline.ledger.store import Admission, JobStore, SubmitMode
from pipeline.settings import Settings, load_settings
from pipeline.spec import EmbeddingSpec, item_key
from pipeline.state.keys import Keys
from pipeline.state.locks import FencedLock
from pipeline.twelvelabs import TwelveLabsGateway
from tests.stack import sandbox_config, sandbox_stats, wait_for
from vidsearch.stack.services import Service

URL = "https://cdn.example.com/videos/cooking-pasta-at-home.mp4"


def _setup(
    own_sandbox: Service, client: redis.Redis, url: str = URL, metadata: str = "{}", **overrides: object
) -> tuple[Embedder, JobStore, str]:
    values: dict[str, object] = {
        "twelvelabs_base_url": f"{own_sandbox.url}/v1.3",
        "retry_initial_s": 0.05,
        "retry_max_s": 0.2,
        "retry_total_s": 2.0,
        **overrides,
    }
    settings: Settings = load_settings(**values)
    jobs = JobStore(client, Keys("t"))
    spec = EmbeddingSpec.from_settings(settings)
    job = jobs.create_job(["m.csv"], spec)
    key = item_key(url, spec)
    jobs.submit_batch(job, [Admission(key=key, category="food", url=url, metadata=metadata)], SubmitMode())
    jobs.admit(1, time.time() + 60)
    return Embedder(client, jobs, TwelveLabsGateway(settings), settings), jobs, key


def test_an_admitted_item_gets_exactly_one_task(own_sandbox: Service, redis_client: redis.Redis) -> None:
    embedder, jobs, key = _setup(own_sandbox, redis_client)
    outcome = embedder.create(key, charged=True)
    assert outcome.kind == "created"
    item = jobs.get_item(key)
    assert item is not None and (item.state, item.task_id) == ("processing", outcome.task_id)
    assert embedder.create(key, charged=True).kind == "skipped"
    assert sandbox_stats(own_sandbox)["tasks_by_url"] == {URL: 1}


def requested_scopes(sandbox: Service) -> dict[str, list[str]]:
    """url -> the embedding scopes its task was created with (the sandbox's task list)."""
    client = TwelveLabs(api_key="t", base_url=f"{sandbox.url}/v1.3")
    return {t.video_embedding.metadata.input_url: list(t.video_embedding.metadata.video_embedding_scope)
            for t in client.embed.v_2.tasks.list(page_limit=50)
            if t.video_embedding and t.video_embedding.metadata}


def test_the_asset_scope_is_requested_only_for_videos_short_enough_and_keys_do_not_change(
    own_sandbox: Service, redis_client: redis.Redis,
) -> None:
    long_url, short_url, unknown_url = (URL + "?long", URL + "?short", URL + "?unknown")
    for url, metadata in ((long_url, '{"duration_s": 120}'), (short_url, '{"duration_s": 25}'),
                          (unknown_url, "{}")):
        embedder, _, key = _setup(own_sandbox, redis_client, url, metadata)
        assert embedder.create(key, charged=True).kind == "created"
        everywhere = load_settings(twelvelabs_base_url=embedder.settings.twelvelabs_base_url,
                                   asset_scope_max_duration_s=0)
        assert key == item_key(url, EmbeddingSpec.from_settings(everywhere))  # the setting is not in it
    assert requested_scopes(own_sandbox) == {long_url: ["clip"], short_url: ["clip", "asset"],
                                             unknown_url: ["clip", "asset"]}


def test_a_create_whose_answer_was_lost_is_adopted_not_repeated(
    own_sandbox: Service,
    redis_client: redis.Redis,
) -> None:
    embedder, jobs, key = _setup(own_sandbox, redis_client)
    sandbox_config(own_sandbox, drop_after_create_rate=1.0)
    outcome = embedder.create(key, charged=True)
    assert outcome.kind == "created", outcome
    assert sandbox_stats(own_sandbox)["tasks_by_url"] == {URL: 1}
    assert jobs.get_item(key).task_id == outcome.task_id  # type: ignore[union-attr]


def test_a_crash_after_sending_is_reconciled_by_the_next_attempt(
    own_sandbox: Service,
    redis_client: redis.Redis,
) -> None:
    embedder, jobs, key = _setup(own_sandbox, redis_client)
    lock = FencedLock(redis_client, jobs.keys.lock(f"create:{key}"), 60)
    assert lock.acquire() and jobs.note_create_attempt(key, time.time(), lock)
    lock.release()  # as if the worker that sent it had died
    first = embedder.gateway.create_task(URL, jobs.spec(jobs.get_item(key).job_id))  # type: ignore[arg-type,union-attr]
    outcome = embedder.create(key, charged=False)
    assert (outcome.kind, outcome.task_id) == ("created", first)
    assert sandbox_stats(own_sandbox)["tasks_by_url"] == {URL: 1}


def test_a_rejected_url_fails_the_item_with_the_api_reason(
    own_sandbox: Service,
    redis_client: redis.Redis,
) -> None:
    embedder, jobs, key = _setup(own_sandbox, redis_client, url="ftp://cdn.example.com/a.mp4")
    outcome = embedder.create(key, charged=True)
    assert outcome.kind == "failed"
    item = jobs.get_item(key)
    assert item is not None and item.state == "failed"
    assert item.reason and "400" in item.reason
    assert sandbox_stats(own_sandbox)["tasks_created"] == 0


def test_persistent_server_errors_defer_then_fail_the_item(
    own_sandbox: Service,
    redis_client: redis.Redis,
) -> None:
    embedder, jobs, key = _setup(own_sandbox, redis_client, retry_total_s=0.3, max_item_attempts=2)
    sandbox_config(own_sandbox, rate_5xx=1.0)
    before = time.time()
    assert embedder.create(key, charged=True).kind == "deferred"
    due = redis_client.zscore(jobs.keys.creating, key)
    assert due is not None and before <= due <= time.time() + 0.2 * 2
    outcome = embedder.create(key, charged=False)
    assert outcome.kind == "failed"
    assert "gave up after 2 rounds" in (jobs.get_item(key).reason or "")  # type: ignore[union-attr]


class _PausingJobs(JobStore):
    """A job store whose ``pause_at``-th ``get_item`` waits for ``resume``: a worker stopped in
    the middle of a create (as by SIGSTOP or a long GC pause) while it holds the create lock."""

    def __init__(self, client: redis.Redis, keys: Keys, pause_at: int) -> None:
        super().__init__(client, keys)
        self.calls, self.pause_at = 0, pause_at
        self.paused, self.resume = threading.Event(), threading.Event()

    def get_item(self, key: str) -> Item | None:
        self.calls += 1
        if self.calls == self.pause_at:
            self.paused.set()
            self.resume.wait(60)
        return super().get_item(key)


def _create_paused_past_its_lease(
    late: Embedder, key: str, paused: threading.Event,
) -> tuple[threading.Thread, list[CreateOutcome]]:
    """``late.create`` started on a thread; returns once it is paused (``paused`` set) and its
    create lease has run out. The outcome lands in the list when the thread ends."""
    outcomes: list[CreateOutcome] = []
    worker = threading.Thread(target=lambda: outcomes.append(late.create(key, charged=True)))
    worker.start()
    assert paused.wait(30)
    lock_key = late.jobs.keys.lock(f"create:{key}")
    wait_for(lambda: not late.r.exists(lock_key), 10, "the paused holder's lease to run out")
    return worker, outcomes


def test_a_create_paused_past_its_lease_sends_nothing_and_leaves_the_next_holders_lock(
    own_sandbox: Service, redis_client: redis.Redis,
) -> None:
    embedder, jobs, key = _setup(own_sandbox, redis_client, create_lease_s=0.3)
    paused_jobs = _PausingJobs(redis_client, jobs.keys, pause_at=2)  # 2nd: just before sending
    late = Embedder(redis_client, paused_jobs, embedder.gateway, embedder.settings)
    worker, outcomes = _create_paused_past_its_lease(late, key, paused_jobs.paused)

    assert embedder.create(key, charged=False).kind == "created"  # the re-driven create
    next_holder = FencedLock(redis_client, jobs.keys.lock(f"create:{key}"), 60)  # another worker
    assert next_holder.acquire()
    paused_jobs.resume.set()
    worker.join(30)

    assert outcomes and outcomes[0].kind == "skipped", outcomes
    assert next_holder.held()
    assert sandbox_stats(own_sandbox)["tasks_by_url"] == {URL: 1}


class _PausingGateway(TwelveLabsGateway):
    """A gateway whose task lookup is stopped before it is answered, until ``resume``: a worker
    paused while its lookup is in flight, which then sees the task the next holder created."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.paused, self.resume = threading.Event(), threading.Event()

    def find_task(self, url: str, spec: EmbeddingSpec, since: float) -> str | None:
        self.paused.set()
        self.resume.wait(60)
        return super().find_task(url, spec, since=since)


def test_a_lookup_that_outlives_its_lease_reports_the_next_holders_task_as_skipped(
    own_sandbox: Service, redis_client: redis.Redis,
) -> None:
    embedder, jobs, key = _setup(own_sandbox, redis_client, create_lease_s=0.3)
    redis_client.hset(jobs.keys.item(key), "ca", time.time())  # an earlier outcome is unknown
    gateway = _PausingGateway(embedder.settings)
    late = Embedder(redis_client, jobs, gateway, embedder.settings)
    worker, outcomes = _create_paused_past_its_lease(late, key, gateway.paused)
    created = embedder.create(key, charged=False)
    assert created.kind == "created"
    gateway.resume.set()
    worker.join(30)

    assert [(o.kind, o.task_id) for o in outcomes] == [("skipped", created.task_id)]
    assert "another worker recorded" in str(outcomes[0].reason)
    assert sandbox_stats(own_sandbox)["tasks_by_url"] == {URL: 1}


def test_full_jitter_spreads_delays_over_zero_to_the_capped_backoff() -> None:
    rng = random.Random(7)
    delays = [full_jitter(2, 1.0, 3.0, rng.uniform) for _ in range(200)]
    assert all(0.0 <= d <= 3.0 for d in delays)
    assert min(delays) < 0.5 and max(delays) > 2.5


def test_items_deferred_in_the_same_round_come_back_at_different_times(
    own_sandbox: Service, redis_client: redis.Redis,
) -> None:
    embedder, jobs, _ = _setup(own_sandbox, redis_client, retry_max_s=5.0, max_item_attempts=5)
    job = jobs.create_job(["m.csv"], EmbeddingSpec.from_settings(embedder.settings))
    batch = [Admission(key=f"{i:032x}", category="food", url=f"{URL}?{i}") for i in range(20)]
    jobs.submit_batch(job, batch, SubmitMode())
    jobs.admit(100, time.time() + 60)
    for a in batch:
        outcome = embedder._defer(jobs.get_item(a.key), TransientError("outage"))  # type: ignore[arg-type]
        assert outcome.kind == "deferred"
    due = [redis_client.zscore(jobs.keys.creating, a.key) for a in batch]
    assert len({round(d, 3) for d in due if d is not None}) > 10


def test_a_create_refused_by_a_spent_window_waits_for_its_reset_and_spends_no_round(
    own_sandbox: Service,
    redis_client: redis.Redis,
) -> None:
    sandbox_config(own_sandbox, min_duration_s=600.0, max_duration_s=600.0, media_minutes_per_hour=5,
                   no_retry_after=True)
    embedder, jobs, key = _setup(own_sandbox, redis_client, max_item_attempts=1)
    spec = EmbeddingSpec.from_settings(embedder.settings)
    embedder.gateway.create_task("https://cdn.example.com/first.mp4", spec)  # the window is spent
    for _ in range(3):  # however often it is re-driven, pacing never fails it
        outcome = embedder.create(key, charged=True)
        assert outcome.kind == "deferred" and "rate limited" in (outcome.reason or "")
    item = jobs.get_item(key)
    assert item is not None and item.state == "creating" and item.create_attempted_at is None
    assert redis_client.hget(jobs.keys.item(key), "rd") is None
    due = redis_client.zscore(jobs.keys.creating, key)
    reset = (int(time.time()) // 3600 + 1) * 3600
    assert due is not None and reset - 1 <= due <= reset + embedder.settings.tick_interval_s + 1


class _LateAnswerJobs(JobStore):
    """A job store whose create mark is written in Redis at once but whose answer arrives only at
    ``resume``: a worker cut from Redis (its reply lost) right after the mark, healed later."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        super().__init__(client, keys)
        self.paused, self.resume = threading.Event(), threading.Event()

    def note_create_attempt(self, key: str, now: float, lock: FencedLock) -> bool:
        written = super().note_create_attempt(key, now, lock)
        self.paused.set()
        self.resume.wait(60)
        return written


def test_a_create_mark_confirmed_after_its_lease_ran_out_sends_nothing(
    own_sandbox: Service, redis_client: redis.Redis,
) -> None:
    embedder, jobs, key = _setup(own_sandbox, redis_client, create_lease_s=0.3)
    late_jobs = _LateAnswerJobs(redis_client, jobs.keys)
    late = Embedder(redis_client, late_jobs, embedder.gateway, embedder.settings)
    worker, outcomes = _create_paused_past_its_lease(late, key, late_jobs.paused)

    created = embedder.create(key, charged=False)  # the re-driven create: finds no task, pays
    assert created.kind == "created"
    late_jobs.resume.set()  # the partition heals: "the mark is yours", 0.3 s too late
    worker.join(30)

    assert outcomes and outcomes[0].kind == "skipped", outcomes
    assert "confirmed" in str(outcomes[0].reason)
    assert sandbox_stats(own_sandbox)["tasks_by_url"] == {URL: 1}
    assert jobs.get_item(key).task_id == created.task_id  # type: ignore[union-attr]
