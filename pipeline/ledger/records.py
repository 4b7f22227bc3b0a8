"""The ledger's records: a job and its status, an item, and the one parser of each Redis hash.

A job's hash (``{prefix}:job:{id}``) holds ``id``, ``created_at``, ``name``, ``manifests`` (JSON),
``spec`` (JSON), ``sealed`` (0/1), optionally ``collection``, the ``COUNTERS`` (``held``: items
waiting aside because the job reached its budget), and, once it has spent any, ``minutes`` (media
minutes charged: estimates for tasks in flight, actual ones for finished tasks) and
``max_minutes`` (its budget; absent or 0: none) (``pipeline/ingest/minutes.py``).

An item's hash (``{prefix}:item:{key}``) holds, by field:

======= ===============================================================================
``s``   state: ``waiting``, ``creating``, ``processing``, ``writing``, ``done``, ``failed``
``j``   the job that owns the item (the last one that queued it)
``sj``  the last job that saw the item without queueing it (its repeats are duplicates)
``cat`` ``url`` ``title`` ``meta``: the manifest line's category, URL, title, metadata (JSON)
``tl``  the Twelve Labs task id
``sub`` when the task was created (epoch seconds); ``polls``: status checks so far
``ca``  when a create was last sent with its outcome not yet recorded
``att`` creates sent; ``rd``: redrive rounds after transient create errors
``em``  media minutes charged for it: the estimate at admission, the actual once its task is ready
``why`` the reason of a failure; ``ft``: 1 when it was transient (retries ran out)
``exp`` segments the task produced; ``w``: segments Milvus accepted (``:w`` holds their pks)
======= ===============================================================================

The per-attempt fields (``tl`` ... ``rd``, ``why``, ``ft``, ``exp``, ``w``) are cleared whenever
the item is queued again (``scripts/queue.lua``). Every reader of an item goes through
``ITEM_FIELDS`` and ``Item.from_fields``, or ``Item.from_done`` for a done item.

A done item has no hash of its own: it keeps what its promises need and no more, as one field of a
shared hash (``Keys.done``, ``scripts/done.lua``): its job (a duplicate check and verify), its
expected segments and category (verify), and the last job that skipped it (duplicates). Being
there at all skips re-payment. Its URL, title and metadata are in its Milvus rows (a re-embed reads
them there); its task id, timestamps and counters are dropped. About 60 bytes in Redis, where its
hash took about 320.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.spec import EmbeddingSpec

ACTIVE_STATES = ("waiting", "creating", "processing", "writing")
COUNTERS = (
    "lines", "accepted", "rejected", "duplicates", "skipped", "in_progress",
    "previously_failed", "queued", "done", "failed", "failed_elsewhere", "segments", "held",
)
JOB_STATUSES = ("running", "done", "done with failures", "failed", "stopped at budget")
ITEM_FIELDS = ("s", "j", "url", "cat", "title", "meta", "tl", "att", "why", "sub", "polls", "ca",
               "exp")
"""The item fields a record holds, in the order ``Item.from_fields`` reads them (an HMGET)."""
DONE_SEP = "\x1f"
"""Separates the parts of a done record: job, expected segments, category, last skipping job."""


def job_finished(sealed: bool, counters: Mapping[str, int], open_elsewhere: int = 0) -> bool:
    """Sealed, every queued item settled (or held at the job's budget), and nothing it waits for
    open in another job."""
    settled = counters.get("done", 0) + counters.get("failed", 0) + counters.get("held", 0)
    own = settled >= counters.get("queued", 0)
    return sealed and own and open_elsewhere == 0


def job_failures(counters: Mapping[str, int]) -> int:
    """Items of a run that failed (its own, and those it waited for in another job)."""
    return counters.get("failed", 0) + counters.get("failed_elsewhere", 0)


def job_status(sealed: bool, counters: Mapping[str, int], open_elsewhere: int = 0) -> str:
    """``running`` (still submitting, or items open), ``done``, ``done with failures`` (some
    items failed, others are in), ``failed`` (every item that settled failed), or ``stopped at
    budget`` (the rest waits for a raised budget)."""
    if not job_finished(sealed, counters, open_elsewhere):
        return "running"
    if counters.get("held", 0):
        return "stopped at budget"
    if not job_failures(counters):
        return "done"
    ingested = counters.get("done", 0) + counters.get("skipped", 0)
    return "done with failures" if ingested else "failed"


@dataclass(slots=True)
class Job:
    """A job's record and counters."""

    id: str
    created_at: float
    name: str
    manifests: list[str]
    spec: EmbeddingSpec
    sealed: bool
    counters: dict[str, int] = field(default_factory=dict)
    open_elsewhere: int = 0
    """Accepted items still in flight for another job: the job is not finished before they are."""
    minutes: float = 0.0
    """Media minutes charged (estimates for tasks in flight, actual for finished ones)."""
    max_minutes: float = 0.0
    """The job's budget in media minutes (0: none)."""

    @classmethod
    def from_hash(cls, h: Mapping[bytes, bytes], open_elsewhere: int = 0) -> Job:
        """The job whose hash (HGETALL) is ``h``."""
        d = {k.decode(): v.decode() for k, v in h.items()}
        return cls(
            id=d["id"], created_at=float(d["created_at"]), name=d.get("name", ""),
            manifests=json.loads(d.get("manifests", "[]")),
            spec=EmbeddingSpec.from_json(d["spec"]), sealed=d.get("sealed") == "1",
            counters={c: int(d.get(c, 0)) for c in COUNTERS}, open_elsewhere=open_elsewhere,
            minutes=float(d.get("minutes", 0)), max_minutes=float(d.get("max_minutes", 0)),
        )

    @property
    def finished(self) -> bool:
        return job_finished(self.sealed, self.counters, self.open_elsewhere)

    @property
    def failures(self) -> int:
        """Items of this run that failed (its own, and those it waited for in another job)."""
        return job_failures(self.counters)

    @property
    def status(self) -> str:
        """See ``job_status``."""
        return job_status(self.sealed, self.counters, self.open_elsewhere)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "created_at": self.created_at,
            "manifests": self.manifests, "status": self.status, "model": self.spec.model,
            **{k: self.counters.get(k, 0) for k in COUNTERS}, "open_elsewhere": self.open_elsewhere,
            "media_minutes": round(self.minutes, 2), "max_minutes": self.max_minutes or None,
        }


@dataclass(frozen=True, slots=True)
class Item:
    """An item's record as stored (see the module docstring for its fields)."""

    key: str
    state: str
    job_id: str
    url: str
    category: str
    title: str
    metadata: str
    task_id: str | None
    attempts: int
    reason: str | None
    submitted_at: float | None
    polls: int
    create_attempted_at: float | None
    expected: int | None = None
    """Segments its task produced (``exp``); None until the task was ready."""

    @classmethod
    def from_fields(cls, key: str, values: Sequence[bytes | None]) -> Item | None:
        """The item whose ``ITEM_FIELDS`` (an HMGET, in that order) are ``values``; None when
        none of them is set (no such item)."""
        if all(v is None for v in values):
            return None
        raw = dict(zip(ITEM_FIELDS, values, strict=True))

        def text(name: str) -> str | None:
            value = raw[name]
            return value.decode() if value is not None else None

        def number(name: str) -> float | None:
            value = text(name)
            return float(value) if value else None

        expected = text("exp")
        return cls(
            key=key, state=text("s") or "unknown", job_id=text("j") or "",
            url=text("url") or "", category=text("cat") or "", title=text("title") or "",
            metadata=text("meta") or "{}", task_id=text("tl"), attempts=int(text("att") or 0),
            reason=text("why"), submitted_at=number("sub"), polls=int(text("polls") or 0),
            create_attempted_at=number("ca"),
            expected=int(expected) if expected is not None else None,
        )

    @classmethod
    def from_done(cls, key: str, value: bytes | None) -> Item | None:
        """The done item whose compact record is ``value``; None when there is none."""
        if value is None:
            return None
        job, expected, category, _ = [*value.decode().split(DONE_SEP), "", "", "", ""][:4]
        return cls(
            key=key, state="done", job_id=job, url="", category=category, title="",
            metadata="{}", task_id=None, attempts=0, reason=None, submitted_at=None, polls=0,
            create_attempted_at=None, expected=int(expected) if expected else None,
        )
