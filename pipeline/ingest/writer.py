"""Segments stream -> batches -> archive append and Milvus upsert -> ledger -> ack; reclaim; dead letters.

Segments wait in the Redis stream ``{prefix}:segments`` (consumer group ``writers``). A drain reads
them with XREADGROUP, groups them into batches (one model, dimension and target collection per
batch, duplicates of a primary key removed with the last occurrence kept, bounded by rows and
bytes), upserts each batch into Milvus while a helper thread appends the same columns to the
embedding archive (``pipeline/archive``, when one is configured), waits for both, records the
written ``(item_key, pk)`` pairs in the ledger and only then acknowledges and deletes the entries in
one transaction (``stream.settle``): an entry leaves the stream only after the archive and Milvus
both have it, and then it leaves Redis. The two writes overlap (neither waits for the other; a crash
may leave either one without the batch, and the replay writes it again: docs/archive.md says why
this is safe and what it saves).
Every drain ends by trimming what an earlier writer acknowledged without deleting
(``stream.trim_settled``).

Failures:

* Milvus unavailable (``StoreUnavailableError``, or any ``StoreError`` that is not a rejection):
  nothing of that batch is acked; the drain stops at once and reports it in ``DrainStats.error``.
  There is no in-place retry (pymilvus already retries inside each call's time budget, see
  ``store.CALL_TIMEOUT_S``): the entries stay pending and a later drain (of any writer) reclaims
  them with XAUTOCLAIM once they have been idle ``writer_claim_idle_s``. A drain first checks that
  Milvus answers before it claims anything, so an outage does not inflate delivery counts.
* The archive unavailable or refusing (``ArchiveError``): handled like Milvus unavailable. A drain
  checks that the archive answers before it claims anything; a failed append stops the drain with
  ``DrainStats.error`` and nothing of the batch is acked (Milvus may have it: the replay upserts it
  again, which changes nothing). A batch archived but not written to Milvus is archived again on
  its replay: the archive's readers keep one copy per primary key.
* A segment that can never be written (wrong vector dimension, malformed entry or metadata,
  over-long field) is dead-lettered: ``ledger.record_dead``, then one script adds its ids and
  ``reason`` to ``{prefix}:segments:dead`` (capped at ``dead_letter_max_entries``; what the cap
  pushes out is counted and logged) and acknowledges and deletes the entry
  (``stream.dead_letter``). Segments are checked against their collection before the upsert, so
  the rest of the batch is still written.
* Milvus rejects a batch for another reason (``StoreRejectedError``): the batch is split in halves
  until the rejected rows are isolated; a single row rejected while its neighbours were accepted
  is dead-lettered with Milvus's message.
* An entry delivered more than ``writer_max_deliveries`` times (it keeps killing writers) is
  dead-lettered when reclaimed.

A batch is written column-wise (``pipeline.milvus.columns``): one list per field and the vectors straight
from the packed float32 bytes into the request, with no row dicts and no per-float Python work.
While a batch is upserted, the next one is read from Redis on a helper thread (the read overlaps
the Milvus round trip). When the drain stops on a failure, entries read ahead stay pending and are
reclaimed like the failed batch.

A segment of a model version's job names its collection (``Segment.collection``, created with
the version by ``vidsearch reembed``); without one the collection is ``store.collection_for`` its
model and dimension, as before versions existed.

Batches of one model and dimension are written in stream order, so when a primary key spans two
batches the later segment still wins. Written collections are flushed every
``writer_flush_interval_s`` and once at the end of every drain that wrote rows (search over
unflushed rows is ~40x slower). Each successful flush bumps the collection's generation
(``pipeline/state/generation.py``), which retires every cached search result of that collection.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import redis

if TYPE_CHECKING:
    from pipeline.archive.store import EmbeddingArchive

    Redis = redis.Redis[bytes]
else:
    Redis = redis.Redis

from pipeline.errors import ArchiveError, SchemaMismatchError, StoreError, StoreRejectedError
from pipeline.ingest.stream import GROUP, dead_letter, dead_record, settle, trim_settled
from pipeline.logs import get_logger
from pipeline.metrics.recorder import MetricsRecorder
from pipeline.milvus.columns import Columns
from pipeline.milvus.store import MilvusStore
from pipeline.segments import Segment
from pipeline.settings import Settings
from pipeline.state.generation import bump_generation
from pipeline.state.keys import Keys

log = get_logger("vidsearch.writer")

MODEL_DEFAULT_DIMENSION = 512
"""Dimension of a model other than ``settings.model`` (every Marengo 3.x defaults to 512)."""

Fields = dict[Any, Any]
ITEM_KEY_FIELD = b"ik"
"""The stream field holding the item key (``Segment.to_fields``)."""


class WriteLedger(Protocol):
    """Where the writer reports outcomes (``pipeline.ledger.store.JobStore`` in production)."""

    def record_written(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Rows Milvus accepted, as ``(item_key, pk)``; must be idempotent (replays happen)."""

    def record_dead(self, item_key: str, reason: str) -> None:
        """A segment of ``item_key`` was dead-lettered for ``reason``."""


@dataclass(frozen=True, slots=True)
class Batch:
    """Segments of one model and dimension, one per primary key, and the entries they settle.

    ``entry_ids[i]`` are the stream entries whose segment collapsed into ``segments[i]``
    (several when a primary key was repeated; the last one's segment is kept).
    """

    model: str
    dimension: int
    segments: tuple[Segment, ...]
    entry_ids: tuple[tuple[str, ...], ...]
    nbytes: int
    collection: str = ""
    """The model version's collection its segments name (empty: the model's default)."""

    @property
    def ack_ids(self) -> list[str]:
        return [entry for group in self.entry_ids for entry in group]

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [(s.item_key, s.pk) for s in self.segments]


@dataclass(slots=True)
class DrainStats:
    """What one drain did."""

    rows: int = 0
    batches: int = 0
    dead: int = 0
    reclaimed: int = 0
    flushes: int = 0
    trimmed: int = 0
    """Entries acknowledged earlier but still in the stream, removed at the drain's end."""
    seconds: float = 0.0
    error: str | None = None


@dataclass
class _Open:
    segments: dict[str, Segment] = field(default_factory=dict)
    entries: dict[str, list[str]] = field(default_factory=dict)
    nbytes: int = 0

    def close(self, model: str, dimension: int, collection: str) -> Batch:
        order = list(self.segments)
        return Batch(
            model=model,
            dimension=dimension,
            segments=tuple(self.segments[pk] for pk in order),
            entry_ids=tuple(tuple(self.entries[pk]) for pk in order),
            nbytes=self.nbytes,
            collection=collection,
        )


def assemble_batches(
    entries: Sequence[tuple[str, Segment]], max_rows: int, max_bytes: int
) -> list[Batch]:
    """Group entries into batches: one (model, dimension, target collection) each, unique pks
    (last wins), bounded.

    Every entry id lands in exactly one batch. A batch holds at most ``max_rows`` segments and at
    most ``max_bytes`` (by ``Segment.approx_bytes``) unless one segment alone exceeds it. Batches
    of one group keep stream order, so writing them in list order keeps last-wins across batches.
    """
    groups: dict[tuple[str, int, str], list[_Open]] = {}
    for entry_id, segment in entries:
        group = (segment.model, segment.dim, segment.collection)
        _add(groups.setdefault(group, [_Open()]), entry_id, segment, max_rows, max_bytes)
    return [
        batch.close(model, dimension, collection)
        for (model, dimension, collection), batches in groups.items()
        for batch in batches
        if batch.segments
    ]


def _add(
    opened: list[_Open], entry_id: str, segment: Segment, max_rows: int, max_bytes: int
) -> None:
    current, pk = opened[-1], segment.pk
    size = segment.approx_bytes()
    ids = [entry_id]
    previous = current.segments.pop(pk, None)
    if previous is not None:  # last wins: the earlier entries are settled by this segment
        ids = current.entries.pop(pk) + ids
        current.nbytes -= previous.approx_bytes()
    full = len(current.segments) >= max_rows or current.nbytes + size > max_bytes
    if current.segments and full:
        if previous is not None:  # it does not fit: keep the earlier one here, this one next
            current.segments[pk], current.entries[pk] = previous, ids[:-1]
            current.nbytes += previous.approx_bytes()
            ids = [entry_id]
        current = _Open()
        opened.append(current)
    current.segments[pk] = segment
    current.entries[pk] = ids
    current.nbytes += size


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SegmentWriter:
    """One consumer of the ``writers`` group (name it per process, e.g. host-pid).

    ``archive``: the embedding archive every batch is appended to, on a helper thread while the
    batch is upserted (``Clients.archive``); ``None`` writes to Milvus only.
    """

    def __init__(
        self,
        redis_client: Redis,
        store: MilvusStore,
        ledger: WriteLedger,
        settings: Settings,
        consumer: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        archive: EmbeddingArchive | None = None,
    ) -> None:
        self._redis = redis_client
        self._store = store
        self._archive = archive
        self._archiving = ThreadPoolExecutor(max_workers=1, thread_name_prefix="writer-archive")
        self._appending: Future[None] | None = None  # the archive append in flight
        self._ledger = ledger
        self._settings = settings
        self._consumer = consumer
        self._clock = clock
        self._metrics = MetricsRecorder(redis_client, settings.redis_prefix)
        keys = self._keys = Keys(settings.redis_prefix)
        self.stream = keys.segments
        self.dead_stream = keys.dead
        self._claim_cursor = "0-0"
        self._unflushed: dict[str, float] = {}  # collection -> time of its first unflushed write

    # --- stream plumbing ----------------------------------------------------------------------
    def ensure_group(self) -> None:
        """Create the consumer group (and the stream) if missing."""
        try:
            self._redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _read(self, count: int, block_ms: int) -> list[tuple[str, Fields]]:
        response = self._redis.xreadgroup(
            GROUP, self._consumer, {self.stream: ">"}, count=count, block=max(block_ms, 1)
        )
        return [(_text(eid), fields) for _, rows in response or [] for eid, fields in rows]

    def _collect(self, deadline: float) -> list[tuple[str, Fields]]:
        """Read up to a full batch, blocking only while it is not full and the wait allows."""
        settings = self._settings
        until = min(self._clock() + settings.writer_max_wait_s, deadline)
        entries: list[tuple[str, Fields]] = []
        nbytes = 0
        while len(entries) < settings.writer_batch_rows and nbytes < settings.writer_batch_bytes:
            remaining_ms = int((until - self._clock()) * 1000)
            if remaining_ms <= 0 and entries:
                break
            got = self._read(settings.writer_batch_rows - len(entries), remaining_ms)
            entries += got
            nbytes += sum(len(v) for _, f in got for v in f.values())
            if not got and remaining_ms <= 0:
                break
        return entries

    def _reclaim(self, stats: DrainStats) -> list[tuple[str, Fields]]:
        """XAUTOCLAIM entries idle past the claim time; dead-letter the over-delivered ones.

        Pages through the pending list until it finds live entries or the cursor wraps to 0-0.
        """
        while True:
            entries = self._claim_page()
            stats.reclaimed += len(entries)
            keep = self._within_delivery_limit(entries, stats)
            if keep or self._claim_cursor == "0-0":
                return keep

    def _claim_page(self) -> list[tuple[str, Fields]]:
        idle_ms = int(self._settings.writer_claim_idle_s * 1000)
        result = self._redis.xautoclaim(
            self.stream, GROUP, self._consumer, idle_ms,
            start_id=self._claim_cursor, count=self._settings.writer_batch_rows,
        )
        self._claim_cursor = _text(result[0])
        return [(_text(eid), fields) for eid, fields in result[1] if fields]

    def _within_delivery_limit(
        self, entries: list[tuple[str, Fields]], stats: DrainStats
    ) -> list[tuple[str, Fields]]:
        deliveries = self._deliveries([eid for eid, _ in entries])
        limit = self._settings.writer_max_deliveries
        keep: list[tuple[str, Fields]] = []
        for eid, fields in entries:
            count = deliveries.get(eid, 1)
            if count > limit:
                self._dead_letter(eid, fields, f"delivered {count} times (limit {limit})", stats)
            else:
                keep.append((eid, fields))
        return keep

    def _deliveries(self, ids: Sequence[str]) -> dict[str, int]:
        """Delivery count of each pending entry (one XPENDING per id, pipelined)."""
        if not ids:
            return {}
        pipe = self._redis.pipeline(transaction=False)
        for eid in ids:
            pipe.xpending_range(self.stream, GROUP, min=eid, max=eid, count=1)
        counts: dict[str, int] = {}
        for rows in pipe.execute():
            for row in rows:
                counts[_text(row["message_id"])] = int(row["times_delivered"])
        return counts

    def _settle(self, ids: Sequence[str]) -> None:
        """Acknowledge and delete (one transaction): the entries leave Redis."""
        settle(self._redis, self.stream, ids)

    def _dead_letter(self, entry_id: str, fields: Fields, reason: str, stats: DrainStats) -> None:
        """Tell the ledger, then add the dead letter and settle the entry (one script)."""
        item_key = fields.get(ITEM_KEY_FIELD)
        if item_key is not None:
            self._ledger.record_dead(_text(item_key), reason)
        cap = self._settings.dead_letter_max_entries
        dropped = dead_letter(self._redis, self._keys, entry_id, dead_record(fields, entry_id, reason), cap)
        if dropped:
            log.warning("dead_letters_dropped", dropped=dropped, cap=cap, stream=self.dead_stream,
                        setting="dead_letter_max_entries")
        stats.dead += 1

    # --- drain ------------------------------------------------------------------------------------
    def drain(self, max_seconds: float | None = None) -> DrainStats:
        """Write what the stream holds for up to ``max_seconds`` (default ``writer_drain_s``).

        Stops early when the stream stays empty for ``writer_max_wait_s`` or when Milvus fails
        transiently or the archive fails (``DrainStats.error``; the entries stay pending for a later
        reclaim).
        ``SchemaMismatchError`` propagates: an operator must fix the collection or the settings.
        """
        start = self._clock()
        budget = max_seconds if max_seconds is not None else self._settings.writer_drain_s
        deadline = start + budget
        stats = DrainStats()
        self.ensure_group()
        try:
            self._store.ping()
            if self._archive is not None:
                self._archive.ping()
            self._loop(deadline, stats)
        except SchemaMismatchError:
            raise
        except (StoreError, ArchiveError) as exc:  # unreachable, or a refusal outside an upsert
            stats.error = str(exc)  # stop, ack nothing
        if self._appending is not None:  # a drain leaves no append behind (its outcome is moot)
            wait([self._appending])
            self._appending = None
        self._flush(force=True, stats=stats)
        stats.trimmed = trim_settled(self._redis, self.stream)
        stats.seconds = self._clock() - start
        return stats

    def _loop(self, deadline: float, stats: DrainStats) -> None:
        """Reclaim when due, else read; the next read overlaps the current batch's upsert."""
        claim_every = max(self._settings.writer_claim_idle_s / 2, 1.0)
        next_claim = self._clock()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="writer-read") as pool:
            ahead: Future[list[tuple[str, Fields]]] | None = None
            while self._clock() < deadline:
                entries: list[tuple[str, Fields]] = []
                if ahead is None and self._clock() >= next_claim:
                    entries = self._reclaim(stats)
                    if self._claim_cursor == "0-0":
                        next_claim = self._clock() + claim_every
                if not entries:
                    entries = ahead.result() if ahead else self._collect(deadline)
                    ahead = None
                if not entries:
                    return
                if len(entries) >= self._settings.writer_batch_rows:  # more may be waiting
                    ahead = pool.submit(self._collect, deadline)
                self._process(entries, stats)
                self._flush(force=False, stats=stats)

    def _process(self, entries: Sequence[tuple[str, Fields]], stats: DrainStats) -> None:
        parsed: list[tuple[str, Segment]] = []
        by_id: dict[str, Fields] = {}
        for entry_id, fields in entries:
            by_id[entry_id] = fields
            try:
                parsed.append((entry_id, Segment.from_fields(fields)))
            except (KeyError, ValueError, TypeError) as exc:
                self._dead_letter(entry_id, fields, f"malformed segment entry: {exc!r}", stats)
        rows, nbytes = self._settings.writer_batch_rows, self._settings.writer_batch_bytes
        for batch in assemble_batches(parsed, rows, nbytes):
            self._write_batch(batch, by_id, stats)

    def target_dimension(self, model: str) -> int:
        """The collection dimension segments of ``model`` must have."""
        if model == self._settings.model:
            return self._settings.dimension
        return MODEL_DEFAULT_DIMENSION

    def _write_batch(self, batch: Batch, by_id: dict[str, Fields], stats: DrainStats) -> None:
        """Dead-letter the segments that can never fit; archive and upsert the rest at once (columns
        built once). An ``ArchiveError`` propagates: the drain stops with nothing of the batch acked."""
        if batch.collection:  # a model version's collection, created with its version
            collection = self._store.use_collection(batch.collection)
        else:
            collection = self._store.ensure_collection(batch.model, self.target_dimension(batch.model))
        kept, columns, rejects = self._store.prepare(collection, batch.segments)
        for i, reason in rejects:
            for entry_id in batch.entry_ids[i]:
                self._dead_letter(entry_id, by_id[entry_id], reason, stats)
        if kept:
            archived = self._archive_async(collection, batch.model, columns)
            self._upsert(collection, batch, (kept, columns), by_id, stats, archived=archived)
            stats.batches += 1

    def _archive_async(self, collection: str, model: str, columns: Columns) -> Future[None] | None:
        """Start appending ``columns`` to the archive (at most one append in flight per writer)."""
        if self._archive is None:
            return None
        dimension = int(columns.vectors.shape[1])
        self._appending = self._archiving.submit(self._archive.append, collection, model, dimension, columns)
        return self._appending

    def _upsert(
        self, collection: str, batch: Batch, part: tuple[list[int], Columns],
        by_id: dict[str, Fields], stats: DrainStats, *, archived: Future[None] | None = None,
    ) -> None:
        """Upsert, wait for the archive append, then ledger, then ack; split on a rejection to
        isolate the rejected rows.

        ``part`` is ``(kept, columns)``: row ``j`` of ``columns`` is ``batch.segments[kept[j]]``;
        ``archived`` is the batch's archive append (its ``ArchiveError`` propagates from here).
        """
        kept, columns = part
        started = time.perf_counter()
        try:
            self._store.upsert_columns(collection, columns)
        except StoreRejectedError as exc:
            if len(kept) == 1:
                for entry_id in batch.entry_ids[kept[0]]:
                    self._dead_letter(entry_id, by_id[entry_id], str(exc), stats)
                return
            half, n = len(kept) // 2, len(kept)
            for rows in ((kept[:half], columns.slice(0, half)), (kept[half:], columns.slice(half, n))):
                self._upsert(collection, batch, rows, by_id, stats, archived=archived)
            return
        if archived is not None:
            archived.result()  # the archive has the batch too, or ArchiveError: nothing is acked
        self._metrics.writer_batch(len(kept), time.perf_counter() - started)
        self._unflushed.setdefault(collection, self._clock())
        segments = [batch.segments[i] for i in kept]
        self._ledger.record_written([(s.item_key, s.pk) for s in segments])
        self._settle([e for i in kept for e in batch.entry_ids[i]])
        stats.rows += len(segments)

    def _flush(self, *, force: bool, stats: DrainStats) -> None:
        interval = self._settings.writer_flush_interval_s
        now = self._clock()
        for collection, since in list(self._unflushed.items()):
            if not force and now - since < interval:
                continue
            try:
                self._store.flush(collection)
            except StoreError as exc:
                stats.error = stats.error or f"flush failed: {exc}"
                continue
            del self._unflushed[collection]
            stats.flushes += 1
            bump_generation(self._redis, self._keys, collection)

