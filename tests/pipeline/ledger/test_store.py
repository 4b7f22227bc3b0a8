"""Jobs and items in Redis: state moves and counters, on a real redis-server."""

from __future__ import annotations

import time

import pytest
import redis

from pipeline.ledger.store import Admission, JobStore, SubmitMode, job_item_keys, read_items
from pipeline.settings import load_settings
from pipeline.spec import EmbeddingSpec, item_key
from pipeline.state.keys import Keys
from pipeline.state.locks import FencedLock

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
    result = jobs.submit_batch(job, [_admission(1), _admission(2), _admission(1)], SubmitMode())
    assert (result.queued, result.duplicates) == (2, 1)
    assert jobs.waiting_count() == 2
    assert jobs.get_job(job).counters["accepted"] == 2  # type: ignore[union-attr]


def test_admission_moves_waiting_items_to_creating_with_their_record(
    redis_client: redis.Redis,
) -> None:
    jobs = _store(redis_client)
    job = jobs.create_job(["m.csv"], SPEC)
    jobs.submit_batch(job, [_admission(1, "sport"), _admission(2)], SubmitMode())
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
    jobs.submit_batch(first, [a], SubmitMode())
    _to_writing(jobs, a.key, 2)
    jobs.record_written([(a.key, f"{a.key}-0"), (a.key, f"{a.key}-1")])
    assert jobs.get_item(a.key).state == "done"  # type: ignore[union-attr]
    second = jobs.create_job(["m.csv"], SPEC)
    result = jobs.submit_batch(second, [a, a], SubmitMode())
    assert (result.skipped, result.duplicates) == (1, 1)
    third = jobs.create_job(["m.csv"], SPEC)
    assert jobs.submit_batch(third, [a], SubmitMode(force=True)).queued == 1


def test_items_in_flight_for_another_job_are_not_queued_twice(redis_client: redis.Redis) -> None:
    jobs = _store(redis_client)
    first, second = jobs.create_job(["a"], SPEC), jobs.create_job(["b"], SPEC)
    jobs.submit_batch(first, [_admission(1)], SubmitMode())
    assert jobs.submit_batch(second, [_admission(1)], SubmitMode(force=True)).in_progress == 1
    assert jobs.waiting_count() == 1


def test_written_rows_move_counters_once_even_when_replayed(redis_client: redis.Redis) -> None:
    jobs = _store(redis_client)
    job = jobs.create_job(["m.csv"], SPEC)
    a = _admission(1)
    jobs.submit_batch(job, [a], SubmitMode())
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
    jobs.submit_batch(job, [a], SubmitMode())
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
    jobs.submit_batch(job, [a, b], SubmitMode())
    jobs.seal(job)
    jobs.admit(10, time.time() + 60)
    lock = FencedLock(redis_client, jobs.keys.lock(f"create:{a.key}"), 60)
    assert lock.acquire()
    assert jobs.note_create_attempt(a.key, time.time(), lock)
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
        jobs.submit_batch(job, [_admission(i) for i in range(start, start + 1000)], SubmitMode())
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
    from pipeline.ledger.store import new_job_id

    ids = [new_job_id(t) for t in (1.0e9, 1.8e9, 2.2e9, 4.1e9)]
    assert all(len(i) == 12 for i in ids)
    assert [i[:7] for i in ids] == sorted(i[:7] for i in ids)


# --- re-submits and failed items (issue 13, finding 1) ---------------------------------------------
def _failed_in_a_first_job(jobs: JobStore, a: Admission, transient: bool = False) -> str:
    first = jobs.create_job(["m.csv"], SPEC)
    jobs.submit_batch(first, [a], SubmitMode())
    jobs.seal(first)
    jobs.admit(10, time.time() + 60)
    assert jobs.fail(a.key, "not a media file", transient=transient)
    return first


def test_a_resubmit_counts_a_failed_item_as_previously_failed_and_queues_nothing(
    redis_client: redis.Redis,
) -> None:
    jobs = _store(redis_client)
    a = _admission(1)
    _failed_in_a_first_job(jobs, a)
    second = jobs.create_job(["m.csv"], SPEC)
    result = jobs.submit_batch(second, [a], SubmitMode())
    jobs.seal(second)
    assert (result.queued, result.previously_failed) == (0, 1)
    assert jobs.waiting_count() == 0
    job = jobs.get_job(second)
    assert job is not None and job.finished and job.failures == 0
    assert (job.counters["accepted"], job.counters["previously_failed"]) == (1, 1)
    assert jobs.get_item(a.key).reason == "not a media file"  # type: ignore[union-attr]


def test_retry_failed_and_force_queue_a_failed_item_again(redis_client: redis.Redis) -> None:
    jobs = _store(redis_client)
    a = _admission(1)
    _failed_in_a_first_job(jobs, a)
    for mode in (SubmitMode(retry_failed=True), SubmitMode(force=True)):
        job = jobs.create_job(["m.csv"], SPEC)
        assert jobs.submit_batch(job, [a], mode).queued == 1
        jobs.admit(10, time.time() + 60)
        jobs.fail(a.key, "not a media file")


def test_retry_of_the_new_job_redrives_its_previously_failed_items(redis_client: redis.Redis) -> None:
    jobs = _store(redis_client)
    a = _admission(1)
    _failed_in_a_first_job(jobs, a)
    second = jobs.create_job(["m.csv"], SPEC)
    jobs.submit_batch(second, [a], SubmitMode())
    jobs.seal(second)
    assert jobs.retry(second) == 1
    item = jobs.get_item(a.key)
    assert item is not None and (item.state, item.job_id, item.reason) == ("waiting", second, None)
    job = jobs.get_job(second)
    assert job is not None and not job.finished
    assert (job.counters["queued"], job.counters["previously_failed"]) == (1, 0)


@pytest.mark.parametrize(("retry_transient", "queued"), [(True, 1), (False, 0)])
def test_an_item_whose_retries_ran_out_is_queued_again_only_if_the_setting_says_so(
    redis_client: redis.Redis, retry_transient: bool, queued: int,
) -> None:
    jobs = _store(redis_client)
    a = _admission(1)
    _failed_in_a_first_job(jobs, a, transient=True)
    second = jobs.create_job(["m.csv"], SPEC)
    result = jobs.submit_batch(second, [a], SubmitMode(retry_transient=retry_transient))
    assert (result.queued, result.previously_failed) == (queued, 1 - queued)


# --- one reset of every per-attempt field (finding 4) ---------------------------------------------
PER_ATTEMPT = {"tl": "task-1", "ca": "1.0", "why": "x", "ft": "1", "exp": "3", "w": "1",
               "sub": "1.0", "polls": "4", "att": "3", "rd": "3"}


@pytest.mark.parametrize("how", ["retry", "retry_failed", "force"])
def test_queueing_an_item_again_resets_every_per_attempt_field(
    redis_client: redis.Redis, how: str,
) -> None:
    jobs = _store(redis_client)
    a = _admission(1)
    first = _failed_in_a_first_job(jobs, a)
    redis_client.hset(jobs.keys.item(a.key), mapping=PER_ATTEMPT)
    redis_client.sadd(jobs.keys.written(a.key), "pk")
    if how == "retry":
        assert jobs.retry(first) == 1
    else:
        second = jobs.create_job(["m.csv"], SPEC)
        mode = SubmitMode(force=how == "force", retry_failed=how == "retry_failed")
        assert jobs.submit_batch(second, [a], mode).queued == 1
    left = {k.decode() for k in redis_client.hkeys(jobs.keys.item(a.key))}
    assert left & set(PER_ATTEMPT) == set()
    assert not redis_client.exists(jobs.keys.written(a.key))


def test_a_task_without_segments_moves_the_job_done_counter_in_the_same_transaction(
    redis_client: redis.Redis, redis_url: str,
) -> None:
    jobs = _store(redis_client)
    job = jobs.create_job(["m.csv"], SPEC)
    a = _admission(1)
    jobs.submit_batch(job, [a], SubmitMode())
    jobs.seal(job)
    jobs.admit(10, time.time() + 60)
    jobs.record_created(a.key, "task-0", time.time(), time.time())
    monitor_client = redis.Redis.from_url(redis_url)
    with monitor_client.monitor() as monitor:
        assert jobs.record_ready(a.key, "task-0", [], jobs.keys.segments)
        redis_client.ping()  # a marker: every command of record_ready came before it
        commands = []
        for event in monitor.listen():
            if event["command"] == "PING":
                break
            commands.append(event["command"].split()[0].upper())
    monitor_client.close()
    assert commands.index("HINCRBY") < commands.index("EXEC")
    assert jobs.get_job(job).finished  # type: ignore[union-attr]


# --- items in flight for another job (finding 5) ---------------------------------------------------
@pytest.mark.parametrize("outcome", ["done", "failed"])
def test_a_job_waits_for_its_items_in_flight_for_another_job(
    redis_client: redis.Redis, outcome: str,
) -> None:
    jobs = _store(redis_client)
    a, b = _admission(1), _admission(2)
    first = jobs.create_job(["m.csv"], SPEC)
    jobs.submit_batch(first, [a], SubmitMode())
    jobs.admit(10, time.time() + 60)
    second = jobs.create_job(["m.csv"], SPEC)
    result = jobs.submit_batch(second, [a, b], SubmitMode())
    jobs.seal(second)
    assert (result.queued, result.in_progress) == (1, 1)
    jobs.admit(10, time.time() + 60)
    _finish(jobs, b.key)
    job = jobs.get_job(second)
    assert job is not None and not job.finished and job.open_elsewhere == 1
    if outcome == "done":
        _finish(jobs, a.key)
    else:
        jobs.fail(a.key, "not a media file")
    job = jobs.get_job(second)
    assert job is not None and job.finished and job.open_elsewhere == 0
    assert job.failures == (1 if outcome == "failed" else 0)
    assert [i.key for i in jobs.failures(second)] == ([a.key] if outcome == "failed" else [])


def _finish(jobs: JobStore, key: str) -> None:
    jobs.record_created(key, "task-" + key[:6], time.time(), time.time())
    assert jobs.record_ready(key, "task-" + key[:6], [], jobs.keys.segments)


def test_admission_indexes_the_item_under_its_job_and_waiting_items_are_not_indexed(
    redis_client: redis.Redis,
) -> None:
    jobs = _store(redis_client)
    job = jobs.create_job(["m.csv"], SPEC)
    jobs.submit_batch(job, [_admission(1), _admission(2)], SubmitMode())
    assert redis_client.strlen(jobs.keys.item_index(job)) == 0
    admitted = jobs.admit(1, time.time() + 60)
    assert redis_client.get(jobs.keys.item_index(job)) == bytes.fromhex(admitted[0])
    assert [k for batch in job_item_keys(redis_client, jobs.keys, job) for k in batch] == admitted


# --- one record of an item, one reader (issue 21) ---------------------------------------------------
def test_read_items_returns_records_in_order_and_none_for_unknown_keys(
    redis_client: redis.Redis,
) -> None:
    jobs = _store(redis_client)
    job = jobs.create_job(["m.csv"], SPEC)
    a, b = _admission(1, "sport"), _admission(2)
    jobs.submit_batch(job, [a, b], SubmitMode())
    jobs.admit(10, time.time() + 60)
    found = read_items(redis_client, jobs.keys, [b.key, "no-such-item", a.key])
    assert found == [jobs.get_item(b.key), None, jobs.get_item(a.key)]
    first = found[2]
    assert first is not None
    assert (first.state, first.job_id, first.category, first.url, first.title) == (
        "creating", job, "sport", a.url, "t1")


def test_an_item_record_carries_the_segments_its_task_produced(redis_client: redis.Redis) -> None:
    jobs = _store(redis_client)
    job = jobs.create_job(["m.csv"], SPEC)
    a = _admission(1)
    jobs.submit_batch(job, [a], SubmitMode())
    jobs.admit(10, time.time() + 60)
    assert jobs.get_item(a.key).expected is None  # type: ignore[union-attr]
    _to_writing(jobs, a.key, 3)
    item = jobs.get_item(a.key)
    assert item is not None and (item.state, item.task_id, item.expected) == (
        "writing", "task-" + a.key[:6], 3)


# --- a compact ledger (issue 22) ---------------------------------------------------------------------
def test_a_done_item_costs_under_100_bytes_of_redis_with_its_index_entry(redis_client: redis.Redis) -> None:
    """1,600 items finished through the writer's script, 100 in each of 16 done hashes (as
    ~400,000 random keys fill the 4,096): the ledger's bytes per item (MEMORY USAGE of the done
    hashes and the job's index; the growth of used_memory at scale is measured in bench/soak.py)."""
    jobs = _store(redis_client)
    job = jobs.create_job(["m.csv"], SPEC)
    keys = [f"{b:03x}{i:029x}" for b in range(16) for i in range(100)]
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        lines = [Admission(k, "news", f"https://cdn.example.com/v/{k}.mp4", "a title",
                           '{"channel": "c1"}') for k in chunk]
        jobs.submit_batch(job, lines, SubmitMode())
        jobs.admit(500, time.time() + 60)
        for k in chunk:
            _to_writing(jobs, k, 1)
        jobs.record_written([(k, k) for k in chunk])
    held = [*redis_client.scan_iter(match=f"{jobs.keys.prefix}:done:*"), jobs.keys.item_index(job)]
    per_item = sum(int(redis_client.memory_usage(k, samples=0) or 0) for k in held) / len(keys)
    print(f"redis bytes per done item: {per_item:.0f}")
    assert all(i is not None and i.state == "done" for i in read_items(redis_client, jobs.keys, keys))
    assert not list(redis_client.scan_iter(match=f"{jobs.keys.prefix}:item:*"))
    assert per_item < 100, per_item
