"""What people read about a job: ``status``, the progress of ``submit --wait`` / ``status --watch``,
and search hits. Shared by the commands and the demo (so neither imports the other).

Times are ISO 8601 (UTC) with an age; the rate is the job's settled items per second since it was
created and the ETA the items left at that rate. On a terminal the progress bar is redrawn in
place; otherwise (a log file, a pipe) one plain line is written every ``progress_interval_s``.
When no scheduler tick ran for ``tick_stall_intervals`` intervals, both say so and name the fix.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from pipeline.clients import Clients
from pipeline.ingest.scheduler import admission_hold, last_tick
from pipeline.ledger.records import Job
from pipeline.ledger.store import JobStore
from pipeline.state.limits import Hold

STALL_HINT = (
    "no scheduler tick for more than {stall:.0f} s: nothing is admitting or polling this job's "
    "items. Start a worker on this Redis (`vidsearch worker`, or `vidsearch up` on one machine); "
    "every worker runs the tick."
)


@dataclass(frozen=True, slots=True)
class Progress:
    """A job's settled items, rate and ETA at one moment."""

    settled: int
    total: int
    rate_per_s: float | None
    eta_s: float | None

    @classmethod
    def of(cls, job: Job, now: float) -> Progress:
        c = job.counters
        settled = c["done"] + c["failed"]
        total = c["queued"]
        elapsed = now - job.created_at
        rate = settled / elapsed if settled and elapsed > 0 else None
        if job.finished:
            eta: float | None = 0.0
        elif rate:
            eta = max(0, total - settled + job.open_elsewhere) / rate
        else:
            eta = None
        return cls(settled, total, rate, eta)


@dataclass(frozen=True, slots=True)
class Ticking:
    """Whether the scheduler tick is alive: ``stalled`` when none ran for ``stall_s``."""

    stalled: bool
    last_tick_at: float | None
    stall_s: float
    hold: Hold | None = None
    """The quota limit holding admission, if one does (``submit --wait`` says so)."""

    def held(self, job: Job) -> str:
        if self.hold is None or job.finished:
            return ""
        return f"; {self.hold.dimension} spent, admission resumes at {iso(self.hold.until)}"

    def warning(self) -> str:
        return "WARNING: " + STALL_HINT.format(stall=self.stall_s)


ALIVE = Ticking(stalled=False, last_tick_at=None, stall_s=0.0)
"""For callers that do not check the tick."""


@dataclass(frozen=True, slots=True)
class Spending:
    """What a job consumed and spent, and which limit holds admission (``status``, the job API)."""

    price_per_minute: float = 0.0
    held_by: str | None = None
    resumes_at: float | None = None

    def fields(self, job: Job) -> dict[str, Any]:
        spend = round(job.minutes * self.price_per_minute, 2) if self.price_per_minute else None
        return {"spend": spend, "held_by": self.held_by, "resumes_at": self.resumes_at}

    def lines(self, job: Job, now: float) -> list[str]:
        budget = f" of a budget of {job.max_minutes:g}" if job.max_minutes else ""
        spend = f", spend {job.minutes * self.price_per_minute:.2f}" if self.price_per_minute else ""
        out = [f"media      {job.minutes:.1f} minutes{budget}{spend}"]
        if job.counters.get("held"):
            out.append(f"budget     reached: {job.counters['held']} items wait (`vidsearch budget "
                       f"{job.id} --max-minutes M` queues them again)")
        if self.held_by and self.resumes_at:
            out.append(f"limit      {self.held_by} is spent: admission resumes at "
                       f"{iso(self.resumes_at)} (in {age(self.resumes_at - now)})")
        return out


NO_SPENDING = Spending()


def spending(clients: Clients, job: Job) -> Spending:
    """The job's spending view: the configured price, and the limit holding admission (if the
    job still has items to admit)."""
    hold = admission_hold(clients.redis, clients.keys) if not job.finished else None
    price = clients.settings.price_per_media_minute
    return Spending(price, hold.dimension if hold else None, hold.until if hold else None)


def pricing_text(priced: dict[str, Any], default_minutes: float) -> str:
    """``submit --dry-run`` for people."""
    lines = [
        f"lines      {priced['lines']} ({priced['rejected']} rejected)",
        f"minutes    {priced['minutes']:.1f}: {priced['known_minutes']:.1f} from "
        f"{priced['with_duration']} lines with duration_s, {priced['assumed_minutes']:.1f} assumed "
        f"for {priced['without_duration']} without ({default_minutes:g} each)",
    ]
    if priced["spend"] is not None:
        lines.append(f"spend      {priced['spend']:.2f}")
    if priced["hours_at_media_limit"] is not None:
        lines.append(f"time       {priced['hours_at_media_limit']:.1f} h at media_minutes_per_hour")
    return "\n".join(lines)


def print_json(value: Any) -> None:
    """``--json`` output of every command: indented, UTF-8 as is, anything else as its str()."""
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def ticking(clients: Clients) -> Ticking:
    """Whether the scheduler tick is alive (its heartbeat key, ``pipeline/ingest/scheduler.py``)."""
    s = clients.settings
    last = last_tick(clients.redis, clients.jobs)
    hold = admission_hold(clients.redis, clients.keys)
    return Ticking(last is None, last, s.tick_interval_s * s.tick_stall_intervals, hold)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def age(seconds: float) -> str:
    """``42 s``, ``5 min``, ``3 h 10 min``, ``2 d 4 h``."""
    s = int(max(0.0, seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def duration(seconds: float | None) -> str:
    return "unknown" if seconds is None else age(seconds)


def status_dict(job: Job, ticking: Ticking, now: float, spend: Spending = NO_SPENDING) -> dict[str, Any]:
    """``status --json``: the job's machine fields (epoch seconds) plus rate, ETA, the tick, its
    spend and the limit holding admission."""
    p = Progress.of(job, now)
    return {
        **job.to_dict(),
        **spend.fields(job),
        "rate_per_s": round(p.rate_per_s, 3) if p.rate_per_s is not None else None,
        "eta_s": round(p.eta_s, 1) if p.eta_s is not None else None,
        "tick_stalled": ticking.stalled and not job.finished,
        "last_tick_at": ticking.last_tick_at,
    }


def status_lines(job: Job, ticking: Ticking, now: float, spend: Spending = NO_SPENDING) -> list[str]:
    """``status`` for people."""
    c = job.counters
    name = f"  ({job.name})" if job.name else ""
    lines = [
        f"job        {job.id}{name}",
        f"status     {job.status}",
        f"created    {iso(job.created_at)} ({age(now - job.created_at)} ago)",
        f"model      {job.spec.model}",
        "manifests",
        *(f"  - {m}" for m in job.manifests),
        f"progress   {bar(job, now)}",
        f"lines      {c['lines']}: accepted {c['accepted']}, rejected {c['rejected']}, "
        f"duplicates {c['duplicates']}",
        f"accepted   queued {c['queued']}, already ingested {c['skipped']}, in flight for another "
        f"job {c['in_progress']} (still open {job.open_elsewhere}), previously failed "
        f"{c['previously_failed']}",
        f"results    done {c['done']}, failed {c['failed']}, failed in another job "
        f"{c['failed_elsewhere']}, segments {c['segments']}",
        *spend.lines(job, now),
    ]
    if c["previously_failed"]:
        lines.append(f"hint       `vidsearch retry {job.id}` re-drives the previously failed items")
    if ticking.stalled and not job.finished:
        lines.append(ticking.warning())
    return lines


def bar(job: Job, now: float, width: int = 30) -> str:
    p = Progress.of(job, now)
    filled = int(width * p.settled / max(1, p.total)) if p.total else width
    rate = f"{p.rate_per_s:.2f} items/s" if p.rate_per_s is not None else "- items/s"
    eta = "" if job.finished else f", ETA {duration(p.eta_s)}"
    elsewhere = f", {job.open_elsewhere} in flight for another job" if job.open_elsewhere else ""
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {p.settled}/{p.total} items "
        f"(done {job.counters['done']}, failed {job.counters['failed']}{elsewhere}), "
        f"{job.counters['segments']} segments, {rate}{eta}"
    )


@dataclass
class ProgressWriter:
    """Draws progress on ``stream``: a redrawn bar on a terminal, else a line every ``interval_s``."""

    stream: TextIO
    interval_s: float
    terminal: bool
    _next_line_at: float = 0.0
    _warned: bool = False

    def show(self, job: Job, ticking: Ticking, now: float) -> None:
        self._warn(ticking, job, now)
        line = bar(job, now) + ticking.held(job)
        if self.terminal:
            print("\r" + line, end="", file=self.stream, flush=True)
        elif job.finished or now >= self._next_line_at:
            print(f"{iso(now)} job {job.id}: {line}", file=self.stream, flush=True)
            self._next_line_at = now + self.interval_s

    def _warn(self, ticking: Ticking, job: Job, now: float) -> None:
        stalled = ticking.stalled and not job.finished
        if stalled and not self._warned:
            prefix = "\n" if self.terminal else ""
            print(f"{prefix}{iso(now)} {ticking.warning()}", file=self.stream, flush=True)
        elif self._warned and not stalled:
            print(f"{iso(now)} the scheduler tick runs again", file=self.stream, flush=True)
        self._warned = stalled

    def end(self) -> None:
        if self.terminal:
            print(file=self.stream, flush=True)


def wait_for_job(
    jobs: JobStore,
    job_id: str,
    progress: ProgressWriter | None = None,
    ticking: Callable[[], Ticking] = lambda: ALIVE,
    interval_s: float = 0.5,
) -> Job:
    """Block until the job has finished (its own items and those it waits for in other jobs);
    show its progress (and a stalled tick) on ``progress``, if given."""
    while True:
        job = jobs.get_job(job_id)
        if job is None:
            raise SystemExit(f"job {job_id} disappeared")
        if progress is not None:
            progress.show(job, ticking(), time.time())
        if job.finished:
            if progress is not None:
                progress.end()
            return job
        time.sleep(interval_s)


def stderr_progress(interval_s: float) -> ProgressWriter:
    return ProgressWriter(sys.stderr, interval_s, terminal=sys.stderr.isatty())


def print_floor(result: Any) -> None:
    """On stderr: the floor a search applied, how many hits it hid, and the near misses when
    nothing cleared it (stdout keeps the hits only, so ``--json`` stays a list of hits)."""
    if result.min_score is None or not result.below_floor:
        return
    print(f"{result.below_floor} hit(s) scored below the floor {result.min_score:g} not shown "
          "(--min-score -1 shows them)", file=sys.stderr)
    if not result.hits:
        print("nothing cleared the floor; the nearest misses:", file=sys.stderr)
        for h in result.near_misses:
            print(f"  {h.score:6.3f}  {h.url}", file=sys.stderr)


def print_hits(hits: Any) -> None:
    print(f"{'score':>6}  {'time':>13}  {'category':<12} video")
    for h in hits:
        span = f"{h.start_s:6.1f}-{h.end_s:6.1f}"
        title = f" ({h.title})" if h.title else ""
        print(f"{h.score:6.3f}  {span:>13}  {h.category:<12} {h.url}{title}")
        for m in h.moments[1:]:
            print(f"{m.score:6.3f}  {m.start_s:6.1f}-{m.end_s:6.1f}  {'':<12}   another moment")


@dataclass
class RowProgress:
    """A progress bar of rows (``vidsearch restore``, ``vidsearch archive export``) on ``stream``:
    redrawn on a terminal, else a line every ``interval_s`` and one at the end."""

    stream: TextIO
    label: str
    interval_s: float
    terminal: bool
    started: float = field(default_factory=time.monotonic)
    _next_line_at: float = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        line = self.line(done, total, now - self.started)
        if self.terminal:
            print("\r" + line, end="", file=self.stream, flush=True)
        elif done >= total or now >= self._next_line_at:
            print(f"{iso(time.time())} {line}", file=self.stream, flush=True)
            self._next_line_at = now + self.interval_s

    def line(self, done: int, total: int, elapsed_s: float, width: int = 30) -> str:
        filled = int(width * done / total) if total else width
        rate = done / elapsed_s if elapsed_s > 0 else 0.0
        return (f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} rows, "
                f"{rate:,.0f} rows/s")

    def end(self) -> None:
        if self.terminal:
            print(file=self.stream, flush=True)


def row_progress(label: str, interval_s: float) -> RowProgress:
    return RowProgress(sys.stderr, label, interval_s, terminal=sys.stderr.isatty())
