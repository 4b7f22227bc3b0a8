"""The quota's window dimensions on a real redis-server: fitting, charging, learning from headers,
a 429's spent window, reconciliation."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from pipeline.settings import load_settings
from pipeline.state.limits import Limits, header_values, retry_after_reset


def limits(client: redis.Redis, **settings: float) -> Limits:
    return Limits(client, f"t{uuid.uuid4().hex[:6]}:limits", load_settings(**settings))


def test_nothing_limits_without_limits(redis_client: redis.Redis) -> None:
    fit = limits(redis_client).fit([1000.0] * 50)
    assert (fit.count, fit.hold) == (50, None)


def test_media_minutes_fit_in_order_until_the_window_is_full(redis_client: redis.Redis) -> None:
    lim = limits(redis_client, media_minutes_per_hour=25)
    fit = lim.charge([10.0, 10.0, 10.0, 1.0])
    assert fit.count == 2  # the third would make 30 > 25; the line keeps its order
    assert fit.hold is not None and fit.hold.dimension == "media-minutes-hour"
    assert fit.hold.until % 3600 == 0 and fit.hold.until > time.time()
    assert lim.fit([5.0]).count == 1 and lim.fit([6.0]).count == 0
    assert lim.snapshot()["media-minutes-hour"]["used"] == pytest.approx(20.0)


def test_an_item_longer_than_an_empty_window_passes_alone(redis_client: redis.Redis) -> None:
    lim = limits(redis_client, media_minutes_per_hour=5)
    assert lim.charge([30.0, 1.0]).count == 1


def test_requests_per_day_count_one_per_item_whatever_its_minutes(redis_client: redis.Redis) -> None:
    lim = limits(redis_client, rate_limit_per_day=3)
    fit = lim.charge([100.0] * 5)
    assert fit.count == 3 and fit.hold is not None and fit.hold.dimension == "requests-day"
    assert fit.hold.until % 86400 == 0


def test_the_daily_budget_is_its_own_window(redis_client: redis.Redis) -> None:
    lim = limits(redis_client, daily_media_minutes_budget=12, media_minutes_per_day=1000)
    fit = lim.charge([5.0, 5.0, 5.0])
    assert fit.count == 2 and fit.hold is not None and fit.hold.dimension == "budget-day"


def test_a_window_frees_at_its_reset(redis_client: redis.Redis) -> None:
    lim = limits(redis_client, media_minutes_per_hour=10, media_window_s=2, tick_interval_s=0.01)
    fit = lim.charge([10.0, 10.0])
    assert fit.count == 1 and fit.hold is not None
    time.sleep(max(0.0, fit.hold.until - time.time()) + 0.05)
    assert lim.charge([10.0]).count == 1


def test_a_window_admits_nothing_in_its_last_two_tick_intervals(redis_client: redis.Redis) -> None:
    lim = limits(redis_client, media_minutes_per_hour=1000, media_window_s=100, tick_interval_s=60)
    fit = lim.fit([1.0])  # a guard of 120 s in a 100 s window: always inside it
    assert fit.count == 0 and fit.hold is not None and fit.hold.dimension == "media-minutes-hour"
    assert fit.hold.until % 100 == 0


def test_headers_teach_the_limit_the_used_and_the_reset(redis_client: redis.Redis) -> None:
    lim = limits(redis_client, media_minutes_per_hour=1000)
    reset = int(time.time()) + 120
    named = lim.learn({"X-Ratelimit-Limit": "150", "X-Ratelimit-Used": "140",
                       "X-Ratelimit-Remaining": "10", "X-Ratelimit-Reset": str(reset),
                       "X-Ratelimit-Resource": "media-minutes-hour"})
    assert named is not None and named.name == "media-minutes-hour"
    assert lim.snapshot()["media-minutes-hour"] == {"limit": 150.0, "used": 140.0, "reset": reset}
    assert lim.fit([10.0, 1.0]).count == 1


def test_a_server_count_below_ours_never_lowers_ours(redis_client: redis.Redis) -> None:
    lim = limits(redis_client, media_minutes_per_hour=100)
    lim.charge([30.0])
    lim.learn({"x-ratelimit-limit": "100", "x-ratelimit-used": "10", "x-ratelimit-reset":
               str(int(time.time()) + 60), "x-ratelimit-resource": "media-minutes-hour"})
    assert lim.snapshot()["media-minutes-hour"]["used"] == 30.0


def test_headers_without_a_resource_teach_nothing(redis_client: redis.Redis) -> None:
    lim = limits(redis_client, media_minutes_per_hour=100)
    assert lim.learn({"x-ratelimit-limit": "5", "x-ratelimit-used": "5",
                      "x-ratelimit-reset": str(int(time.time()) + 60)}) is None
    assert lim.fit([10.0]).count == 1


def test_our_budget_is_never_learned_from_headers(redis_client: redis.Redis) -> None:
    lim = limits(redis_client, daily_media_minutes_budget=10)
    lim.learn({"x-ratelimit-limit": "5000", "x-ratelimit-used": "0",
               "x-ratelimit-reset": str(int(time.time()) + 60), "x-ratelimit-resource": "budget-day"})
    assert lim.snapshot()["budget-day"]["limit"] == 10.0


def test_a_429_marks_its_window_spent_until_the_reset(redis_client: redis.Redis) -> None:
    lim = limits(redis_client, rate_limit_per_day=1000)
    reset = int(time.time()) + 3600
    hold = lim.spent({"x-ratelimit-limit": "500", "x-ratelimit-used": "499",
                      "x-ratelimit-reset": str(reset), "x-ratelimit-resource": "requests-day"})
    assert hold is not None and (hold.dimension, hold.until) == ("requests-day", reset)
    fit = lim.fit([1.0])
    assert fit.count == 0 and fit.hold is not None and fit.hold.until == reset


def test_reconcile_moves_every_media_window(redis_client: redis.Redis) -> None:
    lim = limits(redis_client, media_minutes_per_hour=100, media_minutes_per_day=1000,
                 daily_media_minutes_budget=500)
    lim.charge([10.0])
    lim.reconcile(-4.0)
    snap = lim.snapshot()
    assert {snap[d]["used"] for d in ("media-minutes-hour", "media-minutes-day", "budget-day")} == {6.0}


def test_header_helpers_read_any_case() -> None:
    assert header_values({"X-RateLimit-Reset": "7", "Other": "x"}) == {"reset": "7"}
    now = time.time()
    wait = retry_after_reset({"x-ratelimit-reset": str(int(now) + 30)}, now)
    assert wait is not None and 28 < wait <= 30
    assert retry_after_reset({"x-ratelimit-reset": "1"}, now) is None
