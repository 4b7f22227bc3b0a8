"""SegmentWriter against real redis-server and both Milvus engines (Lite, a real server);
assemble_batches by property."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import redis
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipeline.errors import StoreUnavailableError
from pipeline.ingest.stream import GROUP, dead_letters_dropped, settle, stream_backlog, trim_settled
from pipeline.ingest.writer import SegmentWriter, assemble_batches
from pipeline.milvus.columns import Columns
from pipeline.milvus.store import MilvusStore
from pipeline.segments import Segment, pack_vector
from pipeline.settings import Settings, load_settings

pytestmark = pytest.mark.both_engines

MODEL = "marengo3.5"
DIM = 32


class Ledger:
    """An idempotent in-test ledger, like JobStore: counts each (item_key, pk) once."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.written: set[tuple[str, str]] = set()
        self.dead: list[tuple[str, str]] = []

    def record_written(self, pairs: Sequence[tuple[str, str]]) -> None:
        self.calls.extend(pairs)
        self.written.update(pairs)

    def record_dead(self, item_key: str, reason: str) -> None:
        self.dead.append((item_key, reason))


class RecordingStore(MilvusStore):
    """Records batch sizes; fails the first ``fail`` upserts (after ``accept`` lets Milvus have them)."""

    def __init__(self, settings: Settings, fail: int = 0, accept: bool = False) -> None:
        super().__init__(settings)
        self.fail, self.accept = fail, accept
        self.batches: list[list[str]] = []
        self.flushed: list[str] = []

    def upsert_columns(self, collection: str, columns: Columns) -> None:
        if self.fail:
            self.fail -= 1
            if self.accept:
                super().upsert_columns(collection, columns)
            raise StoreUnavailableError("Milvus unavailable during upsert (test)")
        super().upsert_columns(collection, columns)
        self.batches.append(list(columns.pks))

    def flush(self, collection: str) -> None:
        super().flush(collection)
        self.flushed.append(collection)


def make_settings(redis_url: str, milvus_uri: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "model": MODEL, "embedding_dimension": DIM, "writer_max_wait_s": 0.05,
        "writer_claim_idle_s": 0.2,
    }
    values.update(overrides)
    return load_settings(redis_url=redis_url, milvus_uri=milvus_uri,
                         collection_prefix=f"w{uuid.uuid4().hex[:10]}", **values)


def test_stream_backlog_holds_when_entries_leave_out_of_order(redis_client, cfg) -> None:
    ids = [i.decode() for i in push(redis_client, cfg, [make_segment(i) for i in range(3)])]
    writer, _, _ = writer_for(redis_client, cfg)
    writer.ensure_group()
    stream = f"{cfg.redis_prefix}:segments"
    redis_client.xreadgroup(GROUP, "x", {stream: ">"}, count=3)
    settle(redis_client, stream, ids[1:])  # the first stays pending
    assert stream_backlog(redis_client, cfg) == 1
    push(redis_client, cfg, [make_segment(i) for i in range(3, 5)])
    assert stream_backlog(redis_client, cfg) == 3


def make_segment(i: int, *, dim: int = DIM, item: str | None = None, **fields: object) -> Segment:
    item = item or f"{i // 4:032x}"
    values: dict[str, object] = {
        "pk": f"{i:032x}", "item_key": item, "job_id": "job1", "url": f"https://v.example/{item}",
        "category": "news", "title": f"t{i}", "metadata": "{}", "model": MODEL, "option": "visual",
        "scope": "clip", "start_s": float(i), "end_s": float(i + 1),
        "vector": pack_vector(np.random.default_rng(i).random(dim).tolist()),
    }
    values.update(fields)
    return Segment(**values)  # type: ignore[arg-type]


def push(client: redis.Redis[bytes], settings: Settings, segments: Sequence[Segment]) -> list[bytes]:
    stream = f"{settings.redis_prefix}:segments"
    return [client.xadd(stream, s.to_fields()) for s in segments]


def length(client: redis.Redis[bytes], settings: Settings) -> int:
    return int(client.xlen(f"{settings.redis_prefix}:segments"))


def pending(client: redis.Redis[bytes], settings: Settings) -> int:
    return int(client.xpending(f"{settings.redis_prefix}:segments", GROUP)["pending"])


@pytest.fixture
def cfg(redis_url: str, milvus_uri: str) -> Settings:
    return make_settings(redis_url, milvus_uri)


def writer_for(client, settings, store=None, ledger=None, consumer="w1"):
    store = store or RecordingStore(settings)
    ledger = ledger or Ledger()
    return SegmentWriter(client, store, ledger, settings, consumer), store, ledger


def store_collection(settings: Settings) -> str:
    return MilvusStore(settings).collection_for(MODEL, DIM)


def collection(store: MilvusStore) -> str:
    return store.ensure_collection(MODEL, DIM)


# --- assemble_batches ------------------------------------------------------------------------------

entry_strategy = st.lists(
    st.tuples(st.integers(0, 12), st.sampled_from(["m1", "m2"]), st.sampled_from([4, 8]),
              st.integers(0, 300)),
    max_size=60,
)


@hsettings(max_examples=300, deadline=None)
@given(entry_strategy, st.integers(1, 7), st.integers(200, 2000))
def test_assemble_batches_loses_nothing_dedupes_and_respects_bounds(
    raw: list[tuple[int, str, int, int]], max_rows: int, max_bytes: int
) -> None:
    entries = [
        (f"{n}-0", Segment(pk=f"p{pk}", item_key="i", job_id="j", url="u", category="c",
                           title=f"e{n}", metadata="x" * pad, model=model, option="o", scope="s",
                           start_s=0.0, end_s=1.0, vector=b"\0" * (4 * dim)))
        for n, (pk, model, dim, pad) in enumerate(raw)
    ]
    batches = assemble_batches(entries, max_rows, max_bytes)
    acked = [eid for b in batches for eid in b.ack_ids]
    assert sorted(acked) == sorted(eid for eid, _ in entries)  # every entry exactly once
    final: dict[tuple[str, int, str], str] = {}
    for batch in batches:
        pks = [s.pk for s in batch.segments]
        assert len(pks) == len(set(pks))
        assert 1 <= len(pks) <= max_rows
        assert batch.nbytes == sum(s.approx_bytes() for s in batch.segments)
        assert batch.nbytes <= max_bytes or len(pks) == 1
        assert {(s.model, s.dim) for s in batch.segments} == {(batch.model, batch.dimension)}
        for segment, ids in zip(batch.segments, batch.entry_ids, strict=True):
            assert f"e{ids[-1].split('-')[0]}" == segment.title  # kept segment is its last entry
            final[(batch.model, batch.dimension, segment.pk)] = segment.title
    last: dict[tuple[str, int, str], str] = {}
    for _, s in entries:
        last[(s.model, s.dim, s.pk)] = s.title
    assert final == last  # writing batches in order leaves the last segment of every pk


# --- drain -------------------------------------------------------------------------------------------

def test_drain_writes_the_stream_into_milvus_in_row_bounded_batches(redis_client, cfg) -> None:
    settings = cfg.model_copy(update={"writer_batch_rows": 8})
    push(redis_client, settings, [make_segment(i) for i in range(50)])
    writer, store, ledger = writer_for(redis_client, settings)
    stats = writer.drain(10)
    assert stats.error is None
    assert (stats.rows, stats.dead) == (50, 0)
    assert max(len(pks) for pks in store.batches) <= 8 and stats.batches >= 7
    assert store.count(collection(store)) == 50
    assert pending(redis_client, settings) == 0
    assert len(ledger.calls) == 50 and len(ledger.written) == 50
    assert stats.flushes >= 1 and store.flushed


def test_each_flush_that_made_rows_visible_bumps_the_collections_generation(
    redis_client, cfg
) -> None:
    key = f"{cfg.redis_prefix}:gen:{store_collection(cfg)}"
    before = int(redis_client.get(key) or 0)
    push(redis_client, cfg, [make_segment(i) for i in range(4)])
    writer = writer_for(redis_client, cfg)[0]
    stats = writer.drain(10)
    assert stats.flushes >= 1
    assert int(redis_client.get(key)) == before + stats.flushes
    assert writer.drain(1).flushes == 0 and int(redis_client.get(key)) == before + stats.flushes


def test_drain_bounds_batches_by_bytes(redis_client, redis_url, milvus_uri) -> None:
    settings = make_settings(redis_url, milvus_uri, writer_batch_bytes=2**16,
                             embedding_dimension=512)
    segments = [make_segment(i, dim=512) for i in range(120)]
    push(redis_client, settings, segments)
    writer, store, _ = writer_for(redis_client, settings)
    stats = writer.drain(10)
    assert stats.rows == 120
    size = {s.pk: s.approx_bytes() for s in segments}
    assert all(sum(size[pk] for pk in pks) <= 2**16 for pks in store.batches)
    assert len(store.batches) >= 2


def test_failed_upsert_is_not_acked_and_is_written_by_a_later_drain(redis_client, cfg) -> None:
    push(redis_client, cfg, [make_segment(i) for i in range(6)])
    store = RecordingStore(cfg, fail=1)
    writer, _, ledger = writer_for(redis_client, cfg, store=store)
    first = writer.drain(5)
    assert first.error and "unavailable" in first.error
    assert first.rows == 0 and ledger.calls == []
    assert pending(redis_client, cfg) == 6
    time.sleep(cfg.writer_claim_idle_s + 0.05)
    assert length(redis_client, cfg) == 6  # not written: still in the stream
    second = writer.drain(5)
    assert (second.rows, second.reclaimed, second.error) == (6, 6, None)
    assert pending(redis_client, cfg) == 0 and length(redis_client, cfg) == 0
    assert store.count(collection(store)) == 6


def test_dead_consumers_pending_entries_are_reclaimed(redis_client, cfg) -> None:
    push(redis_client, cfg, [make_segment(i) for i in range(5)])
    writer, _, ledger = writer_for(redis_client, cfg, consumer="alive")
    writer.ensure_group()
    stream = f"{cfg.redis_prefix}:segments"
    redis_client.xreadgroup(GROUP, "dead", {stream: ">"}, count=100)  # read, then "die"
    assert pending(redis_client, cfg) == 5
    time.sleep(cfg.writer_claim_idle_s + 0.05)
    stats = writer.drain(5)
    assert (stats.reclaimed, stats.rows) == (5, 5)
    assert pending(redis_client, cfg) == 0 and length(redis_client, cfg) == 0
    assert len(ledger.written) == 5


def test_wrong_dimension_is_dead_lettered_naming_both_while_the_rest_is_written(
    redis_client, cfg
) -> None:
    good = [make_segment(i) for i in range(9)]
    poison = make_segment(99, dim=16, item="f" * 32)
    push(redis_client, cfg, [*good[:4], poison, *good[4:]])
    writer, store, ledger = writer_for(redis_client, cfg)
    stats = writer.drain(5)
    assert (stats.rows, stats.dead) == (9, 1)
    dead = redis_client.xrange(f"{cfg.redis_prefix}:segments:dead")
    assert len(dead) == 1
    reason = dead[0][1][b"reason"].decode()
    assert "vector dimension 16" in reason and f"vector dimension {DIM}" in reason
    assert dead[0][1][b"pk"] == poison.pk.encode()
    assert dead[0][1][b"ik"] == b"f" * 32 and b"v" not in dead[0][1] and b"u" not in dead[0][1]
    assert ledger.dead == [("f" * 32, reason)]
    assert store.count(collection(store)) == 9
    assert pending(redis_client, cfg) == 0


def test_malformed_entry_is_dead_lettered_with_reason(redis_client, cfg) -> None:
    push(redis_client, cfg, [make_segment(1)])
    redis_client.xadd(f"{cfg.redis_prefix}:segments", {b"ik": b"e" * 32, b"pk": b"x"})
    writer, _, ledger = writer_for(redis_client, cfg)
    stats = writer.drain(5)
    assert (stats.rows, stats.dead) == (1, 1)
    assert ledger.dead[0][0] == "e" * 32 and "malformed" in ledger.dead[0][1]
    assert pending(redis_client, cfg) == 0


def test_entry_delivered_too_often_is_dead_lettered(redis_client, redis_url, milvus_uri) -> None:
    settings = make_settings(redis_url, milvus_uri, writer_max_deliveries=1)
    push(redis_client, settings, [make_segment(1)])
    writer, _, ledger = writer_for(redis_client, settings)
    writer.ensure_group()
    redis_client.xreadgroup(GROUP, "crashed", {f"{settings.redis_prefix}:segments": ">"})
    time.sleep(settings.writer_claim_idle_s + 0.05)
    stats = writer.drain(5)
    assert (stats.dead, stats.rows) == (1, 0)
    assert "delivered 2 times (limit 1)" in ledger.dead[0][1]
    assert pending(redis_client, settings) == 0


def test_duplicate_pks_in_one_drain_write_one_row_and_ack_every_entry(redis_client, cfg) -> None:
    push(redis_client, cfg, [make_segment(1, title="old"), make_segment(2),
                             make_segment(1, title="new")])
    writer, store, ledger = writer_for(redis_client, cfg)
    stats = writer.drain(5)
    assert stats.rows == 2
    assert Counter(ledger.calls) == Counter({(s.item_key, s.pk): 1
                                             for s in [make_segment(1), make_segment(2)]})
    assert store.count(collection(store)) == 2
    assert store.count(collection(store), 'title == "new"') == 1
    assert pending(redis_client, cfg) == 0


def test_replayed_accepted_write_reaches_the_ledger_once_and_milvus_once(redis_client, cfg) -> None:
    segments = [make_segment(i) for i in range(4)]
    push(redis_client, cfg, segments)
    store = RecordingStore(cfg, fail=1, accept=True)  # Milvus took it, but the ack was lost
    writer, _, ledger = writer_for(redis_client, cfg, store=store)
    assert writer.drain(5).error
    time.sleep(cfg.writer_claim_idle_s + 0.05)
    push(redis_client, cfg, segments[:2])  # and a poller replayed two segments
    writer.drain(5)
    assert store.count(collection(store)) == 4
    assert ledger.written == {(s.item_key, s.pk) for s in segments}
    assert Counter(ledger.calls)[(segments[3].item_key, segments[3].pk)] == 1
    assert pending(redis_client, cfg) == 0


def test_written_entries_leave_the_stream_once_acknowledged(redis_client, cfg) -> None:
    push(redis_client, cfg, [make_segment(i) for i in range(30)])
    writer, store, _ = writer_for(redis_client, cfg)
    stats = writer.drain(5)
    assert stats.rows == 30 and store.count(collection(store)) == 30
    assert length(redis_client, cfg) == 0 and pending(redis_client, cfg) == 0


def test_trim_removes_only_acknowledged_entries_an_older_writer_left(redis_client, cfg) -> None:
    ids = push(redis_client, cfg, [make_segment(i) for i in range(10)])
    writer, _, _ = writer_for(redis_client, cfg)
    writer.ensure_group()
    stream = f"{cfg.redis_prefix}:segments"
    redis_client.xreadgroup(GROUP, "old", {stream: ">"}, count=6)
    redis_client.xack(stream, GROUP, *ids[:2], ids[3])  # acked without deleting, as before
    assert trim_settled(redis_client, stream) == 2  # ids[3] is above the oldest pending, ids[2]
    assert length(redis_client, cfg) == 8
    redis_client.xack(stream, GROUP, *ids[2:6])
    assert trim_settled(redis_client, stream) == 4  # up to the last delivered; 4 never delivered
    assert [e for e, _ in redis_client.xrange(stream)] == ids[6:]
    assert stream_backlog(redis_client, cfg) == 4
    assert writer.drain(5).rows == 4 and length(redis_client, cfg) == 0


def test_a_drain_removes_acknowledged_entries_left_by_an_older_writer(redis_client, cfg) -> None:
    ids = push(redis_client, cfg, [make_segment(i) for i in range(5)])
    writer, _, _ = writer_for(redis_client, cfg)
    writer.ensure_group()
    stream = f"{cfg.redis_prefix}:segments"
    redis_client.xreadgroup(GROUP, "old", {stream: ">"}, count=5)
    redis_client.xack(stream, GROUP, *ids)
    assert writer.drain(1).trimmed == 5 and length(redis_client, cfg) == 0


def test_dead_letters_beyond_the_cap_are_dropped_and_counted(redis_url, redis_client, milvus_uri) -> None:
    settings = make_settings(redis_url, milvus_uri, dead_letter_max_entries=2)
    stream = f"{settings.redis_prefix}:segments"
    for i in range(5):
        redis_client.xadd(stream, {b"ik": f"{i:032x}".encode(), b"pk": b"x", b"v": b"\0" * 64})
    writer, _, ledger = writer_for(redis_client, settings)
    stats = writer.drain(5)
    assert stats.dead == 5 and len(ledger.dead) == 5
    dead = redis_client.xrange(f"{settings.redis_prefix}:segments:dead")
    assert [d[1][b"ik"] for d in dead] == [f"{i:032x}".encode() for i in (3, 4)]
    assert all(b"v" not in d[1] for d in dead)
    assert dead_letters_dropped(redis_client, settings.redis_prefix) == 3
    assert length(redis_client, settings) == 0


def test_stream_backlog_counts_undelivered_and_pending(redis_client, cfg) -> None:
    assert stream_backlog(redis_client, cfg) == 0
    push(redis_client, cfg, [make_segment(i) for i in range(3)])
    assert stream_backlog(redis_client, cfg) == 3
    writer, _, _ = writer_for(redis_client, cfg)
    writer.ensure_group()
    redis_client.xreadgroup(GROUP, "x", {f"{cfg.redis_prefix}:segments": ">"}, count=1)
    assert stream_backlog(redis_client, cfg) == 3
    time.sleep(cfg.writer_claim_idle_s + 0.05)
    writer.drain(60)  # ends when the stream is empty; a server creates its collection slowly
    assert stream_backlog(redis_client, cfg) == 0
