"""The organisation's rate limits, as Twelve Labs counts them, and the sandbox's movable clock.

Twelve Labs limits requests per minute and per day on every endpoint, and minutes of media per
hour and per day on video and audio endpoints; every embedding endpoint (v1 and v2, sync and
async) shares one counter per organisation, and exceeding any one dimension is a 429.
``OrgLimits`` keeps one fixed window per dimension (aligned on the clock: a minute, an hour
(``media_window_s``), a UTC day), all charged together by ``charge`` or not at all.

Media is charged in minutes of the range a request covers, when the request is accepted. A
request that would pass a media limit is refused, unless its window is still empty (a video longer
than a whole window passes alone, or it could never pass).

Marengo 3.5 requests also count their input tokens (``validation.task_tokens``: media by the
second, text by the word) per minute and per UTC day, refused as media is.

Every answer of a limited endpoint carries ``X-Ratelimit-Limit/-Remaining/-Used/-Reset`` (reset:
UTC epoch seconds) of the dimension nearest its limit, and ``X-Ratelimit-Resource`` naming it
(a sandbox addition, as GitHub names its resource, so a client can tell minutes from requests).

``Clock``: the epoch and monotonic clocks every task, window and retention check reads, which
``POST /_sandbox/clock`` moves forward (day windows and the 7-day retention without waiting).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

DAY_S = 86400.0


class Clock:
    """Wall and monotonic time, both shifted by ``offset_s`` (moved by the admin API)."""

    def __init__(self) -> None:
        self.offset_s = 0.0

    def now(self) -> float:
        return time.time() + self.offset_s

    def mono(self) -> float:
        return time.monotonic() + self.offset_s

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.offset_s += seconds


@dataclass
class Window:
    """One dimension's fixed window: ``limit`` per ``window_s`` seconds (0 = unlimited)."""

    name: str
    unit: str
    window_s: float
    limit: float
    start: float = 0.0
    used: float = 0.0

    def roll(self, now: float) -> None:
        start = math.floor(now / self.window_s) * self.window_s
        if start != self.start:
            self.start, self.used = start, 0.0

    def amount(self, media_minutes: float, tokens: float) -> float:
        """What one request of ``media_minutes`` and ``tokens`` counts in this window."""
        return {"requests": 1.0, "minutes": media_minutes, "tokens": tokens}[self.unit]

    def refuses(self, amount: float) -> bool:
        if self.limit <= 0 or amount <= 0:
            return False
        if self.unit == "requests":
            return self.used + amount > self.limit
        return self.used > 0 and self.used + amount > self.limit

    @property
    def reset(self) -> int:
        return math.ceil(self.start + self.window_s)

    def headers(self) -> dict[str, str]:
        used = math.ceil(self.used - 1e-9)
        return {
            "X-Ratelimit-Limit": str(int(self.limit)),
            "X-Ratelimit-Remaining": str(max(0, int(self.limit) - used)),
            "X-Ratelimit-Used": str(used),
            "X-Ratelimit-Reset": str(self.reset),
            "X-Ratelimit-Resource": self.name,
        }

    def describe(self) -> str:
        per = {60.0: "minute", 3600.0: "hour", DAY_S: "day"}.get(self.window_s, f"{self.window_s:g} s")
        what = {"requests": "requests", "minutes": "minutes of media",
                "tokens": "input tokens"}[self.unit]
        return f"{self.limit:g} {what} per {per}"


@dataclass(frozen=True)
class Refusal:
    """The window that refused a request."""

    window: Window
    headers: dict[str, str]


@dataclass
class OrgLimits:
    """The shared embedding counter: requests per minute and day, media minutes per window and day,
    Marengo 3.5 input tokens per minute and day."""

    windows: list[Window] = field(default_factory=list)

    @classmethod
    def build(cls, rpm: float, rpd: float, media_per_window: float, window_s: float,
              media_per_day: float, *, tokens: tuple[float, float] = (0.0, 0.0)) -> OrgLimits:
        return cls([
            Window("requests-minute", "requests", 60.0, rpm),
            Window("requests-day", "requests", DAY_S, rpd),
            Window("media-minutes-hour", "minutes", window_s, media_per_window),
            Window("media-minutes-day", "minutes", DAY_S, media_per_day),
            Window("tokens-minute", "tokens", 60.0, tokens[0]),
            Window("tokens-day", "tokens", DAY_S, tokens[1]),
        ])

    def charge(self, now: float, media_minutes: float, tokens: float = 0.0) -> dict[str, str] | Refusal:
        """Count one request of ``media_minutes`` and ``tokens`` in every window, or refuse it in
        none."""
        for w in self.windows:
            w.roll(now)
        for w in self.windows:
            if w.refuses(w.amount(media_minutes, tokens)):
                return Refusal(w, w.headers())
        for w in self.windows:
            w.used += w.amount(media_minutes, tokens)
        return self.headers()

    def headers(self) -> dict[str, str]:
        """The headers of the limited window nearest its limit (none when nothing is limited)."""
        limited = [w for w in self.windows if w.limit > 0]
        if not limited:
            return {}
        return min(limited, key=lambda w: (w.limit - w.used) / w.limit).headers()

    def snapshot(self) -> dict[str, dict[str, float]]:
        return {w.name: {"limit": w.limit, "used": round(w.used, 3), "reset": w.reset}
                for w in self.windows}
