"""Bad input and unreachable services get one clear line and a documented exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis

from vidsearch.stack.services import free_port


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VIDSEARCH_", "TWELVE"))}
    return subprocess.run(
        [sys.executable, "-m", "vidsearch", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_missing_manifest_is_exit_2_and_records_no_job(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    proc = _run("submit", str(tmp_path / "nope.csv"), VIDSEARCH_REDIS_URL=redis_url)
    assert proc.returncode == 2
    assert "nope.csv" in proc.stderr and "Traceback" not in proc.stderr
    assert redis_client.keys("*") == []


def test_a_manifest_without_a_url_column_is_exit_2(redis_url: str, tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("link,category\nhttps://cdn.example.com/a.mp4,news\n")
    proc = _run("submit", str(manifest), VIDSEARCH_REDIS_URL=redis_url)
    assert proc.returncode == 2
    assert "url" in proc.stderr


def test_an_unreachable_redis_is_exit_5_without_its_password(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("url,category\nhttps://cdn.example.com/a.mp4,news\n")
    url = f"redis://:hunter2-sentinel@127.0.0.1:{free_port()}/0"
    for args in (("jobs",), ("submit", str(manifest)), ("status",)):
        proc = _run(*args, VIDSEARCH_REDIS_URL=url)
        assert proc.returncode == 5, (args, proc.stderr)
        assert "cannot reach Redis" in proc.stderr and "Traceback" not in proc.stderr
        assert "hunter2-sentinel" not in proc.stderr + proc.stdout


def test_unreachable_sentinels_are_exit_5_naming_them_without_a_password() -> None:
    port = free_port()
    url = f"redis+sentinel://:hunter2-sentinel@127.0.0.1:{port}/vidsearch/0"
    proc = _run("jobs", VIDSEARCH_REDIS_URL=url, VIDSEARCH_REDIS_SENTINEL_PASSWORD="sentinel-pw-77")
    assert proc.returncode == 5, proc.stderr
    assert f"cannot reach Redis at redis+sentinel://127.0.0.1:{port}/vidsearch/0" in proc.stderr
    assert "are the Sentinels and a primary up?" in proc.stderr and "Traceback" not in proc.stderr
    assert "hunter2-sentinel" not in proc.stderr + proc.stdout
    assert "sentinel-pw-77" not in proc.stderr + proc.stdout


def test_a_malformed_sentinel_url_is_exit_2_and_says_what_is_wrong() -> None:
    proc = _run("jobs", VIDSEARCH_REDIS_URL="redis+sentinel://:hunter2@127.0.0.1:26379")
    assert proc.returncode == 2
    assert "names no Sentinel service" in proc.stderr and "hunter2" not in proc.stderr


def test_an_invalid_setting_is_exit_2_and_names_it() -> None:
    proc = _run("jobs", VIDSEARCH_MODEL="marengo9")
    assert proc.returncode == 2
    assert "model" in proc.stderr and "Traceback" not in proc.stderr


def test_submit_dry_run_prices_the_manifest_and_records_no_job(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("url,category,duration_s\nhttps://cdn.example.com/a.mp4,news,600\n"
                        "https://cdn.example.com/b.mp4,news,90\nhttps://cdn.example.com/c.mp4,news,\n"
                        "ftp://cdn.example.com/d.mp4,news,60\n")
    env = {"VIDSEARCH_REDIS_URL": redis_url, "VIDSEARCH_PRICE_PER_MEDIA_MINUTE": "0.05",
           "VIDSEARCH_MEDIA_MINUTES_PER_HOUR": "60"}
    proc = _run("submit", str(manifest), "--dry-run", "--json", **env)
    assert proc.returncode == 0, proc.stderr
    priced = json.loads(proc.stdout)
    assert (priced["lines"], priced["rejected"], priced["with_duration"], priced["without_duration"]) == (
        4, 1, 2, 1)
    assert priced["known_minutes"] == 11.5 and priced["assumed_minutes"] == 5.0  # the default
    assert priced["minutes"] == 16.5 and priced["spend"] == 0.83
    assert priced["hours_at_media_limit"] == 0.28
    text = _run("submit", str(manifest), "--dry-run", **env).stdout
    assert "minutes    16.5: 11.5 from 2 lines with duration_s, 5.0 assumed for 1 without" in text
    assert redis_client.keys("*") == []


def test_failures_says_how_many_dead_letters_the_cap_dropped(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("url,category\nhttps://cdn.example.com/a.mp4,news\n", encoding="utf-8")
    submitted = _run("submit", str(manifest), "--json", VIDSEARCH_REDIS_URL=redis_url)
    job_id = json.loads(submitted.stdout)["job_id"]
    quiet = _run("failures", job_id, VIDSEARCH_REDIS_URL=redis_url)
    assert quiet.returncode == 0 and "dead letter" not in quiet.stderr
    redis_client.hset("vs:metrics", "dl:dropped", 7)  # as the writer's dead-letter script counts
    proc = _run("failures", job_id, VIDSEARCH_REDIS_URL=redis_url,
                VIDSEARCH_DEAD_LETTER_MAX_ENTRIES="100")
    assert proc.returncode == 0
    assert "7 dead letter(s) dropped" in proc.stderr and "dead_letter_max_entries=100" in proc.stderr
