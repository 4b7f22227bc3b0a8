"""The quota's other dimensions on the real stack (workers, sandbox, SDK): a media-minutes window
that the governor does not know and over-admits into, the daily request limit, a job's budget,
the daily media-minutes budget. No item fails and no attempt is spent because of our own pacing."""

from __future__ import annotations

import csv
import json
import time
import urllib.request
from pathlib import Path

import pytest

from pipeline.state.keys import Keys
from tests.drills.harness import jobs_of, sandbox_clock, start_worker, wait_job, wait_progress
from tests.stack import Stack, wait_for
from tests.vidsearch.api.conftest import api_for, start_server

pytestmark = [pytest.mark.drill, pytest.mark.integration, pytest.mark.slow]

ONE_MINUTE = {"min_duration_s": 60.0, "max_duration_s": 60.0}


def manifest(path: Path, tag: str, n: int, duration_s: float | None = None) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["url", "category", "title", *(["duration_s"] if duration_s else [])])
        for i in range(n):
            extra = [str(duration_s)] if duration_s else []
            out.writerow([f"https://cdn.example.com/{tag}/clip-{i}.mp4", "news", f"{tag} {i}", *extra])
    return path


def status(stack: Stack, job_id: str) -> dict[str, object]:
    return dict(json.loads(stack.vidsearch("status", job_id, "--json").stdout))


def test_a_media_window_the_governor_over_admits_into_fails_nothing(stack: Stack, tmp_path: Path) -> None:
    stack.sandbox_config(**ONE_MINUTE, media_minutes_per_hour=3, media_window_s=6, no_retry_after=True)
    env = {"VIDSEARCH_MEDIA_WINDOW_S": "6", "VIDSEARCH_MAX_ITEM_ATTEMPTS": "1",
           "VIDSEARCH_RETRY_TOTAL_S": "1"}
    start_worker(stack, "m1", env=env)
    wrong = manifest(tmp_path / "m.csv", "window", 9, duration_s=6)  # the manifest says 6 s: it lies
    proc = stack.vidsearch("submit", str(wrong), "--json", env=env)
    job_id = json.loads(proc.stdout)["job_id"]
    done = wait_job(stack, job_id, 240)
    stats = stack.sandbox_stats()
    assert stats["rate_limited_org"].get("media-minutes-hour", 0) > 0  # it did run into the limit
    assert (done.counters["done"], done.counters["failed"]) == (9, 0)
    assert set(stats["tasks_by_url"].values()) == {1} and stats["tasks_created"] == 9
    assert status(stack, job_id)["media_minutes"] == pytest.approx(9.0)  # settled: what was covered


def test_the_daily_request_limit_holds_admission_and_status_says_until_when(
    stack: Stack, tmp_path: Path,
) -> None:
    env = {"VIDSEARCH_RATE_LIMIT_PER_DAY": "4"}
    start_worker(stack, "d1", env=env)
    job_id = json.loads(stack.vidsearch("submit", str(manifest(tmp_path / "d.csv", "daily", 6)), "--json",
                                        env=env).stdout)["job_id"]
    wait_progress(stack, job_id, "done", 4)
    wait_for(lambda: status(stack, job_id).get("held_by") == "requests-day", 30, "the hold")
    seen = status(stack, job_id)
    assert seen["status"] == "running" and seen["failed"] == 0 and seen["done"] == 4
    assert float(seen["resumes_at"]) % 86400 == 0  # type: ignore[arg-type]
    text = stack.vidsearch("status", job_id).stdout
    assert "requests-day is spent: admission resumes at" in text


def test_a_job_at_its_budget_stops_spends_no_more_and_resumes_when_raised(
    stack: Stack, tmp_path: Path,
) -> None:
    stack.sandbox_config(**ONE_MINUTE)
    start_worker(stack, "b1")
    path = manifest(tmp_path / "b.csv", "budget", 6, duration_s=60)
    proc = stack.vidsearch("submit", str(path), "--max-minutes", "3.5", "--wait", "--json")
    first = json.loads(proc.stdout)
    assert first["status"] == "stopped at budget"
    assert (first["done"], first["held"], first["failed"]) == (3, 3, 0)
    stats = stack.sandbox_stats()
    assert stats["tasks_created"] == 3 and stats["media_minutes"] <= 3.5
    text = stack.vidsearch("status", first["job_id"]).stdout
    assert "3.0 minutes of a budget of 3.5" in text and "3 items wait" in text
    raised = stack.vidsearch("budget", first["job_id"], "--max-minutes", "10").stdout
    assert "3 held items queued again" in raised
    final = wait_job(stack, first["job_id"], 120)
    assert final.status == "done" and final.counters["done"] == 6
    assert stack.sandbox_stats()["tasks_created"] == 6


def next_day(stack: Stack) -> None:
    """The day rolls over. The sandbox's clock moves to its next UTC day; ours is Redis' TIME,
    which nothing can move, so the budget window's boundary moves to now instead."""
    sandbox_clock(stack, sandbox_day(stack)["reset"] - sandbox_clock(stack, 0) + 1)
    stack.client().hset(Keys("vs").limits, "budget-day:reset", f"{time.time():.3f}")


def sandbox_day(stack: Stack) -> dict[str, float]:
    """The sandbox's media-minutes-per-day window (``GET /_sandbox/limits``)."""
    with urllib.request.urlopen(f"{stack.sandbox.url}/_sandbox/limits", timeout=10) as resp:
        return dict(json.loads(resp.read())["media-minutes-day"])


def test_the_daily_budget_stops_admission_items_wait_unpaid_and_resume_the_next_day(
    stack: Stack, tmp_path: Path,
) -> None:
    stack.sandbox_config(**ONE_MINUTE, media_minutes_per_day=1000)  # counts the sandbox's day
    env = {"VIDSEARCH_DAILY_MEDIA_MINUTES_BUDGET": "3", "VIDSEARCH_MAX_ITEM_ATTEMPTS": "1"}
    start_worker(stack, "y1", env=env)
    path = manifest(tmp_path / "y.csv", "day", 6, duration_s=60)
    job_id = json.loads(stack.vidsearch("submit", str(path), "--json", env=env).stdout)["job_id"]
    wait_progress(stack, job_id, "done", 3)
    wait_for(lambda: status(stack, job_id).get("held_by") == "budget-day", 30, "the budget's hold")
    time.sleep(3 * float(stack.env["VIDSEARCH_TICK_INTERVAL_S"]))  # ticks pass: the hold holds
    seen = status(stack, job_id)
    assert (seen["status"], seen["done"], seen["failed"]) == ("running", 3, 0)
    assert float(seen["resumes_at"]) % 86400 == 0  # type: ignore[arg-type]  # the next UTC day
    jobs, keys = jobs_of(stack), Keys("vs")
    waiting = [rec.split(b"\x1f")[0].decode() for rec in stack.client().lrange(keys.wait, 0, -1)]
    items = [jobs.get_item(key) for key in waiting]
    assert len(items) == 3 and all(i is not None and (i.state, i.attempts) == ("waiting", 0) for i in items)
    stats = stack.sandbox_stats()
    assert stats["tasks_created"] == 3 and stats["media_minutes"] == pytest.approx(3.0)
    assert sandbox_day(stack)["used"] == pytest.approx(3.0)

    next_day(stack)
    done = wait_job(stack, job_id, 120)
    assert (done.status, done.counters["done"], done.counters["failed"]) == ("done", 6, 0)
    stats = stack.sandbox_stats()
    assert stats["tasks_created"] == 6 and set(stats["tasks_by_url"].values()) == {1}
    assert sandbox_day(stack)["used"] == pytest.approx(3.0)  # the new day's three minutes
    assert status(stack, job_id)["media_minutes"] == pytest.approx(6.0)


def test_the_job_api_says_which_limit_holds_until_when_and_what_the_job_spent(
    stack: Stack, tmp_path: Path,
) -> None:
    stack.sandbox_config(**ONE_MINUTE, media_minutes_per_day=1000)
    env = {"VIDSEARCH_DAILY_MEDIA_MINUTES_BUDGET": "2", "VIDSEARCH_PRICE_PER_MEDIA_MINUTE": "0.05"}
    start_worker(stack, "h1", env=env)
    server = start_server(stack, "hold", **env)
    try:
        api = api_for(server)  # answers checked against the server's OpenAPI document
        body = manifest(tmp_path / "h.csv", "hold", 4, duration_s=60).read_bytes()
        created = api.post("/v1/jobs", content=body, headers={"content-type": "text/csv"})
        assert created.status_code == 201, created.text
        job_id = created.json()["job_id"]
        wait_for(lambda: api.get(f"/v1/jobs/{job_id}").json()["done"] == 2, 60, "two items done")
        held = api.get(f"/v1/jobs/{job_id}").json()
        assert (held["status"], held["done"], held["failed"]) == ("running", 2, 0)
        assert held["resumes_at"] > time.time() and held["resumes_at"] % 86400 == 0
        assert held["media_minutes"] == pytest.approx(2.0) and held["spend"] == pytest.approx(0.10)
        [listed] = [j for j in api.get("/v1/jobs").json() if j["id"] == job_id]
        assert (listed["held_by"], listed["resumes_at"]) == ("budget-day", held["resumes_at"])

        next_day(stack)
        wait_for(lambda: api.get(f"/v1/jobs/{job_id}").json()["status"] == "done", 120, "the job")
        done = api.get(f"/v1/jobs/{job_id}").json()
        assert (done["held_by"], done["resumes_at"], done["done"]) == (None, None, 4)
        assert done["media_minutes"] == pytest.approx(4.0) and done["spend"] == pytest.approx(0.20)
    finally:
        server.stop()
