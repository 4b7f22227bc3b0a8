"""The tick's admission (``Scheduler._admit``) on a real redis-server: as many waiting items as the
in-flight cap's room, the global quota, the admit batch and the waiting list all allow, one quota
token charged per admitted item (none when nothing can be admitted)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
import redis

from pipeline.ingest.scheduler import Scheduler
from pipeline.ledger.store import Admission, JobStore, SubmitMode
from pipeline.settings import load_settings
from pipeline.spec import EmbeddingSpec, item_key
from pipeline.state.keys import Keys
from pipeline.state.quota import Quota

SLOW_REFILL_PER_MIN = 0.001
"""The bucket refills no whole token during a test: what it holds is what the test gave it."""


@dataclass(frozen=True)
class Case:
    cap: int
    in_flight: int
    """Items already creating (admitted without charging the quota)."""
    tokens: int
    waiting: int
    admitted: int
    batch: int = 200


@dataclass
class Fleet:
    scheduler: Scheduler
    jobs: JobStore
    quota: Quota

    def tokens_left(self) -> int:
        return self.quota.take(self.quota.burst).granted


def fleet(client: redis.Redis, case: Case) -> Fleet:
    """``case.in_flight`` items creating, ``case.waiting`` more in line, ``case.tokens`` in the bucket."""
    prefix = f"t{uuid.uuid4().hex[:6]}"
    settings = load_settings(redis_prefix=prefix, max_in_flight=case.cap, admit_batch=case.batch)
    jobs = JobStore(client, Keys(prefix))
    spec = EmbeddingSpec.from_settings(settings)
    job_id = jobs.create_job(["m.csv"], spec)
    urls = [f"https://cdn.example.com/{prefix}/{i}.mp4" for i in range(case.in_flight + case.waiting)]
    lines = [Admission(item_key(u, spec), "news", u) for u in urls]
    jobs.submit_batch(job_id, lines[:case.in_flight], SubmitMode())
    assert len(jobs.admit(case.in_flight, 1e12)) == case.in_flight
    jobs.submit_batch(job_id, lines[case.in_flight:], SubmitMode())
    jobs.seal(job_id)
    quota = Quota(client, jobs.keys.quota, SLOW_REFILL_PER_MIN, case.tokens)
    scheduler = Scheduler(client, jobs, quota, settings)
    scheduler.limits.learn({})  # an answer was heard: admission is not down to one probe
    return Fleet(scheduler, jobs, quota)


@pytest.mark.parametrize("case", [
    pytest.param(Case(cap=3, in_flight=0, tokens=10, waiting=8, admitted=3), id="the-cap-binds"),
    pytest.param(Case(cap=5, in_flight=3, tokens=10, waiting=8, admitted=2),
                 id="the-cap-binds-counting-items-already-in-flight"),
    pytest.param(Case(cap=50, in_flight=0, tokens=2, waiting=8, admitted=2), id="the-quota-binds"),
    pytest.param(Case(cap=5, in_flight=2, tokens=2, waiting=8, admitted=2), id="both-near-the-quota-smaller"),
    pytest.param(Case(cap=5, in_flight=3, tokens=4, waiting=8, admitted=2), id="both-near-the-room-smaller"),
    pytest.param(Case(cap=50, in_flight=0, tokens=10, waiting=8, admitted=3, batch=3), id="the-batch-binds"),
    pytest.param(Case(cap=50, in_flight=0, tokens=10, waiting=4, admitted=4), id="the-waiting-items-bind"),
    pytest.param(Case(cap=3, in_flight=3, tokens=10, waiting=8, admitted=0), id="zero-a-full-cap"),
    pytest.param(Case(cap=50, in_flight=0, tokens=0, waiting=8, admitted=0), id="zero-an-empty-quota"),
    pytest.param(Case(cap=50, in_flight=0, tokens=10, waiting=0, admitted=0), id="zero-nothing-waiting"),
])
def test_a_tick_admits_the_least_the_cap_room_the_quota_the_batch_and_the_line_allow(
    redis_client: redis.Redis, case: Case,
) -> None:
    f = fleet(redis_client, case)
    plan = f.scheduler.tick()
    assert plan is not None and len(plan.admitted) == case.admitted
    assert f.jobs.in_flight_count() == case.in_flight + case.admitted
    assert f.jobs.waiting_count() == case.waiting - case.admitted
    assert f.tokens_left() == case.tokens - case.admitted  # a token per admitted item, none besides
