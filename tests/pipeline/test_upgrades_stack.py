"""A model upgrade through the real stack, on both engines: redis-server, Milvus, the sandbox over
HTTP and Celery workers (``vidsearch worker``), driven by the ``vidsearch`` commands.

marengo3.0 (512-d) -> marengo3.5 at 256-d: one paid task per item and version (sandbox counters),
a search loop running through the promotion never errs nor comes back empty, a manifest
submitted while the version is being built ends in both versions, and rollback restores the old
results.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.clients import Clients
from pipeline.search.query import Query
from pipeline.search.searcher import build_searcher
from pipeline.settings import Settings
from tests.stack import Stack, start_stack
from vidsearch.stack.services import MilvusEngine

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.both_engines]

WORDS = ["kayak-river", "kayak-lake", "surfing-dog", "mountain-river", "city-traffic",
         "sunset-picnic", "crowd-stadium", "bread-baking", "tennis-match", "desert-road"]
FIRST = [f"https://cdn.example.com/first/{w}-{i}.mp4" for i, w in enumerate(WORDS)]
LATER = [f"https://cdn.example.com/later/{w}-{i}.mp4" for i, w in enumerate(WORDS[:4])]
QUERY = Query(text="kayak river", top_k=5)


def _manifest(path: Path, urls: list[str]) -> Path:
    path.write_text("url,category\n" + "".join(f"{u},outdoor\n" for u in urls), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, milvus_engine: MilvusEngine) -> Iterator[Stack]:
    stack = start_stack(tmp_path_factory.mktemp("upgrade"), engine=milvus_engine)
    stack.start_worker("w1", "embedding,polling,writing", concurrency=2)
    yield stack
    stack.stop()


def _settings(stack: Stack) -> Settings:
    return Settings(_env_file=None, redis_url=stack.redis_url,  # type: ignore[call-arg]
                    milvus_uri=stack.milvus.url, twelvelabs_base_url=stack.env["TWELVELABS_BASE_URL"])


def _json(stack: Stack, *args: str, timeout: float = 300) -> Any:
    proc = stack.vidsearch(*args, "--json", timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def _hits(result: Any) -> list[tuple[str, float]]:
    return [(h.url, round(h.score, 5)) for h in result.hits]


class SearchLoop(threading.Thread):
    """Searches until stopped; keeps every error, every empty result and the versions it saw."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.settings = settings.model_copy(update={"result_cache_ttl_s": 0})  # search each time
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.empty = 0
        self.searches = 0
        self.versions: list[str] = []

    def run(self) -> None:
        with Clients.from_settings(self.settings) as clients:
            searcher = build_searcher(self.settings, clients)
            while not self.stop.is_set():
                try:
                    result = searcher.search(QUERY)
                except Exception as exc:  # any error is what this test looks for
                    self.errors.append(repr(exc))
                    continue
                self.searches += 1
                self.empty += not result.hits
                version = searcher.current().version
                if not self.versions or self.versions[-1] != version:
                    self.versions.append(version)


def test_a_reembed_promotion_and_rollback_keep_search_answering(stack: Stack, tmp_path: Path) -> None:
    first = _json(stack, "submit", str(_manifest(tmp_path / "first.csv", FIRST)), "--wait",
                  timeout=600)
    assert first["done"] == len(FIRST) and first["failed"] == 0
    before = stack.sandbox_stats()["tasks_by_model"]

    dry = _json(stack, "reembed", "--model", "marengo3.5", "--dimension", "256", "--dry-run")
    assert (dry["to"], dry["items"], dry["tasks"]) == ("marengo3.5-256", len(FIRST), len(FIRST))
    assert dry["media_minutes"] > 0 and dry["quota_s"] > 0
    assert stack.sandbox_stats()["tasks_by_model"] == before  # a dry run pays nothing

    print(f"\ndry run: {dry}")
    began = time.monotonic()
    started = _json(stack, "reembed", "--model", "marengo3.5", "--dimension", "256")
    later = stack.vidsearch("submit", str(_manifest(tmp_path / "later.csv", LATER)))
    building = re.search(r"version being built \(re-embed\): job (\S+)", later.stderr)
    assert building is not None, later.stderr
    job_ids = [started["job_id"], later.stdout.split()[0], building.group(1)]
    for job_id in job_ids:
        done = _json(stack, "status", job_id, "--watch", timeout=600)
        assert done["failed"] == 0, done

    print(f"run: {started}; reembed and the later ingest settled in {time.monotonic() - began:.1f} s")
    stats = stack.sandbox_stats()
    everything = FIRST + LATER
    assert stats["tasks_by_model"]["marengo3.5"] == len(everything)
    assert stats["tasks_by_model"]["marengo3.0"] == len(everything)
    assert {stats["tasks_by_url"][u] for u in everything} == {2}  # one per item and version

    versions = {v["id"]: v for v in _json(stack, "versions")}
    assert versions["marengo3.5-256"]["state"] == "building"
    assert versions["marengo3.5-256"]["done"] == len(everything)
    assert versions["marengo3.0-512"]["state"] == "live"

    settings = _settings(stack)
    old = build_searcher(settings).search(QUERY)
    assert old.hits

    loop = SearchLoop(settings)
    loop.start()
    promoted = stack.vidsearch("promote", "marengo3.5-256")
    assert promoted.returncode == 0, promoted.stderr
    searched = loop.searches
    while loop.searches < searched + 5 and not loop.errors:
        threading.Event().wait(0.1)
    loop.stop.set()
    loop.join(60)
    print(f"searches during the promotion: {loop.searches}, errors {len(loop.errors)}, "
          f"empty {loop.empty}, versions seen {loop.versions}")
    assert loop.errors == [] and loop.empty == 0 and loop.searches > 5
    assert loop.versions[-1] == "marengo3.5-256"

    new = build_searcher(settings).search(QUERY)
    assert "kayak" in new.hits[0].url
    with Clients.from_settings(settings) as clients:
        live = clients.versions.live()
        assert live is not None and live.id == "marengo3.5-256"
        assert clients.store.alias_target("vidsearch_live") == live.collection
        assert clients.store.count(live.collection) > 0
    assert {h.url for h in new.hits} <= set(everything)

    assert stack.vidsearch("rollback").returncode == 0
    back = build_searcher(settings).search(QUERY)
    assert _hits(back) == _hits(old)
    cli = _json(stack, "search", "kayak river", "--top-k", "5")
    assert [(h["url"], round(h["score"], 5)) for h in cli] == _hits(old)
