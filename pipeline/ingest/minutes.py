"""Media minutes: what an item will cost before its create, what it cost after, and the budgets.

Twelve Labs counts (and bills) minutes of media. Before admission the tick estimates each waiting
item's minutes (``estimate``): the manifest line's ``duration_s`` column when present, else the
mean of what this collection's finished tasks covered (``{prefix}:media:{collection}``), else
``default_media_minutes``. Admission charges the estimate to the item (``em``), its job
(``minutes``) and the quota's media windows; when the task is ready, ``settle`` replaces it by the
minutes its segments cover, everywhere it was charged, and teaches the collection's mean.

A job's budget (``max_minutes`` on the job, from ``--max-minutes`` or ``job_max_media_minutes``)
stops its admission: an item that would take the job past it leaves the waiting list for the job's
held list (``{prefix}:job:{job}:held``), where it costs nothing and waits, still ``waiting``, until
``raise_budget`` puts it back in line.

``price`` totals what manifests would cost before anything is submitted (``submit --dry-run``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis

from pipeline.ingest.manifest import ManifestLine, Rejected
from pipeline.ledger.records import Item
from pipeline.ledger.store import SEP, JobStore
from pipeline.settings import Settings
from pipeline.state.limits import Limits


@dataclass(frozen=True, slots=True)
class Head:
    """A waiting item at the head of the line: its key, job and estimated media minutes."""

    key: str
    job: str
    minutes: float
    guessed: bool = False
    """The estimate is ``default_media_minutes``: neither the manifest nor a finished task said."""


@dataclass(frozen=True, slots=True)
class JobMinutes:
    """What a job has consumed (estimates for tasks in flight, actual for finished ones)."""

    minutes: float
    max_minutes: float
    held: int

    @property
    def at_budget(self) -> bool:
        return self.held > 0


def duration_minutes(metadata: str) -> float | None:
    """A manifest line's ``duration_s`` column (in its metadata JSON) in minutes, if usable."""
    try:
        raw = json.loads(metadata or "{}").get("duration_s")
        value = float(raw)
    except (TypeError, ValueError, AttributeError):
        return None
    return value / 60.0 if value > 0 else None


def covered_minutes(spans: Sequence[tuple[float, float]]) -> float:
    """Minutes a finished task covered: from its first segment's start to its last one's end."""
    if not spans:
        return 0.0
    return max(0.0, max(e for _, e in spans) - min(s for s, _ in spans)) / 60.0


class MinuteBook:
    """Estimates, charges and settles media minutes; keeps the jobs' budgets."""

    def __init__(
        self, client: redis.Redis[bytes], jobs: JobStore, limits: Limits, settings: Settings
    ) -> None:
        self.r = client
        self.jobs = jobs
        self.keys = jobs.keys
        self.limits = limits
        self.settings = settings

    # --- before the create ----------------------------------------------------------------------
    def head(self, n: int) -> list[Head]:
        """The first ``n`` waiting items with their estimates, in line order."""
        records = [r.decode() for r in self.r.lrange(self.keys.wait, 0, n - 1)]
        fields = [rec.split(SEP) for rec in records]
        pipe = self.r.pipeline(transaction=False)
        for f in fields:
            pipe.hget(self.keys.item(f[0]), "j")
        owners = [(j or b"").decode() for j in pipe.execute()]
        heads = []
        for f, job in zip(fields, owners, strict=True):
            minutes = self.known(f[4] if len(f) > 4 else "{}", job)
            if minutes is None:
                heads.append(Head(f[0], job, self.settings.default_media_minutes, guessed=True))
            else:
                heads.append(Head(f[0], job, minutes))
        return heads

    def estimate(self, metadata: str, job_id: str) -> float:
        """Minutes an item will cost (see the module docstring)."""
        known = self.known(metadata, job_id)
        return self.settings.default_media_minutes if known is None else known

    def known(self, metadata: str, job_id: str) -> float | None:
        """The manifest's duration, else the collection's mean, else None."""
        stated = duration_minutes(metadata)
        if stated is not None:
            return stated
        n, total_s = self.r.hmget(self.keys.media(self.jobs.collection(job_id)), ["n", "sum_s"])
        if n and int(n) > 0:
            return float(total_s or 0) / int(n) / 60.0
        return None

    def within_budgets(self, heads: list[Head]) -> list[Head]:
        """The leading ``heads`` every job's budget allows; head-of-line items of a job at its
        budget move to the job's held list (so other jobs' items behind them go on)."""
        spent: dict[str, float] = {}
        allowed: list[Head] = []
        for head in heads:
            budget = self._budget(head.job, spent)
            if budget is None or spent[head.job] + head.minutes <= budget:
                spent[head.job] += head.minutes
                allowed.append(head)
                continue
            if not allowed:  # at the head of the line: hold it, look at the next one
                self.r.lmove(self.keys.wait, self.keys.held(head.job), "LEFT", "RIGHT")
                self.r.hincrby(self.keys.job(head.job), "held", 1)
                continue
            break
        return allowed

    def _budget(self, job_id: str, spent: dict[str, float]) -> float | None:
        if job_id not in spent:
            minutes, budget = self.r.hmget(self.keys.job(job_id), ["minutes", "max_minutes"])
            spent[job_id] = float(minutes or 0)
            spent[f"max:{job_id}"] = float(budget or 0)
        budget_value = spent[f"max:{job_id}"]
        return budget_value if budget_value > 0 else None

    def charged(self, heads: Sequence[Head], admitted: Sequence[str]) -> None:
        """Record the estimates of the admitted items on them and on their jobs."""
        chosen = set(admitted)
        pipe = self.r.pipeline(transaction=False)
        for head in heads:
            if head.key in chosen:
                pipe.hset(self.keys.item(head.key), "em", f"{head.minutes:.4f}")
                pipe.hincrbyfloat(self.keys.job(head.job), "minutes", head.minutes)
        pipe.execute()

    # --- after the task -----------------------------------------------------------------------
    def settle(self, item: Item, spans: Sequence[tuple[float, float]]) -> float:
        """Replace the item's estimate by what its task covered; the actual minutes."""
        actual = covered_minutes(spans)
        estimated = float(self.r.hget(self.keys.item(item.key), "em") or 0.0)
        delta = actual - estimated
        pipe = self.r.pipeline(transaction=False)
        pipe.hset(self.keys.item(item.key), "em", f"{actual:.4f}")
        pipe.hincrbyfloat(self.keys.job(item.job_id), "minutes", delta)
        media = self.keys.media(self.jobs.collection(item.job_id))
        pipe.hincrby(media, "n", 1)
        pipe.hincrbyfloat(media, "sum_s", actual * 60.0)
        pipe.execute()
        self.limits.reconcile(delta)
        return actual

    # --- budgets --------------------------------------------------------------------------------
    def set_budget(self, job_id: str, max_minutes: float) -> None:
        self.r.hset(self.keys.job(job_id), "max_minutes", f"{max_minutes:.4f}")

    def raise_budget(self, job_id: str, max_minutes: float) -> int:
        """Set the job's budget and put its held items back in line; how many."""
        self.set_budget(job_id, max_minutes)
        moved = 0
        while self.r.lmove(self.keys.held(job_id), self.keys.wait, "LEFT", "RIGHT") is not None:
            self.r.hincrby(self.keys.job(job_id), "held", -1)
            moved += 1
        return moved

    def job_minutes(self, job_id: str) -> JobMinutes:
        minutes, budget = self.r.hmget(self.keys.job(job_id), ["minutes", "max_minutes"])
        held = int(self.r.llen(self.keys.held(job_id)))
        return JobMinutes(round(float(minutes or 0), 3), float(budget or 0), held)


# --- pricing a manifest (``submit --dry-run``) --------------------------------------------------
@dataclass(frozen=True, slots=True)
class Pricing:
    """What a set of manifests would cost: minutes known from ``duration_s``, minutes assumed."""

    lines: int
    rejected: int
    with_duration: int
    known_minutes: float
    without_duration: int
    assumed_minutes: float
    price_per_minute: float
    minutes_per_hour: float

    @property
    def minutes(self) -> float:
        return self.known_minutes + self.assumed_minutes

    def to_dict(self) -> dict[str, float | int | None]:
        rate = self.minutes_per_hour
        return {
            "lines": self.lines, "rejected": self.rejected, "with_duration": self.with_duration,
            "known_minutes": round(self.known_minutes, 2), "without_duration": self.without_duration,
            "assumed_minutes": round(self.assumed_minutes, 2), "minutes": round(self.minutes, 2),
            "spend": round(self.minutes * self.price_per_minute, 2) if self.price_per_minute else None,
            "hours_at_media_limit": round(self.minutes / rate, 2) if rate else None,
        }


def price(lines: Iterable[ManifestLine | Rejected], settings: Settings) -> Pricing:
    """Price manifest lines: each accepted line's ``duration_s``, else ``default_media_minutes``."""
    total = rejected = known_n = 0
    known = 0.0
    for line in lines:
        total += 1
        if isinstance(line, Rejected):
            rejected += 1
            continue
        minutes = duration_minutes(json.dumps(line.metadata))
        if minutes is not None:
            known_n += 1
            known += minutes
    unknown = total - rejected - known_n
    return Pricing(total, rejected, known_n, known, unknown, unknown * settings.default_media_minutes,
                   settings.price_per_media_minute, settings.media_minutes_per_hour
                   * 3600.0 / settings.media_window_s)
