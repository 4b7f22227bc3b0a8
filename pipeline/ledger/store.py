"""Jobs and items in Redis: every state move is one Lua script, so counters never drift.

An item is (normalized URL, embedding spec); its key is ``items.item_key``. An item's hash holds its
state (``s``) and the job that owns it (``j``); the job's hash holds the counters. Counters move
in the same script as the state they describe: ``done`` and ``segments`` move only in
``record_written``, which the writer calls after Milvus accepted the rows.

States: waiting -> creating -> processing -> writing -> done, or failed from any of them.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from pipeline.spec import EmbeddingSpec
from pipeline.state.keys import Keys
from pipeline.state.locks import FencedLock

SEP = "\x1f"
ACTIVE_STATES = ("waiting", "creating", "processing", "writing")
COUNTERS = (
    "lines", "accepted", "rejected", "duplicates", "skipped", "in_progress",
    "previously_failed", "queued", "done", "failed", "failed_elsewhere", "segments",
)
BUSY_SAMPLE = 500
"""Items in flight for another job that one look at a job checks for having settled."""

_LUA_SPLIT = """
local function split(s)
  local out = {}; local start = 1
  while true do
    local i = string.find(s, '\\31', start, true)
    if not i then out[#out + 1] = string.sub(s, start); return out end
    out[#out + 1] = string.sub(s, start, i - 1); start = i + 1
  end
end
"""

# Every per-attempt field of an item, cleared in this one place whenever an item is queued again
# (submit, ``--force``, ``--retry-failed``, ``retry``): task id, create mark, reason, failure kind,
# expected and written segments, submit time, polls, create attempts and redrive rounds.
_LUA_QUEUE = """
local function queue(p, ik, job, rec)
  redis.call('HDEL', ik, 'tl', 'ca', 'why', 'ft', 'exp', 'w', 'sub', 'polls', 'att', 'rd')
  redis.call('DEL', ik .. ':w')
  redis.call('HSET', ik, 's', 'waiting', 'j', job)
  redis.call('RPUSH', p .. ':wait', rec)
end
"""

# ARGV: prefix, job, force, retry_failed, retry_transient (0/1 each), then (key, record) pairs.
# Returns {queued, duplicates, skipped, busy, previously_failed}. ``sj`` remembers the last job that
# saw an item it did not queue, so repeats in that job are duplicates. A failed item is queued again
# only when forced, asked for (retry_failed), or when it failed for a transient reason (``ft``) and
# retry_transient is set; otherwise it is counted as previously failed (its reason stays) and the
# job's ``:pfailed`` set remembers it for ``retry``. An item in flight for another job joins the
# job's ``:busy`` set: the job finishes only when they have settled.
_SUBMIT = _LUA_QUEUE + """
local p, job = ARGV[1], ARGV[2]
local force, refail, retrans = ARGV[3] == '1', ARGV[4] == '1', ARGV[5] == '1'
local jk = p .. ':job:' .. job
local queued, dup, skipped, busy, pfailed = 0, 0, 0, 0, 0
for i = 6, #ARGV, 2 do
  local key, rec = ARGV[i], ARGV[i + 1]
  local ik = p .. ':item:' .. key
  local st = redis.call('HMGET', ik, 's', 'j', 'sj', 'ft')
  local s = st[1]
  if st[2] == job or st[3] == job then dup = dup + 1
  elseif s == 'done' and not force then
    skipped = skipped + 1
    redis.call('HSET', ik, 'sj', job)
  elseif s == 'failed' and not (force or refail or (retrans and st[4] == '1')) then
    pfailed = pfailed + 1
    redis.call('HSET', ik, 'sj', job)
    redis.call('SADD', jk .. ':pfailed', key)
  elseif s and s ~= 'done' and s ~= 'failed' then
    busy = busy + 1
    redis.call('HSET', ik, 'sj', job)
    redis.call('SADD', jk .. ':busy', key)
  else
    queue(p, ik, job, rec)
    queued = queued + 1
  end
end
redis.call('HINCRBY', jk, 'queued', queued)
redis.call('HINCRBY', jk, 'duplicates', dup)
redis.call('HINCRBY', jk, 'skipped', skipped)
redis.call('HINCRBY', jk, 'in_progress', busy)
redis.call('HINCRBY', jk, 'previously_failed', pfailed)
redis.call('HINCRBY', jk, 'accepted', queued + skipped + busy + pfailed)
return {queued, dup, skipped, busy, pfailed}
"""

# ARGV: prefix, job, n. Looks at up to n of the job's items in flight for another job; those that
# settled leave the set (a failed one is listed with the job's failures and counted as
# ``failed_elsewhere``). Returns how many are still open.
_SETTLE_BUSY = """
local p, job = ARGV[1], ARGV[2]
local jk = p .. ':job:' .. job
local bk = jk .. ':busy'
for _, key in ipairs(redis.call('SRANDMEMBER', bk, tonumber(ARGV[3]))) do
  local s = redis.call('HGET', p .. ':item:' .. key, 's')
  if s == 'failed' then
    redis.call('HINCRBY', jk, 'failed_elsewhere', 1)
    redis.call('SADD', jk .. ':failed', key)
  end
  if (not s) or s == 'done' or s == 'failed' then redis.call('SREM', bk, key) end
end
return redis.call('SCARD', bk)
"""

# ARGV: prefix, n, lease_until. Moves up to n waiting records to creating; returns their keys.
# Each admitted key joins its job's index (``{prefix}:job:{job}:items``, a list read by verify):
# written here rather than at submit, so a waiting item costs no index bytes.
_ADMIT = _LUA_SPLIT + """
local p, n, lease = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local out = {}
if n <= 0 then return out end
local recs = redis.call('LPOP', p .. ':wait', n)
if not recs then return out end
for _, rec in ipairs(recs) do
  local f = split(rec)
  local ik = p .. ':item:' .. f[1]
  local st = redis.call('HMGET', ik, 's', 'j')
  if st[1] == 'waiting' then
    redis.call('HSET', ik, 's', 'creating', 'cat', f[2], 'url', f[3], 'title', f[4], 'meta', f[5])
    redis.call('ZADD', p .. ':creating', lease, f[1])
    redis.call('RPUSH', p .. ':job:' .. st[2] .. ':items', f[1])
    out[#out + 1] = f[1]
  end
end
return out
"""

# KEYS: a sorted set. ARGV: now, lease_until, n. Claims due members by pushing their score.
_CLAIM_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], m) end
return due
"""

# ARGV: prefix, key, task_id, now, next_poll. creating -> processing, once.
_CREATED = """
local p, key = ARGV[1], ARGV[2]
local ik = p .. ':item:' .. key
if redis.call('HGET', ik, 's') ~= 'creating' then return 0 end
redis.call('HSET', ik, 's', 'processing', 'tl', ARGV[3], 'sub', ARGV[4], 'polls', 0)
redis.call('HDEL', ik, 'ca')
redis.call('ZREM', p .. ':creating', key)
redis.call('ZADD', p .. ':inflight', ARGV[5], key)
return 1
"""

# KEYS: item hash, its create lock. ARGV: token, now, lease_ms. Marks a create as attempted only
# while the caller still holds the lock (and pushes its lease) and the item is still creating.
_NOTE_CREATE = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 's') ~= 'creating' then return 0 end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], 'ca', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'att', 1)
return 1
"""

# ARGV: prefix, key, reason, transient (0/1). Any active state -> failed.
_FAIL = """
local p, key = ARGV[1], ARGV[2]
local ik = p .. ':item:' .. key
local st = redis.call('HMGET', ik, 's', 'j')
if (not st[1]) or st[1] == 'done' or st[1] == 'failed' then return 0 end
redis.call('HSET', ik, 's', 'failed', 'why', ARGV[3])
if ARGV[4] == '1' then redis.call('HSET', ik, 'ft', 1) end
redis.call('ZREM', p .. ':creating', key)
redis.call('ZREM', p .. ':inflight', key)
redis.call('DEL', ik .. ':w')
redis.call('HINCRBY', p .. ':job:' .. st[2], 'failed', 1)
redis.call('SADD', p .. ':job:' .. st[2] .. ':failed', key)
return 1
"""

# ARGV: prefix, then (item_key, pk) pairs. Idempotent: a pk already counted moves nothing.
_WRITTEN = """
local p = ARGV[1]
local finished = 0
for i = 2, #ARGV, 2 do
  local key, pk = ARGV[i], ARGV[i + 1]
  local ik = p .. ':item:' .. key
  local st = redis.call('HMGET', ik, 's', 'j', 'exp')
  if st[1] == 'writing' and redis.call('SADD', ik .. ':w', pk) == 1 then
    local w = redis.call('HINCRBY', ik, 'w', 1)
    redis.call('HINCRBY', p .. ':job:' .. st[2], 'segments', 1)
    if w >= tonumber(st[3]) then
      redis.call('HSET', ik, 's', 'done')
      redis.call('DEL', ik .. ':w')
      redis.call('HINCRBY', p .. ':job:' .. st[2], 'done', 1)
      finished = finished + 1
    end
  end
end
return finished
"""

# ARGV: prefix, now, expected_s. Pulls every in-flight check forward to max(now, submitted +
# expected) when that is sooner than its schedule. Run when a model's task time is first learned.
_PULL_FORWARD = """
local p, now, expected = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local moved = 0
local later = redis.call('ZRANGEBYSCORE', p .. ':inflight', '(' .. now, '+inf', 'WITHSCORES')
for i = 1, #later, 2 do
  local key, score = later[i], tonumber(later[i + 1])
  local sub = tonumber(redis.call('HGET', p .. ':item:' .. key, 'sub'))
  if sub then
    local target = math.max(now, sub + expected)
    if target < score then
      redis.call('ZADD', p .. ':inflight', 'XX', target, key)
      moved = moved + 1
    end
  end
end
return moved
"""

# ARGV: prefix, job. failed -> waiting for the job's own failed items and for the failed items it
# found from earlier jobs (``:pfailed``, which then count as queued); returns how many.
_RETRY = _LUA_QUEUE + """
local p, job = ARGV[1], ARGV[2]
local jk = p .. ':job:' .. job
local n = 0
local function requeue(key, own)
  local ik = p .. ':item:' .. key
  local h = redis.call('HMGET', ik, 's', 'cat', 'url', 'title', 'meta', 'j')
  if h[1] ~= 'failed' or not h[3] then return true end
  if own and h[6] ~= job then return false end
  queue(p, ik, job, table.concat({key, h[2], h[3], h[4] or '', h[5] or '{}'}, '\\31'))
  if own then redis.call('HINCRBY', jk, 'failed', -1)
  else
    redis.call('HINCRBY', jk, 'previously_failed', -1)
    redis.call('HINCRBY', jk, 'queued', 1)
  end
  n = n + 1
  return true
end
for _, key in ipairs(redis.call('SMEMBERS', jk .. ':failed')) do
  if requeue(key, true) then redis.call('SREM', jk .. ':failed', key) end
end
for _, key in ipairs(redis.call('SMEMBERS', jk .. ':pfailed')) do
  requeue(key, false)
  redis.call('SREM', jk .. ':pfailed', key)
end
return n
"""


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


JOB_STATUSES = ("running", "done", "done with failures", "failed")


def job_finished(sealed: bool, counters: Mapping[str, int], open_elsewhere: int = 0) -> bool:
    """Sealed, every queued item settled, and nothing it waits for open in another job."""
    own = counters.get("done", 0) + counters.get("failed", 0) >= counters.get("queued", 0)
    return sealed and own and open_elsewhere == 0


def job_failures(counters: Mapping[str, int]) -> int:
    """Items of a run that failed (its own, and those it waited for in another job)."""
    return counters.get("failed", 0) + counters.get("failed_elsewhere", 0)


def job_status(sealed: bool, counters: Mapping[str, int], open_elsewhere: int = 0) -> str:
    """``running`` (still submitting, or items open), ``done``, ``done with failures`` (some
    items failed, others are in), or ``failed`` (every item that settled failed)."""
    if not job_finished(sealed, counters, open_elsewhere):
        return "running"
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
        }


@dataclass(frozen=True, slots=True)
class Item:
    """An item's record as stored."""

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

    @classmethod
    def from_hash(cls, key: str, h: dict[bytes, bytes]) -> Item:
        def text(name: str) -> str | None:
            raw = h.get(name.encode())
            return raw.decode() if raw is not None else None

        def number(name: str) -> float | None:
            raw = text(name)
            return float(raw) if raw else None

        return cls(
            key=key, state=text("s") or "unknown", job_id=text("j") or "",
            url=text("url") or "", category=text("cat") or "", title=text("title") or "",
            metadata=text("meta") or "{}", task_id=text("tl"), attempts=int(text("att") or 0),
            reason=text("why"), submitted_at=number("sub"), polls=int(text("polls") or 0),
            create_attempted_at=number("ca"),
        )


class JobStore:
    """Jobs, items and their counters in Redis."""

    def __init__(self, client: redis.Redis[bytes], keys: Keys) -> None:
        self.r = client
        self.keys = keys
        self._submit = client.register_script(_SUBMIT)
        self._admit = client.register_script(_ADMIT)
        self._claim = client.register_script(_CLAIM_DUE)
        self._created = client.register_script(_CREATED)
        self._fail = client.register_script(_FAIL)
        self._written = client.register_script(_WRITTEN)
        self._retry = client.register_script(_RETRY)
        self._pull_forward = client.register_script(_PULL_FORWARD)
        self._settle_busy = client.register_script(_SETTLE_BUSY)
        self._note_create = client.register_script(_NOTE_CREATE)
        self._specs: dict[str, EmbeddingSpec] = {}
        self._collections: dict[str, str] = {}

    # --- jobs -----------------------------------------------------------------------------------
    def create_job(
        self, manifests: Sequence[str], spec: EmbeddingSpec, name: str = "", collection: str = ""
    ) -> str:
        """A new job; ``collection`` names its model version's collection (none: the default)."""
        now = time.time()
        job_id = new_job_id(now)
        record: dict[str | bytes, bytes | float | int | str] = {
            "id": job_id, "created_at": now, "name": name, "sealed": 0,
            "manifests": json.dumps(list(manifests)), "spec": spec.to_json(),
            **{c: 0 for c in COUNTERS},
        }
        if collection:
            record["collection"] = collection
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
        open_elsewhere = int(self._settle_busy(args=[self.keys.prefix, job_id, BUSY_SAMPLE]))
        h = self.r.hgetall(self.keys.job(job_id))
        if not h:
            return None
        d = {k.decode(): v.decode() for k, v in h.items()}
        return Job(
            id=d["id"], created_at=float(d["created_at"]), name=d.get("name", ""),
            manifests=json.loads(d.get("manifests", "[]")),
            spec=EmbeddingSpec.from_json(d["spec"]), sealed=d.get("sealed") == "1",
            counters={c: int(d.get(c, 0)) for c in COUNTERS}, open_elsewhere=open_elsewhere,
        )

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
        items = (self.get_item(k) for k in sorted(_text(k) for k in found))
        return [item for item in items if item is not None and item.state == "failed"]

    def retry(self, job_id: str) -> int:
        """Re-drive the job's failed items, and the failed items of earlier jobs it counted as
        previously failed (only those); returns how many."""
        return int(self._retry(args=[self.keys.prefix, job_id]))

    # --- items ----------------------------------------------------------------------------------
    def submit_batch(self, job_id: str, batch: Sequence[Admission], mode: SubmitMode) -> BatchResult:
        args: list[str] = [self.keys.prefix, job_id, *mode.flags()]
        for a in batch:
            args += [a.key, a.record()]
        q, d, s, b, f = self._submit(args=args)
        return BatchResult(int(q), int(d), int(s), int(b), int(f))

    def get_item(self, key: str) -> Item | None:
        h = self.r.hgetall(self.keys.item(key))
        return Item.from_hash(key, h) if h else None

    def admit(self, n: int, lease_until: float) -> list[str]:
        keys = self._admit(args=[self.keys.prefix, n, lease_until])
        return [k.decode() for k in keys]

    def claim_due(self, zset: str, now: float, lease_until: float, n: int) -> list[str]:
        return [k.decode() for k in self._claim(keys=[zset], args=[now, lease_until, n])]

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
        False means another worker owns the create now and nothing may be sent."""
        args = [lock.token, now, lock.lease_ms]
        return bool(self._note_create(keys=[self.keys.item(key), lock.key], args=args))

    def clear_create_attempt(self, key: str) -> None:
        """The server answered with an error: no task was created by that attempt."""
        self.r.hdel(self.keys.item(key), "ca")

    def record_created(self, key: str, task_id: str, now: float, next_poll: float) -> bool:
        return bool(self._created(args=[self.keys.prefix, key, task_id, now, next_poll]))

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
            state, current, job = self.r.hmget(ik, "s", "tl", "j")
            if state != b"processing" or current != task_id.encode():
                pipe.unwatch()
                return False
            pipe.multi()
            for fields in entries:
                pipe.xadd(stream, fields)  # type: ignore[arg-type,unused-ignore]  # bytes keys are fine
            pipe.hset(ik, mapping={"s": "writing", "exp": len(entries), "w": 0})
            pipe.zrem(self.keys.inflight, key)
            if not entries:
                pipe.hset(ik, "s", "done")
                if job:
                    pipe.hincrby(self.keys.job(job.decode()), "done", 1)
            pipe.execute()
        return True

    def pull_forward_polls(self, now: float, expected_s: float) -> int:
        """Checks scheduled later than ``submitted + expected_s`` move to that time; returns how many."""
        return int(self._pull_forward(args=[self.keys.prefix, now, expected_s]))

    def fail(self, key: str, reason: str, transient: bool = False) -> bool:
        """Fail an active item; ``transient``: retries ran out (a re-submit may queue it again)."""
        return bool(self._fail(args=[self.keys.prefix, key, reason[:1000], "1" if transient else "0"]))

    # --- the writer's ledger ----------------------------------------------------------------------
    def record_written(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Rows Milvus accepted: move item and job counters once per primary key."""
        for start in range(0, len(pairs), 500):
            args: list[str] = [self.keys.prefix]
            for item_key, pk in pairs[start:start + 500]:
                args += [item_key, pk]
            self._written(args=args)

    def record_dead(self, item_key: str, reason: str) -> None:
        self.fail(item_key, f"segment dead-lettered: {reason}")


def _text(value: bytes | float | int | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
