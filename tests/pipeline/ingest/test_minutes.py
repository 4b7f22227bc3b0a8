"""Media minutes at admission on a real redis-server: estimates (manifest duration, learned mean,
default), a spent window holding every item in line, job budgets, settling after the task."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from pipeline.ingest.minutes import MinuteBook, covered_minutes, duration_minutes
from pipeline.ingest.scheduler import Scheduler, admission_hold
from pipeline.ledger.store import Admission, JobStore, SubmitMode
from pipeline.settings import Settings, load_settings
from pipeline.spec import EmbeddingSpec, item_key
from pipeline.state.keys import Keys
from pipeline.state.quota import Quota


@dataclass
class Line:
    scheduler: Scheduler
    jobs: JobStore
    book: MinuteBook
    settings: Settings

    def submit(self, n: int, duration_s: float | None = None, max_minutes: float = 0.0) -> str:
        spec = EmbeddingSpec.from_settings(self.settings)
        job_id = self.jobs.create_job(["m.csv"], spec)
        if max_minutes:
            self.book.set_budget(job_id, max_minutes)
        meta = json.dumps({"duration_s": str(duration_s)}) if duration_s else "{}"
        urls = [f"https://cdn.example.com/{uuid.uuid4().hex[:8]}/{i}.mp4" for i in range(n)]
        self.jobs.submit_batch(job_id, [Admission(item_key(u, spec), "news", u, "", meta) for u in urls],
                               SubmitMode())
        self.jobs.seal(job_id)
        return job_id


def line(client: redis.Redis, **settings: Any) -> Line:
    prefix = f"t{uuid.uuid4().hex[:6]}"
    s = load_settings(redis_prefix=prefix, **settings)
    jobs = JobStore(client, Keys(prefix))
    scheduler = Scheduler(client, jobs, Quota(client, jobs.keys.quota, 6000, 1000), s)
    scheduler.limits.learn({})  # an answer was heard: admission is not down to one probe
    return Line(scheduler, jobs, scheduler.book, s)


def admitted(f: Line) -> list[str]:
    plan = f.scheduler.tick()
    assert plan is not None
    return plan.admitted


def test_a_spent_media_window_holds_the_line_and_says_until_when(redis_client: redis.Redis) -> None:
    f = line(redis_client, media_minutes_per_hour=25)
    f.submit(5, duration_s=600)
    assert len(admitted(f)) == 2
    assert admitted(f) == []
    assert f.jobs.waiting_count() == 3  # waiting, not failed, no attempt spent
    hold = admission_hold(redis_client, f.jobs.keys)
    assert hold is not None and hold.dimension == "media-minutes-hour" and hold.until % 3600 == 0


def test_the_daily_request_limit_holds_the_line(redis_client: redis.Redis) -> None:
    f = line(redis_client, rate_limit_per_day=3)
    f.submit(5)
    assert len(admitted(f)) == 3
    hold = admission_hold(redis_client, f.jobs.keys)
    assert hold is not None and hold.dimension == "requests-day"
    assert f.jobs.waiting_count() == 2


def test_a_free_line_clears_the_hold(redis_client: redis.Redis) -> None:
    f = line(redis_client, media_minutes_per_hour=1000)
    f.submit(2, duration_s=60)
    redis_client.set(f.jobs.keys.hold, "media-minutes-hour|1.0")
    assert len(admitted(f)) == 2
    assert admission_hold(redis_client, f.jobs.keys) is None


def test_a_job_at_its_budget_stops_admitting_and_its_items_wait_at_no_cost(redis_client: redis.Redis) -> None:
    f = line(redis_client)
    job = f.submit(5, duration_s=600, max_minutes=25)
    other = f.submit(2, duration_s=60)
    assert len(admitted(f)) == 2  # the third would pass the budget: the line stops there
    assert len(admitted(f)) == 2  # its items step aside; the other job's two go on
    spent = f.book.job_minutes(job)
    assert spent.minutes == pytest.approx(20.0) and spent.held == 3 and spent.at_budget
    assert f.book.job_minutes(other).minutes == pytest.approx(2.0)
    assert f.jobs.waiting_count() == 0 and admitted(f) == []
    assert f.book.raise_budget(job, 60) == 3
    assert len(admitted(f)) == 3
    assert f.book.job_minutes(job).minutes == pytest.approx(50.0)


def test_estimates_come_from_the_manifest_else_finished_tasks_else_the_default(
    redis_client: redis.Redis,
) -> None:
    f = line(redis_client, default_media_minutes=7)
    job = f.submit(3)
    keys = admitted(f)
    assert f.book.job_minutes(job).minutes == pytest.approx(21.0)  # the default, three times
    item = f.jobs.get_item(keys[0])
    assert item is not None
    assert f.book.settle(item, [(0.0, 6.0), (6.0, 12.0), (0.0, 120.0)]) == pytest.approx(2.0)
    assert f.book.job_minutes(job).minutes == pytest.approx(16.0)  # 7 + 7 + 2
    assert f.book.estimate("{}", job) == pytest.approx(2.0)  # learned from the finished task
    assert f.book.estimate(json.dumps({"duration_s": "90"}), job) == pytest.approx(1.5)


def test_settling_corrects_the_media_windows(redis_client: redis.Redis) -> None:
    f = line(redis_client, media_minutes_per_hour=100)
    f.submit(1, duration_s=600)
    item = f.jobs.get_item(admitted(f)[0])
    assert item is not None
    f.book.settle(item, [(0.0, 240.0)])
    assert f.scheduler.limits.snapshot()["media-minutes-hour"]["used"] == pytest.approx(4.0)


def test_duration_and_coverage_helpers() -> None:
    assert duration_minutes(json.dumps({"duration_s": "120"})) == 2.0
    assert duration_minutes(json.dumps({"duration_s": "soon"})) is None
    assert duration_minutes(json.dumps({"duration_s": "-3"})) is None
    assert duration_minutes("not json") is None
    assert covered_minutes([]) == 0.0
    assert covered_minutes([(30.0, 36.0), (0.0, 6.0)]) == pytest.approx(0.6)


def test_until_an_answer_is_heard_one_create_goes_alone(redis_client: redis.Redis) -> None:
    f = line(redis_client)
    redis_client.hdel(f.jobs.keys.limits, "heard")
    f.submit(5)
    assert len(admitted(f)) == 1
    assert admitted(f) == []  # the probe is still creating: nothing more
    f.scheduler.limits.learn({"x-ratelimit-limit": "100"})  # its answer came back
    assert len(admitted(f)) == 4


def test_under_a_media_limit_guessed_minutes_go_one_create_at_a_time(redis_client: redis.Redis) -> None:
    f = line(redis_client, media_minutes_per_hour=1000)
    job = f.submit(4)  # no duration_s, nothing finished yet: every estimate is a guess
    assert len(admitted(f)) == 1 and admitted(f) == []
    redis_client.hset(f.jobs.keys.media(f.jobs.collection(job)), mapping={"n": 1, "sum_s": 600})
    redis_client.delete(f.jobs.keys.creating)  # the probe was created
    assert len(admitted(f)) == 3  # the estimate is known now: the rest go together
