"""The global Twelve Labs quota: one token bucket in Redis shared by every worker on every host.

Charged per paid request (task creation, sync embeds). A 429's ``Retry-After`` pauses the whole
bucket, so every worker backs off together, as the organisation-wide limit requires. Redis' own
clock (``TIME``) is the only clock used, so hosts with skewed clocks agree.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

# KEYS: bucket. ARGV: rate per second, burst, wanted. Returns {granted, seconds until a token}.
_TAKE = """
local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local h = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'pause_until')
local tokens = tonumber(h[1]) or burst
local ts = tonumber(h[2]) or now
local pause = tonumber(h[3]) or 0
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local granted = 0
if now >= pause then
  granted = math.min(want, math.floor(tokens))
  tokens = tokens - granted
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 86400)
local wait = 0
if now < pause then wait = pause - now
elseif granted < want then wait = (1 - (tokens - math.floor(tokens))) / rate end
return {granted, tostring(wait)}
"""

# KEYS: bucket. ARGV: seconds. Pauses the bucket until now + seconds (never shortens a pause).
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local until_ = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('HGET', KEYS[1], 'pause_until')) or 0
if until_ > cur then redis.call('HSET', KEYS[1], 'pause_until', tostring(until_)) end
redis.call('EXPIRE', KEYS[1], 86400)
return tostring(math.max(until_, cur))
"""


@dataclass(frozen=True, slots=True)
class Grant:
    granted: int
    wait_s: float


class Quota:
    """A token bucket of ``rate_per_min`` requests per minute and ``burst`` capacity."""

    def __init__(self, client: redis.Redis[bytes], key: str, rate_per_min: float, burst: int) -> None:
        self._client = client
        self.key = key
        self.rate_per_s = rate_per_min / 60.0
        self.burst = burst
        self._take = client.register_script(_TAKE)
        self._pause = client.register_script(_PAUSE)

    def take(self, wanted: int) -> Grant:
        """Take up to ``wanted`` tokens now; never blocks."""
        if wanted <= 0:
            return Grant(0, 0.0)
        granted, wait = self._take(keys=[self.key], args=[self.rate_per_s, self.burst, wanted])
        return Grant(int(granted), float(wait))

    def acquire(self, timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) for one token; used by retries of paid calls."""
        deadline = time.monotonic() + timeout_s
        while True:
            grant = self.take(1)
            if grant.granted:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(max(grant.wait_s, 0.01), left))

    def paused_until(self) -> float:
        """When the current 429 pause ends (epoch seconds; 0 when none was set)."""
        raw = self._client.hget(self.key, "pause_until")
        return float(raw) if raw is not None else 0.0

    def pause(self, seconds: float) -> None:
        """Stop granting tokens for ``seconds`` (a server's Retry-After)."""
        if seconds > 0:
            self._pause(keys=[self.key], args=[seconds])
