"""A writer that SIGKILLs itself between the archive append and the entries' deletion (drills 4, 4b, 4c).

``python -m tests.drills.crashing_writer after-archive|after-upsert|after-ledger|after-ack``: the
production SegmentWriter, its EmbeddingArchive, MilvusStore and JobStore, except that the process
kills itself right after the archive append returned (the Milvus upsert, which runs at the same
time, is held back until then: Milvus does not have the batch), right after the upsert returned
(the archive append is held back: the archive does not have it; the ledger and the XACK+XDEL are
not done), right after the ledger recorded the rows
(before the XACK+XDEL), or after acknowledging the batch without deleting it (the production
writer does both in one transaction; a writer of an older version acknowledged only, so this is
the state such a writer leaves behind). Test code only: nothing in the pipeline knows about it.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Sequence

import redis

from pipeline.archive.store import EmbeddingArchive
from pipeline.ingest.stream import GROUP
from pipeline.ingest.writer import SegmentWriter
from pipeline.ledger.store import JobStore
from pipeline.milvus.columns import Columns
from pipeline.milvus.store import MilvusStore
from pipeline.settings import load_settings
from pipeline.state.keys import Keys

HOLD_S = 60.0
"""How long the other write of the batch is held back (the kill comes well before, even on a loaded
machine; the process dies with it)."""


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class SlowArchive(EmbeddingArchive):
    def append(self, collection: str, model: str, dimension: int, columns: Columns) -> None:
        time.sleep(HOLD_S)
        super().append(collection, model, dimension, columns)


class SlowUpsert(MilvusStore):
    def upsert_columns(self, collection: str, columns: Columns) -> None:
        time.sleep(HOLD_S)
        super().upsert_columns(collection, columns)


class CrashAfterArchive(EmbeddingArchive):
    def append(self, collection: str, model: str, dimension: int, columns: Columns) -> None:
        super().append(collection, model, dimension, columns)
        _die()


class CrashAfterUpsert(MilvusStore):
    def upsert_columns(self, collection: str, columns: Columns) -> None:
        super().upsert_columns(collection, columns)
        _die()


class CrashAfterLedger(JobStore):
    def record_written(self, pairs: Sequence[tuple[str, str]]) -> None:
        super().record_written(pairs)
        _die()


class CrashAfterAck(SegmentWriter):
    def _settle(self, ids: Sequence[str]) -> None:
        self._redis.xack(self.stream, GROUP, *ids)  # type: ignore[no-untyped-call]
        _die()


def main(mode: str) -> int:
    settings = load_settings()
    client = redis.Redis.from_url(settings.redis_url)
    keys = Keys(settings.redis_prefix)
    stores = {"after-upsert": CrashAfterUpsert, "after-archive": SlowUpsert}
    store = stores.get(mode, MilvusStore)(settings)
    ledger = CrashAfterLedger(client, keys) if mode == "after-ledger" else JobStore(client, keys)
    kind = CrashAfterAck if mode == "after-ack" else SegmentWriter
    archives = {"after-archive": CrashAfterArchive, "after-upsert": SlowArchive}
    archive = archives.get(mode, EmbeddingArchive).from_settings(settings)
    writer = kind(client, store, ledger, settings, consumer="crasher", archive=archive)
    stats = writer.drain(60)
    print(f"drained without crashing: {stats}", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
