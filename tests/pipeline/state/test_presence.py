"""Worker heartbeats on a real redis-server: counted per queue within the window, forgotten on
leave, and removed a day after the last beat so the set holds only the recent fleet."""

from __future__ import annotations

import redis

from pipeline.settings import load_settings
from pipeline.state.keys import Keys
from pipeline.state.presence import FORGET_AFTER_S, MIN_ALIVE_WINDOW_S, WorkerPresence, alive_window_s


def test_a_beat_removes_the_beats_older_than_a_day(redis_client: redis.Redis[bytes]) -> None:
    presence = WorkerPresence(redis_client, Keys("p"))
    now = 1_000_000.0
    presence.beat("old@a", ("embedding",), now - FORGET_AFTER_S - 1)
    presence.beat("idle@b", ("embedding",), now - 600)
    presence.beat("new@c", ("embedding", "writing"), now)

    assert sorted(redis_client.zrange(Keys("p").workers, 0, -1)) == [b"idle@b|embedding",
                                                                      b"new@c|embedding,writing"]
    assert presence.alive_per_queue(now, 60) == {"embedding": 1, "writing": 1}


def test_the_alive_window_spans_several_stalled_tick_intervals_and_at_least_15_s() -> None:
    assert alive_window_s(load_settings()) == MIN_ALIVE_WINDOW_S
    slow = load_settings(tick_interval_s=10, tick_stall_intervals=5)
    assert alive_window_s(slow) == 100
