"""The state of one sandbox process: configuration, tasks, counters, quota buckets, dice, clock.

``Sandbox`` is what the handlers share (stored in the aiohttp app under ``SANDBOX``). It creates
tasks (fault rolls, processing time, counters) and answers quota checks with ``ApiFailure`` 429s:
the per-endpoint buckets (``charge``) and the organisation's limits (``limit``, ``sandbox.limits``).
"""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from vidsearch.sandbox import catalog as catalog_file
from vidsearch.sandbox.config import SandboxConfig
from vidsearch.sandbox.errors import ApiFailure, invalid
from vidsearch.sandbox.faults import Dice, TokenBucket, Verdict
from vidsearch.sandbox.limits import DAY_S, Clock, OrgLimits, Refusal
from vidsearch.sandbox.media import Media, describe, image_words
from vidsearch.sandbox.stats import Stats
from vidsearch.sandbox.tasks import Task, TaskStore, bounds_error, rfc3339
from vidsearch.sandbox.validation import SYNC_VIDEO_MAX_S, TaskSpec

RATE_LIMIT_MESSAGE = (
    "You have exceeded the rate limit ({rate_limit}). Please try again later after {retry_after}."
)


class Sandbox:
    """Shared state of the server."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.catalog = catalog_file.load(config.catalog) if config.catalog else {}
        self.dice = Dice(config.seed)
        self.clock = Clock()
        self.store = TaskStore(self.dice, self.clock)
        self.stats = Stats()
        self.buckets = {"create": TokenBucket(config.create_rpm), "embed": TokenBucket(config.embed_rpm)}
        self.org = self._org_limits()

    def _org_limits(self) -> OrgLimits:
        c = self.config
        return OrgLimits.build(c.requests_per_minute, c.requests_per_day, c.media_minutes_per_hour,
                               c.media_window_s, c.media_minutes_per_day,
                               tokens=(c.tokens_per_minute, c.tokens_per_day))

    def reconfigure(self, changes: dict[str, Any]) -> list[str]:
        """Apply runtime option changes (``ValueError`` if invalid); changed organisation limits
        keep what their windows counted."""
        changed = self.config.update(changes)
        self.buckets["create"].configure(self.config.create_rpm)
        self.buckets["embed"].configure(self.config.embed_rpm)
        fresh = self._org_limits()
        for old, new in zip(self.org.windows, fresh.windows, strict=True):
            old.limit = new.limit
            if old.window_s != new.window_s:
                old.window_s, old.start, old.used = new.window_s, 0.0, 0.0
        if "seed" in changed:
            self.dice.__init__(self.config.seed)  # type: ignore[misc]  # re-seed in place
        return changed

    def reset(self) -> None:
        """Forget every task and counter; re-seed the dice, refill the buckets, reset the clock."""
        self.store.clear()
        self.clock.offset_s = 0.0
        self.stats = Stats()
        self.dice.__init__(self.config.seed)  # type: ignore[misc]  # re-seed in place
        self.buckets = {"create": TokenBucket(self.config.create_rpm),
                        "embed": TokenBucket(self.config.embed_rpm)}
        self.org = self._org_limits()

    def charge(self, bucket: str) -> dict[str, str]:
        """Spend a token of ``bucket``; the rate-limit headers, or a 429 ``ApiFailure``."""
        verdict = self.buckets[bucket].take()
        if verdict is None:
            return {}
        if not verdict.allowed:
            self.stats.rate_limited += 1
            self.stats.rate_limited_bucket += 1
            raise self.too_many(verdict)
        return verdict.headers()

    def limit(self, media_s: float = 0.0, tokens: int = 0) -> dict[str, str]:
        """Count one embedding request covering ``media_s`` seconds of media (and ``tokens`` input
        tokens, Marengo 3.5) against the organisation's limits; their headers, or a 429."""
        verdict = self.org.charge(self.clock.now(), media_s / 60.0, float(tokens))
        if isinstance(verdict, Refusal):
            self.stats.rate_limited += 1
            self.stats.rate_limited_org[verdict.window.name] += 1
            raise self.org_refusal(verdict)
        self.stats.media_minutes += media_s / 60.0
        self.stats.input_tokens += tokens
        return verdict

    def org_refusal(self, refusal: Refusal) -> ApiFailure:
        """A 429 naming the spent dimension, with its headers (and Retry-After unless disabled)."""
        headers = dict(refusal.headers)
        wait = max(1, math.ceil(refusal.window.reset - self.clock.now()))
        if not self.config.no_retry_after:
            headers["Retry-After"] = str(wait)
        limit = refusal.window.describe()
        message = RATE_LIMIT_MESSAGE.format(rate_limit=limit, retry_after=rfc3339(refusal.window.reset))
        return ApiFailure(429, "too_many_requests", message, headers,
                          {"retryAfter": str(wait), "currentLimit": limit})

    def expired(self, task: Task) -> bool:
        """True when ``task``'s results are past the retention period."""
        return self.clock.now() - task.created_epoch > self.config.retention_days * DAY_S

    def too_many(self, verdict: Verdict | None) -> ApiFailure:
        """A 429 with the API's message, ``Retry-After`` and ``X-Ratelimit-*`` headers."""
        wait = self.config.retry_after_s or (verdict.retry_after_s if verdict else 1.0)
        retry_after = max(1, math.ceil(wait))
        headers = verdict.headers() if verdict else {}
        headers["Retry-After"] = str(retry_after)
        limit = f"{verdict.limit} requests per minute" if verdict else "requests per minute"
        message = RATE_LIMIT_MESSAGE.format(rate_limit=limit,
                                            retry_after=rfc3339(self.clock.now() + retry_after))
        return ApiFailure(429, "too_many_requests", message, headers,
                          {"retryAfter": str(retry_after), "currentLimit": limit})

    def covered_s(self, spec: TaskSpec) -> float:
        """Seconds of media a task for ``spec`` processes (0 when the source is not media)."""
        media = self.media(spec.source, spec.url)
        if media.error or bounds_error(spec, media):
            return 0.0
        end = spec.end_sec if spec.end_sec is not None else media.duration
        return max(0.0, min(end, media.duration) - spec.start_sec)

    def create_task(self, spec: TaskSpec) -> Task:
        """Create and count a task for ``spec``."""
        media = self.media(spec.source, spec.url)
        seconds = self.config.processing_s(self.covered_s(spec))
        task = self.store.add(spec, media, seconds, (self.config.fail_rate, self.config.stuck_rate))
        self.stats.created(spec.source, spec.model)
        return task

    def status(self, task: Task) -> str:
        """``task``'s status now, on the sandbox clock."""
        return task.status(self.clock.mono())

    def media(self, source: str, url: str | None) -> Media:
        """What the media behind ``source`` contains (its catalog entry, else its URL)."""
        return describe(source, url, self.entry(url), self.config.min_duration_s,
                        self.config.max_duration_s)

    def sync_video(self, spec: TaskSpec) -> Task:
        """A finished task-like view of a sync video embed; a 400 when the media cannot be used."""
        media = self.media(spec.source, spec.url)
        if media.error:
            raise invalid(media.error)
        if spec.start_sec >= media.duration:
            raise invalid(f"start_sec ({spec.start_sec}) is beyond the media duration "
                          f"({media.duration} s).")
        task = Task("sync", spec, media, self.clock.now(), self.clock.mono(), 0.0)
        self.check_sync_duration(spec.model, task.end - task.start)
        return task

    def check_sync_duration(self, model: str, seconds: float) -> None:
        """A 400 when ``seconds`` of audio/video is more than a sync embed takes."""
        limit = SYNC_VIDEO_MAX_S[model]
        if seconds > limit:
            raise invalid(f"Duration ({seconds:.1f} seconds) exceeds maximum limit of "
                          f"{limit:.0f} seconds.")

    def media_words(self, url: str) -> tuple[str, ...]:
        """The words a sync embed sees in an image or document URL."""
        return image_words(url, self.entry(url))

    def entry(self, url: str | None) -> catalog_file.Entry | None:
        """The catalog entry of ``url``, or of the entry whose video file ``url`` addresses."""
        if not url:
            return None
        found = self.catalog.get(url)
        if found is None and (original := catalog_file.catalog_url(url)) is not None:
            found = self.catalog.get(original) or self.catalog.get("http" + original.removeprefix("https"))
        return found


SANDBOX = web.AppKey("sandbox", Sandbox)
