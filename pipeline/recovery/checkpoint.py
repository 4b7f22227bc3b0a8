"""A restore's progress, so that a restore killed half-way resumes where it was.

One JSON value per collection in Redis (``{prefix}:restore:{collection}``), written after every
batch Milvus accepted: the collection's identity when the restore began (a collection dropped or
lost since makes the checkpoint void), the archive's fingerprint (rows and files: an archive
appended to or compacted since makes it void), the method, and how many archive batches (upserts)
or import files (bulk import) are done. Re-doing a batch is harmless: upserts replace rows by
primary key, and an import file is never imported twice (the server's import tasks are asked
first, see ``restore.py``). A finished restore deletes its checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import redis

from pipeline.state.keys import Keys

if TYPE_CHECKING:
    Redis = redis.Redis[bytes]
else:
    Redis = redis.Redis


@dataclass(slots=True)
class Checkpoint:
    """Where a restore of one collection stands."""

    identity: str
    source: str
    method: str
    done: int = 0
    """Batches (upserts) or files (bulk import) Milvus has, counted from the archive's start."""
    rows: int = 0
    """Rows those batches or files held."""


class Checkpoints:
    """Load, save and clear restore checkpoints in Redis."""

    def __init__(self, client: Redis, keys: Keys) -> None:
        self.r = client
        self.keys = keys

    def load(self, collection: str) -> Checkpoint | None:
        raw = self.r.get(self.keys.restore(collection))
        if raw is None:
            return None
        try:
            return Checkpoint(**json.loads(raw))
        except (ValueError, TypeError):
            return None  # written by another version: start again (restoring twice is harmless)

    def save(self, collection: str, checkpoint: Checkpoint) -> None:
        self.r.set(self.keys.restore(collection), json.dumps(asdict(checkpoint)))

    def clear(self, collection: str) -> None:
        self.r.delete(self.keys.restore(collection))

    def resume(self, collection: str, identity: str, source: str) -> Checkpoint | None:
        """The checkpoint of an interrupted restore of this very collection and archive state."""
        found = self.load(collection)
        if found is None or found.identity != identity or found.source != source:
            return None
        return found
