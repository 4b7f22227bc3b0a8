"""``vidsearch backfill``: exit codes, the overlap lock and "only new items are paid for".

Lock and bad-input tests run against the session redis-server (no workers, so a first run keeps
waiting and holding its lock); exit codes 0 and 1 run on a real stack with one worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from pipeline.settings import get_settings
from pipeline.state.keys import Keys
from tests.stack import Stack, start_stack, wait_for
from vidsearch.cli import main as cli
from vidsearch.cli.backfill import RunLock
from vidsearch.exit_codes import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_LOCKED, EXIT_OK, EXIT_TIMEOUT

CDN = "https://cdn.example.com/backfill"


def write_csv(path: Path, urls: list[str], category: str = "nightly") -> Path:
    lines = ["url,category", *(f"{u},{category}" for u in urls)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_jsonl(path: Path, urls: list[str], category: str = "nightly") -> Path:
    path.write_text("".join(json.dumps({"url": u, "category": category}) + "\n" for u in urls))
    return path


# --- the lock, on the session redis-server ------------------------------------------------------
@pytest.fixture
def env(redis_url: str) -> dict[str, str]:
    """Environment of a backfill process on its own key prefix (no workers consume it)."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("VIDSEARCH_", "TWELVE"))}
    return {**keep, "VIDSEARCH_REDIS_URL": redis_url, "VIDSEARCH_LOG_FORMAT": "json",
            "VIDSEARCH_REDIS_PREFIX": f"bf{uuid.uuid4().hex[:8]}"}


def backfill(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vidsearch", "backfill", *args], env=env, capture_output=True,
        text=True, timeout=timeout, check=False,
    )


def start_holder(env: dict[str, str], manifest: Path, ttl_s: float) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(  # a run that waits forever: nothing works on its prefix
        [sys.executable, "-m", "vidsearch", "backfill", str(manifest), "--name", "nightly",
         "--lock-ttl", str(ttl_s)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    return proc


def lock_value(client: redis.Redis[bytes], env: dict[str, str]) -> bytes | None:
    return client.get(Keys(env["VIDSEARCH_REDIS_PREFIX"]).lock("backfill:nightly"))


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis[bytes]]:
    c: redis.Redis[bytes] = redis.Redis.from_url(redis_url)
    yield c
    c.close()


def test_a_second_run_exits_3_while_the_first_holds_and_renews_the_lock(
    env: dict[str, str], client: redis.Redis[bytes], tmp_path: Path,
) -> None:
    manifest = write_csv(tmp_path / "a.csv", [f"{CDN}/held-{i}.mp4" for i in range(3)])
    holder = start_holder(env, manifest, ttl_s=1.0)
    try:
        wait_for(lambda: lock_value(client, env) is not None, 60, "the first run to take the lock")
        token = lock_value(client, env)
        time.sleep(2.5)  # 2.5 lock lifetimes: only the heartbeat keeps it
        assert lock_value(client, env) == token

        second = backfill(env, str(manifest), "--name", "nightly")

        assert second.returncode == EXIT_LOCKED, second.stderr
        assert token is not None
        assert json.loads(second.stdout)["holder"] == token.decode()
        assert f":{holder.pid}:" in token.decode()
        assert client.zcard(Keys(env["VIDSEARCH_REDIS_PREFIX"]).jobs) == 1
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(10)


def test_the_lock_of_a_killed_run_expires_and_the_next_run_pays_nothing_twice(
    env: dict[str, str], client: redis.Redis[bytes], tmp_path: Path,
) -> None:
    manifest = write_csv(tmp_path / "a.csv", [f"{CDN}/killed-{i}.mp4" for i in range(3)])
    holder = start_holder(env, manifest, ttl_s=1.5)
    wait_for(lambda: lock_value(client, env) is not None, 60, "the first run to take the lock")
    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait(10)
    assert lock_value(client, env) is not None
    wait_for(lambda: lock_value(client, env) is None, 10, "the dead holder's lock to expire")

    again = backfill(env, str(manifest), "--name", "nightly", "--wait-timeout", "3")

    summary = json.loads(again.stdout)
    # nothing works on this prefix: the items the dead run queued stay open, and this run waits
    # for them (it does not report done) until its --wait-timeout
    assert again.returncode == EXIT_TIMEOUT, again.stderr
    assert summary["status"] == "timeout" and summary["open_elsewhere"] == 3
    assert summary["submitted"]["queued"] == 0
    assert summary["submitted"]["in_progress"] == 3
    assert lock_value(client, env) is None


def test_a_run_never_releases_a_lock_it_no_longer_holds(client: redis.Redis[bytes]) -> None:
    key = f"t:lock:{uuid.uuid4().hex}"
    mine = RunLock(client, key, ttl_s=0.3)
    assert mine.acquire()
    assert not RunLock(client, key, ttl_s=10).acquire()
    client.set(key, "someone-else")  # as if it had expired and another run had taken it
    wait_for(lambda: mine.lost, 5, "the heartbeat to notice")
    mine.release()
    assert client.get(key) == b"someone-else"


# --- bad input: exit 2, nothing submitted ---------------------------------------------------------
@pytest.fixture
def in_process(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    for name, value in env.items():
        if name.startswith("VIDSEARCH_"):
            monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()


def test_no_manifest_in_the_directories_exits_2(
    in_process: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "notes.txt").write_text("not a manifest")
    write_csv(tmp_path / ".partial.csv", [f"{CDN}/x.mp4"])
    assert cli.main(["backfill", str(tmp_path)]) == EXIT_BAD_INPUT
    assert "no manifests" in capsys.readouterr().err
    assert cli.main(["backfill", str(tmp_path / "missing")]) == EXIT_BAD_INPUT


def test_an_unreadable_manifest_exits_2_before_anything_is_submitted(
    in_process: dict[str, str], client: redis.Redis[bytes], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_csv(tmp_path / "a.csv", [f"{CDN}/fine.mp4"])
    (tmp_path / "b.csv").write_text("link,category\nhttps://cdn.example.com/x.mp4,a\n")
    assert cli.main(["backfill", str(tmp_path)]) == EXIT_BAD_INPUT
    assert "b.csv" in capsys.readouterr().err
    assert client.zcard(Keys(in_process["VIDSEARCH_REDIS_PREFIX"]).jobs) == 0


def test_bad_settings_exit_2(
    in_process: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    manifest = write_csv(tmp_path / "a.csv", [f"{CDN}/fine.mp4"])
    monkeypatch.setenv("VIDSEARCH_RATE_BURST", "0")
    get_settings.cache_clear()
    assert cli.main(["backfill", str(manifest)]) == EXIT_BAD_INPUT


# --- exit 0 and 1 on a real stack -----------------------------------------------------------------
@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(tmp_path_factory.mktemp("backfill"))
    stack.start_worker("bf", "embedding,polling,writing", concurrency=2)
    yield stack
    stack.stop()


def run_on(stack: Stack, *args: str) -> tuple[int, dict[str, object]]:
    proc = stack.vidsearch("backfill", *args, "--wait-timeout", "240", timeout=300, check=False)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.integration
@pytest.mark.slow
def test_a_directory_backfill_exits_0_and_a_rerun_pays_only_for_new_manifest_lines(
    stack: Stack, tmp_path: Path,
) -> None:
    write_csv(tmp_path / "a.csv", [f"{CDN}/a-{i}.mp4" for i in range(3)])
    write_jsonl(tmp_path / "b.jsonl", [f"{CDN}/b-{i}.mp4" for i in range(2)])
    (tmp_path / "README.txt").write_text("ignored")
    created = stack.sandbox_stats()["tasks_created"]

    code, first = run_on(stack, str(tmp_path), "--name", "dir")

    assert code == EXIT_OK
    assert (first["queued"], first["done"], first["failed"]) == (5, 5, 0)
    assert stack.sandbox_stats()["tasks_created"] == created + 5

    write_csv(tmp_path / "c.csv", [f"{CDN}/a-0.mp4", f"{CDN}/c-new.mp4"])
    code, second = run_on(stack, str(tmp_path), "--name", "dir")

    assert code == EXIT_OK
    assert (second["queued"], second["skipped"], second["done"]) == (1, 5, 1)
    assert second["duplicates"] == 1
    assert stack.sandbox_stats()["tasks_created"] == created + 6


@pytest.mark.integration
@pytest.mark.slow
def test_a_backfill_with_a_failing_item_exits_1(stack: Stack, tmp_path: Path) -> None:
    manifest = write_csv(tmp_path / "mixed.csv", [f"{CDN}/good.mp4", f"{CDN}/page.html"])

    code, summary = run_on(stack, str(manifest), "--name", "mixed")

    assert code == EXIT_FAILED
    assert (summary["done"], summary["failed"]) == (1, 1)
    failures = json.loads(stack.vidsearch("failures", str(summary["id"]), "--json").stdout)
    assert [f["url"] for f in failures] == [f"{CDN}/page.html"]


@pytest.mark.integration
@pytest.mark.slow
def test_the_workers_of_a_run_count_twelve_labs_calls_and_writer_batches_for_the_exporter(
    stack: Stack, tmp_path: Path,
) -> None:
    client = stack.client()
    before = {k.decode(): float(v) for k, v in client.hgetall("vs:metrics").items()}
    manifest = write_csv(tmp_path / "m.csv", [f"{CDN}/metered-{i}.mp4" for i in range(2)])

    code, summary = run_on(stack, str(manifest), "--name", "metered")

    after = {k.decode(): float(v) for k, v in client.hgetall("vs:metrics").items()}
    assert code == EXIT_OK
    assert after["tl:create:ok"] - before.get("tl:create:ok", 0) == 2
    assert after["tl:retrieve:ok"] - before.get("tl:retrieve:ok", 0) >= 2
    assert after["wb:rows"] - before.get("wb:rows", 0) == summary["segments"]
    assert after["wb:count"] > before.get("wb:count", 0)


@pytest.mark.integration
@pytest.mark.slow
def test_a_rerun_pays_nothing_for_a_url_that_failed_and_retry_redrives_it(
    stack: Stack, tmp_path: Path,
) -> None:
    page = f"{CDN}/known-bad-page.html"
    manifest = write_csv(tmp_path / "m.csv", [f"{CDN}/fine-again.mp4", page])
    code, first = run_on(stack, str(manifest), "--name", "again")
    assert code == EXIT_FAILED and first["failed"] == 1
    assert stack.sandbox_stats()["tasks_by_url"][page] == 1

    code, second = run_on(stack, str(manifest), "--name", "again")

    assert code == EXIT_OK
    assert (second["queued"], second["skipped"], second["previously_failed"]) == (0, 1, 1)
    assert stack.sandbox_stats()["tasks_by_url"][page] == 1
    listed = json.loads(stack.vidsearch("failures", str(second["id"]), "--json").stdout)
    assert [(f["url"], f["failed_in_job"]) for f in listed] == [(page, first["id"])]
    assert "not a media file" in listed[0]["reason"]

    assert "re-queued 1" in stack.vidsearch("retry", str(second["id"])).stdout
    retried = json.loads(stack.vidsearch("status", str(second["id"]), "--watch", "--json").stdout)
    assert (retried["failed"], retried["previously_failed"]) == (1, 0)
    assert stack.sandbox_stats()["tasks_by_url"][page] == 2

    forced = stack.vidsearch("submit", str(manifest), "--retry-failed", "--wait", "--json")
    assert json.loads(forced.stdout)["queued"] == 1
    assert stack.sandbox_stats()["tasks_by_url"][page] == 3


@pytest.mark.integration
@pytest.mark.slow
def test_a_backfill_exits_only_when_its_items_in_flight_for_another_job_have_settled(
    stack: Stack, tmp_path: Path,
) -> None:
    manifest = write_csv(tmp_path / "m.csv", [f"{CDN}/shared-{i}.mp4" for i in range(3)])
    stack.sandbox_config(speed=0.5)  # tasks take 15 s or more: still processing when the run starts
    created = stack.sandbox_stats()["tasks_created"]
    try:
        first_id = stack.vidsearch("submit", str(manifest)).stdout.split()[0]
        wait_for(lambda: stack.sandbox_stats()["tasks_created"] >= created + 3, 60,
                 "the first job's tasks")
        code, second = run_on(stack, str(manifest), "--name", "shared")
    finally:
        stack.sandbox_config(speed=50)

    assert second["submitted"]["in_progress"] == 3  # type: ignore[index]
    first = json.loads(stack.vidsearch("status", first_id, "--json").stdout)
    assert first["done"] == first["queued"] == 3
    assert code == EXIT_OK and second["status"] == "done" and second["open_elsewhere"] == 0


def test_a_backfill_records_its_media_minutes_budget_on_its_job(
    env: dict[str, str], client: redis.Redis[bytes], tmp_path: Path,
) -> None:
    manifest = write_csv(tmp_path / "m.csv", [f"{CDN}/{uuid.uuid4().hex[:6]}.mp4"])
    proc = backfill(env, str(manifest), "--name", "budgeted", "--max-minutes", "7", "--wait-timeout", "1")
    assert proc.returncode == EXIT_TIMEOUT  # no worker on this prefix: it waits, then gives up
    keys = Keys(env["VIDSEARCH_REDIS_PREFIX"])
    (job_id,) = [j.decode() for j in client.zrange(keys.jobs, 0, -1)]
    assert float(client.hget(keys.job(job_id), "max_minutes") or 0) == 7.0
