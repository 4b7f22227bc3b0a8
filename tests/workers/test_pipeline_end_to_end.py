"""The whole pipeline on real parts: redis-server, Milvus (Lite server and a real Milvus server),
the sandbox over HTTP through the real SDK, and two Celery worker processes (``vidsearch worker``)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import MilvusClient
from twelvelabs import TwelveLabs

from tests.stack import Stack, start_stack
from vidsearch.stack.services import MilvusEngine

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.both_engines]

CATEGORIES = {
    "animals": ["dog", "cat", "horse", "parrot", "rabbit"],
    "sports": ["football", "tennis", "cycling", "skiing", "rowing"],
    "cooking": ["pasta", "bread", "curry", "salad", "pancakes"],
    "travel": ["paris", "tokyo", "desert", "harbour", "mountain"],
}
BAD_LINES = [
    ("ftp://cdn.example.com/x.mp4", "travel"),
    ("javascript:alert(1)", "travel"),
    ("https://cdn.example.com/ok.mp4", "Not A Category"),
    ("http://127.0.0.1/local.mp4", "sports"),
    ("not a url", "sports"),
]
PER_CATEGORY = 13  # every word of a category twice or more, three tennis clips


def write_manifest(path: Path) -> tuple[list[str], dict[int, str]]:
    """52 good lines in 4 categories and a surfing dog, 2 duplicates, 5 bad lines; returns urls and bad
    line numbers."""
    urls: list[str] = []
    bad: dict[int, str] = {}
    bad_lines = list(BAD_LINES)  # a copy: every call (and every engine's run) writes all five
    rows: list[tuple[str, str, str]] = []
    for category, words in CATEGORIES.items():
        for i in range(PER_CATEGORY):
            word = words[i % len(words)]
            url = f"https://cdn.example.com/{category}/{word}-clip-{i}.mp4"
            rows.append((url, category, f"{word} {i}"))
            urls.append(url)
    rows.append(("https://cdn.example.com/animals/surfing-dog-at-the-beach.mp4", "animals", "Surf dog"))
    urls.append(rows[-1][0])
    rows += [rows[0], rows[1]]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["URL", "Category", "Title", "source"])
        line = 1
        for n, (url, category, title) in enumerate(rows):
            writer.writerow([url, category, title, "unit-test"])
            line += 1
            if n % 20 == 5 and bad_lines:
                url_bad, category_bad = bad_lines.pop()
                writer.writerow([url_bad, category_bad, "bad", "unit-test"])
                line += 1
                bad[line] = url_bad
        while bad_lines:
            url_bad, category_bad = bad_lines.pop()
            writer.writerow([url_bad, category_bad, "bad", "unit-test"])
            line += 1
            bad[line] = url_bad
    return urls, bad


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, milvus_engine: MilvusEngine) -> Iterator[Stack]:
    stack = start_stack(tmp_path_factory.mktemp("e2e"), engine=milvus_engine)
    stack.start_worker("w1", "embedding,polling,writing", concurrency=2)
    stack.start_worker("w2", "embedding,polling,writing", concurrency=2)
    yield stack
    stack.stop()


def _milvus_rows(stack: Stack) -> list[dict[str, object]]:
    # its own connection, closed after use: a shared cached channel left idle between tests is
    # dropped by the server ("too many pings") and pymilvus fails to recover it
    client = MilvusClient(uri=stack.milvus.url, dedicated=True)
    name = next(n for n in client.list_collections() if n.startswith("vidsearch_marengo3_0"))
    rows: list[dict[str, object]] = []
    iterator = client.query_iterator(
        name, batch_size=1000, filter="", output_fields=["pk", "url", "category"],
        consistency_level="Strong",  # every acknowledged write (a server's default is Bounded)
    )
    while batch := iterator.next():
        rows.extend(batch)
    iterator.close()
    client.close()
    return rows


def _segments_produced(stack: Stack) -> int:
    client = TwelveLabs(api_key="k", base_url=f"{stack.sandbox.url}/v1.3")
    total = 0
    for task in client.embed.v_2.tasks.list(page_limit=50):
        if task.status == "ready":
            total += len(client.embed.v_2.tasks.retrieve(str(task.id)).data or [])
    return total


def test_a_manifest_becomes_exactly_the_sandbox_segments_in_milvus(stack: Stack, tmp_path: Path) -> None:
    manifest = tmp_path / "videos.csv"
    urls, bad = write_manifest(manifest)
    proc = stack.vidsearch("submit", str(manifest), "--wait", "--json", timeout=600)
    summary = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert summary["accepted"] == len(urls) == 4 * PER_CATEGORY + 1
    assert summary["duplicates"] == 2
    assert summary["rejected"] == len(bad) == 5
    assert summary["done"] == len(urls) and summary["failed"] == 0

    rejects = json.loads(stack.vidsearch("rejects", summary["id"], "--json").stdout)
    assert {r["line"] for r in rejects} == set(bad)
    assert all(r["reason"] for r in rejects)

    stats = stack.sandbox_stats()
    assert stats["tasks_created"] == len(urls)
    assert set(stats["tasks_by_url"].values()) == {1}

    rows = _milvus_rows(stack)
    assert len(rows) == _segments_produced(stack) == summary["segments"]
    assert len({r["pk"] for r in rows}) == len(rows)
    assert {r["category"] for r in rows} == set(CATEGORIES)


def test_a_concept_query_finds_its_video_first_and_category_filters(stack: Stack) -> None:
    hits = json.loads(stack.vidsearch("search", "surfing dog", "--json").stdout)
    assert hits[0]["url"].endswith("/surfing-dog-at-the-beach.mp4")
    assert len({h["url"] for h in hits}) == len(hits)
    lifted = ("--min-score", "-1")  # the floor lifted: sports has no surfing dog
    filtered = json.loads(stack.vidsearch("search", "surfing dog", "--category", "sports", *lifted,
                                          "--json").stdout)
    assert filtered and {h["category"] for h in filtered} == {"sports"}
    segments = json.loads(stack.vidsearch("search", "tennis", "--segments", "--top-k", "5", "--json").stdout)
    assert len(segments) == 5
    assert all(h["end_s"] > h["start_s"] for h in segments)


def test_a_repeated_query_is_served_from_the_cache(stack: Stack) -> None:
    before = stack.sandbox_stats()["requests"]
    stack.vidsearch("search", "Surfing   DOG", "--json")
    after = stack.sandbox_stats()["requests"]
    embeds = [k for k in after if k.startswith("POST") and k.rstrip("/").endswith("embed-v2")]
    assert embeds
    assert sum(sum(after[k].values()) for k in embeds) == sum(sum(before.get(k, {}).values()) for k in embeds)


def test_resubmitting_costs_nothing_and_force_leaves_no_duplicate(stack: Stack, tmp_path: Path) -> None:
    manifest = tmp_path / "again.csv"
    urls, _ = write_manifest(manifest)
    rows_before = len(_milvus_rows(stack))
    created_before = stack.sandbox_stats()["tasks_created"]

    again = json.loads(stack.vidsearch("submit", str(manifest), "--wait", "--json").stdout)
    assert again["skipped"] == len(urls) and again["queued"] == 0
    assert stack.sandbox_stats()["tasks_created"] == created_before
    assert len(_milvus_rows(stack)) == rows_before

    forced = json.loads(
        stack.vidsearch("submit", str(manifest), "--force", "--wait", "--json", timeout=600).stdout
    )
    assert forced["queued"] == len(urls) and forced["done"] == len(urls)
    assert stack.sandbox_stats()["tasks_created"] == created_before + len(urls)
    rows = _milvus_rows(stack)
    assert len(rows) == rows_before
    assert len({r["pk"] for r in rows}) == len(rows)


def test_status_and_jobs_report_the_finished_jobs(stack: Stack) -> None:
    jobs = json.loads(stack.vidsearch("jobs", "--json").stdout)
    assert len(jobs) >= 1 and all(j["status"] == "done" for j in jobs)
    status = json.loads(stack.vidsearch("status", "--json").stdout)
    assert status["id"] == jobs[0]["id"]


def test_task_log_lines_carry_job_item_and_twelve_labs_task(stack: Stack) -> None:
    lines = [json.loads(x) for x in Path(stack.env["VIDSEARCH_LOG_FILE"]).read_text().splitlines()]
    created = [x for x in lines if x.get("event") == "create_created"]
    assert created
    assert all(x.get("job") and x.get("item") and x.get("tl_task") for x in created)
