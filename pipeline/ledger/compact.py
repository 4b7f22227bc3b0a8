"""Compact a ledger written before done records were compact: ``vidsearch ledger compact``.

Before, every done item kept its own hash (about 320 bytes: URL, title, metadata, task id,
timestamps, counters) and every job indexed its items as a list of 32-hex keys. Now a done item
is one field of a shared hash (``records.py``, ``scripts/done.lua``) and a job's index packs 16
bytes a key (``Keys.item_index``). The new code reads both forms, so nothing breaks before this
runs; running it frees the memory: each done item's hash becomes its compact record
(``scripts/compact.lua``) and each job's hex list moves into its packed index, a chunk at a time
(``scripts/compact_index.lua``). Failed and active items keep their hashes (a retry needs their
URL). Safe to run while workers run, and to run again (a second run finds nothing to move).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from pipeline.ledger.store import JobStore

BATCH = 500
"""Item keys per run of the compaction script, and index keys moved per step."""


@dataclass(frozen=True, slots=True)
class CompactReport:
    """What a compaction moved."""

    items: int
    jobs: int
    bytes_before: int
    bytes_after: int

    def to_dict(self) -> dict[str, int]:
        return {"done_items_compacted": self.items, "job_indexes_packed": self.jobs,
                "used_memory_before": self.bytes_before, "used_memory_after": self.bytes_after}


def compact_ledger(jobs: JobStore) -> CompactReport:
    """Move every done item's hash to its compact record and pack every job's index."""
    before = _used(jobs.r)
    items = _compact_items(jobs)
    packed = sum(_pack_index(jobs, raw.decode()) for raw in jobs.r.zrange(jobs.keys.jobs, 0, -1))
    return CompactReport(items, packed, before, _used(jobs.r))


def _compact_items(jobs: JobStore) -> int:
    head = jobs.keys.item("")
    moved, batch = 0, []
    for raw in jobs.r.scan_iter(match=f"{head}*", count=1000):
        key = raw.decode()[len(head):]
        if ":" in key:  # an item's written-pk set
            continue
        batch.append(key)
        if len(batch) >= BATCH:
            moved += int(jobs.scripts["compact"](args=[jobs.keys.prefix, *batch]))
            batch = []
    if batch:
        moved += int(jobs.scripts["compact"](args=[jobs.keys.prefix, *batch]))
    return moved


def _pack_index(jobs: JobStore, job_id: str) -> int:
    """1 when the job had a hex list (now moved into its packed index), else 0."""
    if not jobs.r.exists(jobs.keys.items(job_id)):
        return 0
    while int(jobs.scripts["compact_index"](args=[jobs.keys.prefix, job_id, BATCH])):
        pass
    return 1


def _used(client: redis.Redis[bytes]) -> int:
    return int(client.info("memory")["used_memory"])
