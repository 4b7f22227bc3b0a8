"""What people read about a job: ISO times and ages, manifests as a list, the four states, a rate
and an ETA, plain progress lines when not on a terminal, and the stalled-tick warning."""

from __future__ import annotations

import io

import pytest

from pipeline.ledger.records import COUNTERS, Job
from pipeline.settings import load_settings
from pipeline.spec import EmbeddingSpec
from pipeline.state.limits import Hold
from vidsearch.cli.display import (
    ProgressWriter,
    RowProgress,
    Spending,
    Ticking,
    status_dict,
    status_lines,
)

CREATED = 1_796_287_345.58  # 2026-12-03T08:42:25Z
ALIVE = Ticking(stalled=False, last_tick_at=CREATED, stall_s=5.0)
STALLED = Ticking(stalled=True, last_tick_at=None, stall_s=5.0)


def _job(finished: bool = False, **counts: int) -> Job:
    counters = dict.fromkeys(COUNTERS, 0) | {"queued": 100, "accepted": 100, "lines": 100} | counts
    if finished:
        counters["done"] = counters["queued"] - counters["failed"]
    return Job(id="0abc123-1f2e", created_at=CREATED, name="", manifests=["/m/a.csv", "/m/b.csv"],
               spec=EmbeddingSpec.from_settings(load_settings()), sealed=True, counters=counters)


def test_status_shows_iso_times_with_an_age_and_the_manifests_as_a_list() -> None:
    text = "\n".join(status_lines(_job(done=10), ALIVE, CREATED + 125))
    assert "created    2026-12-03T08:42:25Z (2 min ago)" in text
    assert "  - /m/a.csv\n  - /m/b.csv" in text
    assert "1796287345" not in text and "['" not in text
    assert "name:" not in text


@pytest.mark.parametrize(("counts", "status"), [
    ({"done": 10}, "running"),
    ({"failed": 0}, "done"),
    ({"failed": 1}, "done with failures"),
    ({"failed": 100}, "failed"),
])
def test_a_job_is_running_done_done_with_failures_or_failed(counts: dict[str, int], status: str) -> None:
    finished = "failed" in counts
    job = _job(finished=finished, **counts)
    assert job.status == status
    assert f"status     {status}" in status_lines(job, ALIVE, CREATED + 10)


def test_the_progress_has_a_rate_and_an_eta_and_json_keeps_epoch_fields() -> None:
    job = _job(done=20, failed=5)
    d = status_dict(job, ALIVE, CREATED + 50)
    assert d["created_at"] == CREATED
    assert d["rate_per_s"] == 0.5 and d["eta_s"] == 150.0
    assert "0.50 items/s, ETA 2 min" in "\n".join(status_lines(job, ALIVE, CREATED + 50))


def test_a_finished_job_has_no_eta_left() -> None:
    d = status_dict(_job(finished=True), STALLED, CREATED + 50)
    assert d["eta_s"] == 0.0 and d["tick_stalled"] is False


def test_without_a_terminal_one_plain_line_is_written_every_interval() -> None:
    out = io.StringIO()
    writer = ProgressWriter(out, interval_s=10.0, terminal=False)
    for second in range(0, 31):
        writer.show(_job(done=second), ALIVE, CREATED + 100 + second)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and "\r" not in out.getvalue()
    assert lines[0].startswith("2026-12-03T08:44:05Z job 0abc123-1f2e: [")


def test_on_a_terminal_the_bar_is_redrawn_in_place() -> None:
    out = io.StringIO()
    writer = ProgressWriter(out, interval_s=10.0, terminal=True)
    writer.show(_job(done=1), ALIVE, CREATED + 1)
    writer.show(_job(done=2), ALIVE, CREATED + 2)
    assert out.getvalue().count("\r") == 2 and "\n" not in out.getvalue()


def test_a_stalled_tick_is_reported_once_with_the_fix_and_its_end_too() -> None:
    out = io.StringIO()
    writer = ProgressWriter(out, interval_s=1000.0, terminal=False)
    for ticking in (STALLED, STALLED, ALIVE):
        writer.show(_job(done=1), ticking, CREATED + 1)
    text = out.getvalue()
    assert text.count("no scheduler tick for more than 5 s") == 1
    assert "`vidsearch worker`" in text and "the scheduler tick runs again" in text
    assert "WARNING: no scheduler tick" in "\n".join(status_lines(_job(), STALLED, CREATED))


def test_a_held_admission_is_named_in_the_progress_line_with_when_it_resumes() -> None:
    out = io.StringIO()
    held = Ticking(stalled=False, last_tick_at=CREATED, stall_s=5.0,
                   hold=Hold("media-minutes-hour", CREATED + 3600))
    ProgressWriter(out, interval_s=10.0, terminal=False).show(_job(done=1), held, CREATED + 60)
    assert "media-minutes-hour spent, admission resumes at 2026-12-03T09:42:25Z" in out.getvalue()


def test_status_reports_minutes_budget_spend_and_the_limit_that_holds() -> None:
    job = _job(done=10, held=3)
    job.minutes, job.max_minutes = 42.5, 45.0
    spend = Spending(price_per_minute=0.04, held_by="requests-day", resumes_at=CREATED + 7200)
    text = "\n".join(status_lines(job, ALIVE, CREATED + 60, spend))
    assert "media      42.5 minutes of a budget of 45, spend 1.70" in text
    assert "budget     reached: 3 items wait" in text
    assert ("limit      requests-day is spent: admission resumes at 2026-12-03T10:42:25Z (in 1 h 59 min)"
            in text)
    d = status_dict(job, ALIVE, CREATED + 60, spend)
    assert (d["media_minutes"], d["max_minutes"], d["held"], d["spend"]) == (42.5, 45.0, 3, 1.7)
    assert (d["held_by"], d["resumes_at"]) == ("requests-day", CREATED + 7200)


def test_a_finished_job_at_its_budget_is_stopped_at_budget() -> None:
    job = _job(done=97, held=3)
    assert job.finished and job.status == "stopped at budget"


def test_row_progress_off_a_terminal_writes_a_line_per_interval_and_one_at_the_end() -> None:
    out = io.StringIO()
    bar = RowProgress(out, "restore c", interval_s=3600, terminal=False)
    bar(10, 100)
    bar(50, 100)  # within the interval: no line
    bar(100, 100)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "restore c [###..." in lines[0] and "10/100 rows" in lines[0]
    assert "[" + "#" * 30 + "] 100/100 rows" in lines[1] and "rows/s" in lines[1]
