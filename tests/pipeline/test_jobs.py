"""Jobs and items in Redis: state moves and counters, on a real redis-server."""

from __future__ import annotations

import time

import pytest
import redis

from pipeline.items import EmbeddingSpec, item_key
from pipeline.jobs import Admission, JobStore
from pipeline.keys import Keys
from pipeline.settings import load_settings

SPEC = EmbeddingSpec.from_settings(load_settings())


def _admission(n: int, category: str = "news") -> Admission:
    url = f"https://cdn.example.com/v/{n}.mp4"
    return Admission(key=item_key(url, SPEC), category=category, url=url, title=f"t{n}")


def _store(client: redis.Redis) -> JobStore:
    return JobStore(client, Keys("t"))


def _to_writing(jobs: JobStore, key: str, n_segments: int) -> None:
    jobs.admit(100, time.time() + 60)
    jobs.record_created(key, "task-" + key[:6], time.time(), time.time())
    entries = [{b"pk": f"{key}-{i}".encode()} for i in range(n_segments)]
    assert jobs.record_ready(key, "task-" + key[:6], entries, jobs.keys.segments)


def test_duplicates_inside_a_job_count_once(redis_client: redis.Redis) -> None:
    jobs = _store(redis_client)
    job = jobs.create_job(["m.csv"], SPEC)
    result = jobs.submit_batch(job, [_admission(1), _admission(2), _admission(1)], force=False)
    assert (result.queued, result.duplicates) == (2, 1)
    assert jobs.waiting_count() == 2
    assert jobs.get_job(job).counters["accepted"] == 2  # type: ignore[union-attr]


def test_admission_moves_waiting_items_to_creating_with_their_record(
    redis_client: redis.Redis,
) -> None:
    jobs = _store(redis_client)
    job = jobs.create_job(["m.csv"], SPEC)
    jobs.submit_batch(job, [_admission(1, "sport"), _admission(2)], force=False)
    admitted = jobs.admit(1, time.time() + 60)
    item = jobs.get_item(admitted[0])
    assert item is not None
    assert (item.state, item.category, item.url) == ("creating", "sport", _admission(1).url)
    assert jobs.waiting_count() == 1
    assert jobs.in_flight_count() == 1


def test_done_items_are_skipped_by_a_later_job_unless_forced(redis_client: redis.Redis) -> None:
    jobs = _store(redis_client)
    first = jobs.create_job(["m.csv"], SPEC)
    a = _admission(1)
    jobs.submit_batch(first, [a], force=False)
    _to_writing(jobs, a.key, 2)
    jobs.record_written([(a.key, f"{a.key}-0"), (a.key, f"{a.key}-1")])
    assert jobs.get_item(a.key).state == "done"  # type: ignore[union-attr]
    second = jobs.create_job(["m.csv"], SPEC)
    result = jobs.submit_batch(second, [a, a], force=False)
    assert (result.skipped, result.duplicates) == (1, 1)
    third = jobs.create_job(["m.csv"], SPEC)
    assert jobs.submit_batch(third, [a], force=True).queued == 1


def test_items_in_flight_for_another_job_are_not_queued_twice(redis_client: redis.Redis) -> None:
    jobs = _store(redis_client)
    first, second = jobs.create_job(["a"], SPEC), jobs.create_job(["b"], SPEC)
    jobs.submit_batch(first, [_admission(1)], force=False)
    assert jobs.submit_batch(second, [_admission(1)], force=True).in_progress == 1
    assert jobs.waiting_count() == 1


def test_written_rows_move_counters_once_even_when_replayed(redis_client: redis.Redis) -> None:
    jobs = _store(redis_client)
    job = jobs.create_job(["m.csv"], SPEC)
    a = _admission(1)
    jobs.submit_batch(job, [a], force=False)
    jobs.seal(job)
    _to_writing(jobs, a.key, 3)
    pairs = [(a.key, f"{a.key}-{i}") for i in range(2)]
    jobs.record_written(pairs)
    jobs.record_written(pairs)
    counters = jobs.get_job(job).counters  # type: ignore[union-attr]
    assert (counters["segments"], counters["done"]) == (2, 0)
    jobs.record_written([(a.key, f"{a.key}-2"), *pairs])
    finished = jobs.get_job(job)
    assert finished is not None
    assert (finished.counters["segments"], finished.counters["done"]) == (3, 1)
    assert finished.finished
    assert finished.status == "done"


def test_a_ready_task_is_recorded_only_once(redis_client: redis.Redis) -> None:
    jobs = _store(redis_client)
    job = jobs.create_job(["m.csv"], SPEC)
    a = _admission(1)
    jobs.submit_batch(job, [a], force=False)
    _to_writing(jobs, a.key, 2)
    again = jobs.record_ready(a.key, "task-" + a.key[:6], [{b"pk": b"x"}], jobs.keys.segments)
    assert not again
    assert redis_client.xlen(jobs.keys.segments) == 2


def test_failures_are_listed_with_reasons_and_retry_requeues_only_them(
    redis_client: redis.Redis,
) -> None:
    jobs = _store(redis_client)
    job = jobs.create_job(["m.csv"], SPEC)
    a, b = _admission(1), _admission(2)
    jobs.submit_batch(job, [a, b], force=False)
    jobs.seal(job)
    jobs.admit(10, time.time() + 60)
    jobs.note_create_attempt(a.key, time.time())
    assert jobs.fail(a.key, "Twelve Labs 400 parameter_invalid: bad url")
    assert not jobs.fail(a.key, "again")
    failed = jobs.failures(job)
    assert [(f.key, f.reason, f.attempts) for f in failed] == [
        (a.key, "Twelve Labs 400 parameter_invalid: bad url", 1)
    ]
    assert jobs.retry(job) == 1
    assert jobs.get_item(a.key).state == "waiting"  # type: ignore[union-attr]
    assert jobs.get_item(b.key).state == "creating"  # type: ignore[union-attr]
    assert jobs.failures(job) == []
    assert jobs.get_job(job).counters["failed"] == 0  # type: ignore[union-attr]


def test_claiming_due_members_pushes_their_lease(redis_client: redis.Redis) -> None:
    jobs = _store(redis_client)
    now = time.time()
    redis_client.zadd(jobs.keys.inflight, {"a": now - 1, "b": now + 100})
    assert jobs.claim_due(jobs.keys.inflight, now, now + 60, 10) == ["a"]
    assert jobs.claim_due(jobs.keys.inflight, now, now + 60, 10) == []
    assert redis_client.zscore(jobs.keys.inflight, "a") == now + 60


def test_a_waiting_item_costs_little_redis_memory(redis_client: redis.Redis) -> None:
    jobs = _store(redis_client)
    job = jobs.create_job(["m.csv"], SPEC)
    before = int(redis_client.info("memory")["used_memory"])
    n = 5000
    for start in range(0, n, 1000):
        jobs.submit_batch(job, [_admission(i) for i in range(start, start + 1000)], force=False)
    per_item = (int(redis_client.info("memory")["used_memory"]) - before) / n
    print(f"redis bytes per waiting item: {per_item:.0f}")
    assert per_item < 400, per_item


def test_learning_the_task_time_pulls_blind_checks_forward_only(redis_client: redis.Redis) -> None:
    jobs = _store(redis_client)
    now = time.time()
    schedule = {"young": (now - 5, now + 20), "overdue": (now - 20, now + 20), "soon": (now - 5, now + 1)}
    for key, (submitted, check) in schedule.items():
        redis_client.hset(jobs.keys.item(key), mapping={"s": "processing", "sub": submitted})
        redis_client.zadd(jobs.keys.inflight, {key: check})
    assert jobs.pull_forward_polls(now, 8.0) == 2
    assert redis_client.zscore(jobs.keys.inflight, "young") == pytest.approx(now + 3)
    assert redis_client.zscore(jobs.keys.inflight, "overdue") == pytest.approx(now)
    assert redis_client.zscore(jobs.keys.inflight, "soon") == pytest.approx(now + 1)


def test_job_ids_are_short_and_sort_by_creation_time() -> None:
    from pipeline.jobs import new_job_id

    ids = [new_job_id(t) for t in (1.0e9, 1.8e9, 2.2e9, 4.1e9)]
    assert all(len(i) == 12 for i in ids)
    assert [i[:7] for i in ids] == sorted(i[:7] for i in ids)
