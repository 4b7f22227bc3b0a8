"""Jobs and items in Redis: every state move is one Lua script, so counters never drift.

An item is (normalized URL, embedding spec); its key is ``spec.item_key``. An item's hash holds its
state (``s``) and the job that owns it (``j``); the job's hash holds the counters. Counters move
in the same script as the state they describe: ``done`` and ``segments`` move only in
``record_written``, which the writer calls after Milvus accepted the rows.

States: waiting -> creating -> processing -> writing -> done, or failed from any of them. The
records and their fields are in ``records.py``; the scripts, one file each, in ``scripts/`` (their
KEYS, ARGV and returns documented there), read once per process at import (``lua.py``).
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from pipeline.errors import NotReplicatedError
from pipeline.ledger import lua
from pipeline.ledger.records import COUNTERS, DONE_SEP, ITEM_FIELDS, Item, Job
from pipeline.spec import EmbeddingSpec
from pipeline.state.keys import Keys
from pipeline.state.locks import FencedLock

SEP = "\x1f"
KEY_BYTES = 16
"""An item key (32 hex digits) in a job's packed index."""
BUSY_SAMPLE = 500
"""Items in flight for another job that one look at a job checks for having settled."""
READ_BATCH = 1000
"""Items ``read_items`` asks for in one pipelined round trip."""
SCRIPTS = ("submit", "admit", "claim_due", "created", "fail", "written", "retry", "pull_forward",
           "settle_busy", "note_create", "compact", "compact_index")
"""The store's Lua scripts (files in ``scripts/``)."""
_SOURCES = {name: lua.source(name) for name in SCRIPTS}

_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_job_id(now: float) -> str:
    """A short id that sorts by creation time: 7 base-36 digits of seconds, 4 random hex digits.

    Short on purpose: every item hash carries its job's id (``vidsearch jobs`` shows the creation
    time next to it).
    """
    n, digits = int(now), ""
    while n:
        n, r = divmod(n, 36)
        digits = _B36[r] + digits
    return f"{digits.rjust(7, '0')}-{secrets.token_hex(2)}"


@dataclass(frozen=True, slots=True)
class Admission:
    """One line the producer hands to ``submit_batch``."""

    key: str
    category: str
    url: str
    title: str = ""
    metadata: str = "{}"

    def record(self) -> str:
        title = self.title.replace(SEP, " ")
        return SEP.join((self.key, self.category, self.url, title, self.metadata.replace(SEP, " ")))


@dataclass(frozen=True, slots=True)
class BatchResult:
    queued: int
    duplicates: int
    skipped: int
    in_progress: int
    previously_failed: int = 0


@dataclass(frozen=True, slots=True)
class SubmitMode:
    """Which items a submission queues again: everything (force), every failed item
    (retry_failed), or failed items whose failure was transient (retry_transient)."""

    force: bool = False
    retry_failed: bool = False
    retry_transient: bool = True

    def flags(self) -> list[str]:
        return ["1" if f else "0" for f in (self.force, self.retry_failed, self.retry_transient)]


class JobStore:
    """Jobs, items and their counters in Redis."""

    def __init__(
        self, client: redis.Redis[bytes], keys: Keys, *, wait_replicas: int = 0, wait_timeout_ms: int = 0
    ) -> None:
        """``wait_replicas`` > 0: a create mark is written, then WAITed for that many replicas
        (``note_create_attempt``); a Sentinel set's failover keeps a mark a replica has."""
        self.r = client
        self.keys = keys
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self.scripts = {name: client.register_script(_SOURCES[name]) for name in SCRIPTS}
        """The registered scripts by name (``SCRIPTS``)."""
        self._specs: dict[str, EmbeddingSpec] = {}
        self._collections: dict[str, str] = {}

    # --- jobs -----------------------------------------------------------------------------------
    def create_job(
        self, manifests: Sequence[str], spec: EmbeddingSpec, name: str = "", collection: str = "",
        max_minutes: float = 0.0,
    ) -> str:
        """A new job; ``collection`` names its model version's collection (none: the default);
        ``max_minutes``: its budget in media minutes (0: none)."""
        now = time.time()
        job_id = new_job_id(now)
        record: dict[str | bytes, bytes | float | int | str] = {
            "id": job_id, "created_at": now, "name": name, "sealed": 0,
            "manifests": json.dumps(list(manifests)), "spec": spec.to_json(),
            **{c: 0 for c in COUNTERS},
        }
        if collection:
            record["collection"] = collection
        if max_minutes > 0:
            record["max_minutes"] = max_minutes
        self.r.hset(self.keys.job(job_id), mapping=record)
        self.r.zadd(self.keys.jobs, {job_id: now})
        return job_id

    def seal(self, job_id: str) -> None:
        """All lines are in: from now on the job can finish."""
        self.r.hset(self.keys.job(job_id), "sealed", 1)

    def add_counts(self, job_id: str, **deltas: int) -> None:
        pipe = self.r.pipeline(transaction=False)
        for name, delta in deltas.items():
            if delta:
                pipe.hincrby(self.keys.job(job_id), name, delta)
        pipe.execute()

    def add_rejects(self, job_id: str, rejects: Iterable[dict[str, Any]]) -> None:
        values = [json.dumps(r, ensure_ascii=False) for r in rejects]
        if values:
            self.r.rpush(self.keys.rejects(job_id), *values)

    def rejects(self, job_id: str, limit: int = -1) -> list[dict[str, Any]]:
        raw = self.r.lrange(self.keys.rejects(job_id), 0, limit)
        return [json.loads(v) for v in raw]

    def get_job(self, job_id: str) -> Job | None:
        """The job's record and counters (its items in flight elsewhere that settled are counted)."""
        open_elsewhere = int(self.scripts["settle_busy"](args=[self.keys.prefix, job_id, BUSY_SAMPLE]))
        h = self.r.hgetall(self.keys.job(job_id))
        return Job.from_hash(h, open_elsewhere) if h else None

    def spec(self, job_id: str) -> EmbeddingSpec | None:
        """A job's embedding spec (it never changes, so it is cached per process)."""
        if job_id not in self._specs:
            raw = self.r.hget(self.keys.job(job_id), "spec")
            if raw is None:
                return None
            self._specs[job_id] = EmbeddingSpec.from_json(raw.decode())
        return self._specs[job_id]

    def collection(self, job_id: str) -> str:
        """The collection a job's segments go to ("" for the model's default; cached)."""
        if job_id not in self._collections:
            raw = self.r.hget(self.keys.job(job_id), "collection")
            self._collections[job_id] = raw.decode() if raw else ""
        return self._collections[job_id]

    def list_jobs(self, limit: int = 20) -> list[Job]:
        ids = self.r.zrevrange(self.keys.jobs, 0, limit - 1)
        jobs = (self.get_job(i.decode()) for i in ids)
        return [j for j in jobs if j is not None]

    def latest_job_id(self) -> str | None:
        ids = self.r.zrevrange(self.keys.jobs, 0, 0)
        return ids[0].decode() if ids else None

    def failures(self, job_id: str) -> list[Item]:
        """The job's failed items, and the items it found failed by an earlier job (their
        ``job_id`` names that job) as long as they stay failed."""
        found = self.r.sunion(self.keys.failed(job_id), self.keys.previously_failed(job_id))
        items = read_items(self.r, self.keys, sorted(_text(k) for k in found))
        return [item for item in items if item is not None and item.state == "failed"]

    def retry(self, job_id: str) -> int:
        """Re-drive the job's failed items, and the failed items of earlier jobs it counted as
        previously failed (only those); returns how many."""
        return int(self.scripts["retry"](args=[self.keys.prefix, job_id]))

    # --- items ----------------------------------------------------------------------------------
    def submit_batch(self, job_id: str, batch: Sequence[Admission], mode: SubmitMode) -> BatchResult:
        args: list[str] = [self.keys.prefix, job_id, *mode.flags()]
        for a in batch:
            args += [a.key, a.record()]
        q, d, s, b, f = self.scripts["submit"](args=args)
        return BatchResult(int(q), int(d), int(s), int(b), int(f))

    def get_item(self, key: str) -> Item | None:
        return read_items(self.r, self.keys, [key])[0]

    def admit(self, n: int, lease_until: float) -> list[str]:
        keys = self.scripts["admit"](args=[self.keys.prefix, n, lease_until])
        return [k.decode() for k in keys]

    def claim_due(self, zset: str, now: float, lease_until: float, n: int) -> list[str]:
        return [k.decode() for k in self.scripts["claim_due"](keys=[zset], args=[now, lease_until, n])]

    def waiting_count(self) -> int:
        return int(self.r.llen(self.keys.wait))

    def in_flight_count(self) -> int:
        pipe = self.r.pipeline(transaction=False)
        pipe.zcard(self.keys.creating)
        pipe.zcard(self.keys.inflight)
        return sum(int(n) for n in pipe.execute())

    def note_create_attempt(self, key: str, now: float, lock: FencedLock) -> bool:
        """Durably: a create is about to be sent (its outcome is unknown until recorded).

        Only while ``lock`` is still ours (its lease is pushed) and the item is still creating;
        False means another worker owns the create now and nothing may be sent. With
        ``wait_replicas``, the mark is then WAITed for on the same connection (the replication stream
        is ordered: the lock and everything written before are on those replicas too); fewer
        acknowledgements clear the mark and raise ``NotReplicatedError``: nothing may be sent yet."""
        args = [lock.token, now, lock.lease_ms]
        keys = [self.keys.item(key), lock.key]
        if not self.wait_replicas:
            return bool(self.scripts["note_create"](keys=keys, args=args))
        with self.r.pipeline(transaction=False) as pipe:
            self.scripts["note_create"](keys=keys, args=args, client=pipe)
            pipe.wait(self.wait_replicas, self.wait_timeout_ms)
            noted, acked = pipe.execute()
        if noted and int(acked) < self.wait_replicas:
            self.clear_create_attempt(key)
            raise NotReplicatedError(
                f"{acked} of {self.wait_replicas} Redis replicas acknowledged the create mark of {key} "
                f"within {self.wait_timeout_ms} ms: the create waits"
            )
        return bool(noted)

    def clear_create_attempt(self, key: str) -> None:
        """The server answered with an error: no task was created by that attempt."""
        self.r.hdel(self.keys.item(key), "ca")

    def record_created(self, key: str, task_id: str, now: float, next_poll: float) -> bool:
        return bool(self.scripts["created"](args=[self.keys.prefix, key, task_id, now, next_poll]))

    def defer_create(self, key: str, at: float) -> None:
        self.r.zadd(self.keys.creating, {key: at}, xx=True)

    def schedule_poll(self, key: str, at: float, polls: int) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.keys.item(key), "polls", polls)
        pipe.zadd(self.keys.inflight, {key: at}, xx=True)
        pipe.execute()

    def record_ready(
        self, key: str, task_id: str, entries: Sequence[dict[bytes, bytes]], stream: str
    ) -> bool:
        """processing -> writing: the task's segments enter the stream in the same transaction.

        A task without segments goes straight to done, and its job's ``done`` moves in that same
        transaction."""
        ik = self.keys.item(key)
        with self.r.pipeline(transaction=True) as pipe:
            pipe.watch(ik)
            state, current, job, category, skipped_by = self.r.hmget(ik, "s", "tl", "j", "cat", "sj")
            if state != b"processing" or current != task_id.encode():
                pipe.unwatch()
                return False
            pipe.multi()
            for fields in entries:
                pipe.xadd(stream, fields)  # type: ignore[arg-type,unused-ignore]  # bytes keys are fine
            pipe.zrem(self.keys.inflight, key)
            if entries:
                pipe.hset(ik, mapping={"s": "writing", "exp": len(entries), "w": 0})
            else:  # done at once: the compact record, as scripts/done.lua writes it
                pipe.hset(*self.keys.done(key), done_record(job, 0, category, skipped_by))
                pipe.delete(ik, self.keys.written(key))
                if job:
                    pipe.hincrby(self.keys.job(job.decode()), "done", 1)
            pipe.execute()
        return True

    def pull_forward_polls(self, now: float, expected_s: float) -> int:
        """Checks scheduled later than ``submitted + expected_s`` move to that time; returns how many."""
        return int(self.scripts["pull_forward"](args=[self.keys.prefix, now, expected_s]))

    def fail(self, key: str, reason: str, transient: bool = False) -> bool:
        """Fail an active item; ``transient``: retries ran out (a re-submit may queue it again)."""
        args = [self.keys.prefix, key, reason[:1000], "1" if transient else "0"]
        return bool(self.scripts["fail"](args=args))

    # --- the writer's ledger ----------------------------------------------------------------------
    def record_written(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Rows Milvus accepted: move item and job counters once per primary key."""
        for start in range(0, len(pairs), 500):
            args: list[str] = [self.keys.prefix]
            for item_key, pk in pairs[start:start + 500]:
                args += [item_key, pk]
            self.scripts["written"](args=args)

    def record_dead(self, item_key: str, reason: str) -> None:
        self.fail(item_key, f"segment dead-lettered: {reason}")


def done_record(job: bytes | None, expected: int, category: bytes | None, skipped_by: bytes | None) -> str:
    """A done item's compact record (``records.DONE_SEP``-separated, as ``scripts/done.lua``)."""
    parts = (_text(job or b""), str(expected), _text(category or b""), _text(skipped_by or b""))
    return DONE_SEP.join(parts)


def read_items(client: redis.Redis[bytes], keys: Keys, item_keys: Sequence[str]) -> list[Item | None]:
    """The records of ``item_keys``, in order (None: no such item): one HMGET and one look at the
    done records each, pipelined ``READ_BATCH`` at a time."""
    found: list[Item | None] = []
    for start in range(0, len(item_keys), READ_BATCH):
        chunk = item_keys[start:start + READ_BATCH]
        pipe = client.pipeline(transaction=False)
        for key in chunk:
            pipe.hmget(keys.item(key), ITEM_FIELDS)
            pipe.hget(*keys.done(key))
        replies = pipe.execute()
        for i, key in enumerate(chunk):
            own, done = replies[2 * i], replies[2 * i + 1]
            found.append(Item.from_fields(key, own) or Item.from_done(key, done))
    return found


def job_item_keys(client: redis.Redis[bytes], keys: Keys, job_id: str) -> Iterator[list[str]]:
    """The job's admitted item keys in admission order, ``READ_BATCH`` at a time: the packed
    index (16 bytes a key), after the hex list an older version wrote (until it is compacted)."""
    legacy = keys.items(job_id)
    for start in itertools.count(0, READ_BATCH):
        chunk = client.lrange(legacy, start, start + READ_BATCH - 1)
        if chunk:
            yield [_text(k) for k in chunk]
        if len(chunk) < READ_BATCH:
            break
    index, width = keys.item_index(job_id), KEY_BYTES * READ_BATCH
    for start in itertools.count(0, width):
        raw: bytes = client.getrange(index, start, start + width - 1)  # type: ignore[no-untyped-call]
        if raw:
            yield [raw[i:i + KEY_BYTES].hex() for i in range(0, len(raw), KEY_BYTES)]
        if len(raw) < width:
            return


def _text(value: bytes | float | int | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
