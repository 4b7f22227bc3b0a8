"""The adaptive poll schedule (pure) and the deadline (real Redis and sandbox)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.ingest.polling import next_poll_delay
from pipeline.settings import load_settings

S = load_settings(poll_initial_s=2.0, poll_max_s=30.0, poll_factor=1.6)


def test_without_history_the_interval_grows_geometrically_to_the_cap() -> None:
    delays = [next_poll_delay(0.0, n, None, S) for n in range(12)]
    assert delays[0] == 2.0
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert delays[-1] == 30.0


def test_with_history_the_first_check_lands_at_the_expected_finish() -> None:
    assert next_poll_delay(3.0, 1, 20.0, S) == 17.0


def test_overdue_tasks_are_checked_at_a_tenth_of_the_expected_time_then_less_often() -> None:
    assert next_poll_delay(20.0, 2, 20.0, S) == 2.0
    assert next_poll_delay(60.0, 3, 20.0, S) == pytest.approx(24.0)


@given(
    elapsed=st.floats(0, 1e6),
    polls=st.integers(0, 1000),
    expected=st.one_of(st.none(), st.floats(0.01, 1e5)),
)
def test_the_interval_is_always_within_bounds(elapsed: float, polls: int, expected: float | None) -> None:
    delay = next_poll_delay(elapsed, polls, expected, S)
    assert 0.2 <= delay <= S.poll_max_s
