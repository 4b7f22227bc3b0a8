"""Quotas and injected faults, reproducible from the seed.

- ``TokenBucket``: requests per minute with a burst of one minute's worth; ``take()`` answers
  whether a request may pass and the numbers for the ``X-Ratelimit-*`` and ``Retry-After`` headers.
- ``Dice``: one ``random.Random`` per fault kind, seeded from (seed, kind), so the sequence of
  outcomes of each kind is the same on every run with the same seed and request order.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """Outcome of one ``TokenBucket.take``."""

    allowed: bool
    limit: int
    remaining: int
    reset_epoch: int
    retry_after_s: float

    def headers(self) -> dict[str, str]:
        """The ``X-Ratelimit-*`` headers of this verdict."""
        return {
            "X-Ratelimit-Limit": str(self.limit),
            "X-Ratelimit-Remaining": str(self.remaining),
            "X-Ratelimit-Used": str(self.limit - self.remaining),
            "X-Ratelimit-Reset": str(self.reset_epoch),
        }


class TokenBucket:
    """A global requests-per-minute bucket; ``rpm`` 0 means unlimited."""

    def __init__(self, rpm: int) -> None:
        self.rpm = rpm
        self.tokens = float(rpm)
        self.stamp = time.monotonic()

    def configure(self, rpm: int) -> None:
        """Change the rate; a bucket that changes size starts full."""
        if rpm != self.rpm:
            self.rpm = rpm
            self.tokens = float(rpm)
            self.stamp = time.monotonic()

    def _refill(self, now: float) -> None:
        rate = self.rpm / 60.0
        self.tokens = min(float(self.rpm), self.tokens + (now - self.stamp) * rate)
        self.stamp = now

    def take(self) -> Verdict | None:
        """Spend a token; ``None`` when unlimited."""
        if self.rpm <= 0:
            return None
        now = time.monotonic()
        self._refill(now)
        allowed = self.tokens >= 1.0
        if allowed:
            self.tokens -= 1.0
        wait = 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) * 60.0 / self.rpm
        return Verdict(allowed, self.rpm, int(self.tokens), math.ceil(time.time() + wait), wait)


class Dice:
    """Seeded random streams, one per fault kind."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._streams: dict[str, random.Random] = {}

    def stream(self, kind: str) -> random.Random:
        """The generator of ``kind`` (created on first use from the seed)."""
        rng = self._streams.get(kind)
        if rng is None:
            digest = hashlib.blake2b(f"{self.seed}:{kind}".encode(), digest_size=8).digest()
            rng = random.Random(int.from_bytes(digest, "little"))
            self._streams[kind] = rng
        return rng

    def roll(self, kind: str, rate: float) -> bool:
        """True with probability ``rate`` (no draw at all when the rate is 0)."""
        if rate <= 0.0:
            return False
        return self.stream(kind).random() < rate
