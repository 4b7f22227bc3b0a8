"""A small searchable library for search tests: catalog videos embedded by a real sandbox (tasks
over HTTP through the gateway) and written by the real SegmentWriter into Milvus."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import redis

from pipeline.ingest.writer import SegmentWriter
from pipeline.milvus.store import MilvusStore
from pipeline.segments import Segment, pack_vector
from pipeline.settings import Settings, load_settings
from pipeline.spec import EmbeddingSpec, item_key, segment_pk
from pipeline.state.keys import Keys
from pipeline.twelvelabs import TwelveLabsGateway
from vidsearch.stack.services import Service, start_sandbox


class Ledger:
    """Records what the writer reports (the ledger protocol; nothing else reads it here)."""

    def __init__(self) -> None:
        self.written: list[tuple[str, str]] = []
        self.dead: list[tuple[str, str]] = []

    def record_written(self, pairs: Sequence[tuple[str, str]]) -> None:
        self.written.extend(pairs)

    def record_dead(self, item_key: str, reason: str) -> None:
        self.dead.append((item_key, reason))


def write_catalog(path: Path, catalog: Mapping[str, Any]) -> Path:
    path.write_text(json.dumps(catalog), encoding="utf-8")
    return path


def library(
    root: Path, redis_url: str, milvus_uri: str, catalog: Mapping[str, Any], videos: Mapping[str, str]
) -> tuple[Settings, Service]:
    """A sandbox serving ``catalog`` and settings of a fresh collection holding ``videos``."""
    path = write_catalog(root / "catalog.json", catalog)
    sandbox = start_sandbox(root, args=["--speed", "200", "--catalog", str(path)])
    settings = load_settings(
        redis_url=redis_url, milvus_uri=milvus_uri, twelvelabs_base_url=f"{sandbox.url}/v1.3",
        collection_prefix=f"ss{uuid.uuid4().hex[:8]}", redis_prefix=f"ss{uuid.uuid4().hex[:6]}",
        embedding_options=["visual", "audio"], writer_max_wait_s=0.05,
    )
    ingest(settings, redis.Redis.from_url(redis_url), videos)
    return settings, sandbox


def embed(gateway: TwelveLabsGateway, spec: EmbeddingSpec, urls: Sequence[str]) -> dict[str, Any]:
    """The ready task results of ``urls`` (created at once, then polled)."""
    tasks = {url: gateway.create_task(url, spec) for url in urls}
    results: dict[str, Any] = {}
    deadline = time.monotonic() + 120
    while len(results) < len(tasks):
        assert time.monotonic() < deadline, "sandbox tasks did not finish"
        for url, task_id in tasks.items():
            if url not in results:
                result = gateway.retrieve(task_id)
                if result.status != "processing":
                    assert result.status == "ready", result.error
                    results[url] = result
        time.sleep(0.05)
    return results


def segments_of(url: str, category: str, result: Any, spec: EmbeddingSpec) -> list[Segment]:
    key = item_key(url, spec)
    return [
        Segment(pk=segment_pk(key, s.option, s.scope, s.start_s, s.end_s), item_key=key,
                job_id="search-test", url=url, category=category, title=url.rsplit("/", 1)[-1],
                metadata="{}", model=spec.model, option=s.option, scope=s.scope,
                start_s=s.start_s, end_s=s.end_s, vector=pack_vector(s.embedding))
        for s in result.segments
    ]


def ingest(settings: Settings, client: redis.Redis, videos: Mapping[str, str]) -> int:
    """Embed ``videos`` (url -> category) and write them through the SegmentWriter; rows written."""
    spec = EmbeddingSpec.from_settings(settings)
    gateway = TwelveLabsGateway(settings)
    stream = Keys(settings.redis_prefix).segments
    count = 0
    for url, result in embed(gateway, spec, list(videos)).items():
        for segment in segments_of(url, videos[url], result, spec):
            client.xadd(stream, segment.to_fields())  # type: ignore[arg-type]
            count += 1
    store = MilvusStore(settings)
    ledger = Ledger()
    writer = SegmentWriter(client, store, ledger, settings, "search-tests")
    writer.ensure_group()
    while len(ledger.written) < count:
        stats = writer.drain(max_seconds=5)
        assert not stats.error and not ledger.dead, (stats.error, ledger.dead)
    store.close()
    return count
