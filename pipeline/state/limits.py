"""The quota's window dimensions: requests per day, media minutes per hour and per day, and the
daily spend budget, in one Redis hash shared by every worker on every host.

Twelve Labs counts requests per minute (``pipeline/state/quota.py``'s token bucket) and per day,
and minutes of media per hour and per day, per organisation; exceeding any one is a 429. Here
each other dimension is a fixed window (``used`` of ``limit`` until ``reset``; a limited window
admits nothing in its last two tick intervals, whose creates would reach the service in the next
window):

* the limit and the window come from settings (the plan's figures), and are learned from the
  ``X-Ratelimit-*`` headers of every answer that names its dimension (``X-Ratelimit-Resource``):
  the server's limit and reset replace ours, its ``Used`` raises ours (other clients of the
  organisation count too) and never lowers it (our estimates of tasks not yet created count);
* admission asks ``fit`` how many of the next items (their estimated media minutes, in order) fit
  in every window, and ``charge``s the admitted ones; a window that refuses one holds admission
  for every worker until its reset (``Hold``); ``reconcile`` corrects an estimate by what the
  finished task covered;
* a 429 that names its dimension marks that window spent until its reset (``spent``);
* until an answer has been heard (``heard``), admission sends one create at a time, so the
  service's headers speak before a burst goes out on figures nobody has checked; so it does while
  a media window is limited and the next item's minutes are only a guess (no ``duration_s``, no
  finished task yet), so the first finished task teaches the estimate before a burst.

The daily budget (``daily_media_minutes_budget``) is a window of its own that no header changes.
Redis' clock (``TIME``) is the only clock, as in the token bucket.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from pipeline.settings import Settings

DAY_S = 86400.0
REQUESTS, MINUTES = "requests", "minutes"
PAUSE = "429-pause"
"""The name of the hold a 429's Retry-After or reset put on the whole quota."""

# Shared helpers: roll a window to the current one; read its limit (learned, else the setting).
_LIB = """
local function now_s()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1e6
end
local function roll(h, d, w, now)
  local reset = tonumber(redis.call('HGET', h, d .. ':reset'))
  if not reset then reset = (math.floor(now / w) + 1) * w end
  if now >= reset then
    reset = reset + math.max(1, math.ceil((now - reset) / w)) * w
    redis.call('HSET', h, d .. ':used', 0)
  end
  redis.call('HSET', h, d .. ':reset', tostring(reset))
  return reset, tonumber(redis.call('HGET', h, d .. ':used')) or 0
end
local function limit_of(h, d, setting)
  return tonumber(redis.call('HGET', h, d .. ':limit')) or tonumber(setting)
end
"""

# KEYS: hash. ARGV: commit (0/1), guard_s, D, then D x (name, unit, window_s, limit), then amounts
# (minutes). Returns {how many amounts fit in order, the refusing dimension or '', its reset}.
# A limited window admits nothing in its last guard_s: a create admitted then would reach the
# service in its next window, which we would not have charged.
_FIT = _LIB + """
local h, commit, guard, D = KEYS[1], ARGV[1] == '1', tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_s()
local first = 4 + 4 * D
local fit, held, held_until = #ARGV - first + 1, '', '0'
for i = 0, D - 1 do
  local d, unit, w = ARGV[4 + 4 * i], ARGV[5 + 4 * i], tonumber(ARGV[6 + 4 * i])
  local lim = limit_of(h, d, ARGV[7 + 4 * i])
  local reset, used = roll(h, d, w, now)
  if lim > 0 and reset - now < guard then
    fit, held, held_until = 0, d, tostring(reset)
  elseif lim > 0 then
    local k, total = 0, used
    for j = first, #ARGV do
      local amount = unit == 'requests' and 1 or tonumber(ARGV[j])
      if total + amount > lim and not (unit == 'minutes' and total == 0) then break end
      total, k = total + amount, k + 1
    end
    if k < fit then fit, held, held_until = k, d, tostring(reset) end
  end
end
if commit then
  for i = 0, D - 1 do
    local d, unit = ARGV[4 + 4 * i], ARGV[5 + 4 * i]
    local add = 0
    for j = first, first + fit - 1 do
      add = add + (unit == 'requests' and 1 or tonumber(ARGV[j]))
    end
    if add ~= 0 then redis.call('HINCRBYFLOAT', h, d .. ':used', add) end
  end
end
redis.call('EXPIRE', h, 2 * 86400)
return {fit, held, held_until}
"""

# KEYS: hash. ARGV: name, window_s, limit, used, reset (epoch s). What a server's headers said.
_LEARN = _LIB + """
local h, d, w = KEYS[1], ARGV[1], tonumber(ARGV[2])
local now = now_s()
local _, used = roll(h, d, w, now)
local reset = tonumber(ARGV[5])
if reset > now then redis.call('HSET', h, d .. ':reset', ARGV[5]) end
redis.call('HSET', h, d .. ':limit', ARGV[3])
if tonumber(ARGV[4]) > used then redis.call('HSET', h, d .. ':used', ARGV[4]) end
redis.call('EXPIRE', h, 2 * 86400)
return 1
"""


@dataclass(frozen=True, slots=True)
class Dimension:
    name: str
    unit: str
    window_s: float
    limit: float
    learned: bool = True
    """Whether the server's headers may change it (not for our own budget)."""


@dataclass(frozen=True, slots=True)
class Hold:
    """Admission waits: ``dimension`` is spent until ``until`` (epoch seconds)."""

    dimension: str
    until: float


@dataclass(frozen=True, slots=True)
class Fit:
    count: int
    hold: Hold | None


def dimensions(s: Settings) -> list[Dimension]:
    """The window dimensions the settings describe (a limit of 0: none)."""
    return [
        Dimension("requests-day", REQUESTS, DAY_S, float(s.rate_limit_per_day)),
        Dimension("media-minutes-hour", MINUTES, s.media_window_s, s.media_minutes_per_hour),
        Dimension("media-minutes-day", MINUTES, DAY_S, s.media_minutes_per_day),
        Dimension("budget-day", MINUTES, DAY_S, s.daily_media_minutes_budget, learned=False),
    ]


def header_values(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """The ``x-ratelimit-*`` headers of an answer, by lower-case suffix (``limit``, ``reset``...)."""
    out: dict[str, str] = {}
    for name, value in (headers or {}).items():
        lowered = str(name).lower()
        if lowered.startswith("x-ratelimit-"):
            out[lowered.removeprefix("x-ratelimit-")] = str(value)
    return out


class Limits:
    """The window dimensions of the global quota (see the module docstring)."""

    def __init__(self, client: redis.Redis[bytes], key: str, settings: Settings) -> None:
        self.r = client
        self.key = key
        self.dims = dimensions(settings)
        self.guard_s = 2 * settings.tick_interval_s
        """A limited window admits nothing in its last ``guard_s`` (see ``_FIT``)."""
        self._fit = client.register_script(_FIT)
        self._learn = client.register_script(_LEARN)

    def _args(self, commit: bool, amounts: Sequence[float]) -> list[Any]:
        args: list[Any] = ["1" if commit else "0", self.guard_s, len(self.dims)]
        for d in self.dims:
            args += [d.name, d.unit, d.window_s, d.limit]
        return args + [f"{a:.4f}" for a in amounts]

    def fit(self, minutes: Sequence[float], commit: bool = False) -> Fit:
        """How many of ``minutes`` (one request each), in order, fit in every window now; with
        ``commit`` they are charged."""
        count, held, until = self._fit(keys=[self.key], args=self._args(commit, minutes))
        name = held.decode() if isinstance(held, bytes) else str(held)
        return Fit(int(count), Hold(name, float(until)) if name else None)

    def charge(self, minutes: Sequence[float]) -> Fit:
        """Charge the ``minutes`` that fit (in order); what fitted."""
        return self.fit(minutes, commit=True)

    def reconcile(self, delta_minutes: float) -> None:
        """Correct the media windows by ``delta_minutes`` (actual minus estimated; may be < 0)."""
        if abs(delta_minutes) < 1e-6:
            return
        pipe = self.r.pipeline(transaction=False)
        for d in self.dims:
            if d.unit == MINUTES:
                pipe.hincrbyfloat(self.key, f"{d.name}:used", delta_minutes)
        pipe.execute()

    def media_limited(self) -> bool:
        """Whether a media-minutes window has a limit (from the settings or learned)."""
        return any(d.startswith("media") for d in self.snapshot())

    def heard(self) -> bool:
        """Whether an answer of a paid call has come back since the windows were last empty."""
        return bool(self.r.hexists(self.key, "heard"))

    def learn(self, headers: Mapping[str, Any] | None) -> Dimension | None:
        """Take in what an answer's ``X-Ratelimit-*`` headers say; the dimension they named."""
        self.r.hset(self.key, "heard", 1)
        values = header_values(headers)
        dim = self._named(values.get("resource"))
        if dim is None:
            return None
        try:
            limit, used, reset = (float(values[k]) for k in ("limit", "used", "reset"))
        except (KeyError, ValueError):
            return None
        self._learn(keys=[self.key], args=[dim.name, dim.window_s, limit, used, reset])
        return dim

    def spent(self, headers: Mapping[str, Any] | None) -> Hold | None:
        """A 429's headers: the window they name is full until its reset; the hold, if named."""
        values = header_values(headers)
        dim = self._named(values.get("resource"))
        if dim is None or "reset" not in values:
            return None
        limit = values.get("limit", "0")
        values = {**values, "used": limit}
        self.learn({f"x-ratelimit-{k}": v for k, v in values.items()})
        return Hold(dim.name, float(values["reset"]))

    def _named(self, resource: str | None) -> Dimension | None:
        return next((d for d in self.dims if d.learned and d.name == resource), None)

    def snapshot(self) -> dict[str, dict[str, float]]:
        """Each window's limit (learned, else the setting), used and reset, for status."""
        raw = {k.decode(): v.decode() for k, v in self.r.hgetall(self.key).items()}
        out: dict[str, dict[str, float]] = {}
        for d in self.dims:
            limit = float(raw.get(f"{d.name}:limit", d.limit))
            if limit <= 0:
                continue
            reset = float(raw.get(f"{d.name}:reset", 0.0))
            out[d.name] = {"limit": limit, "used": round(float(raw.get(f"{d.name}:used", 0.0)), 2),
                           "reset": reset}
        return out


def retry_after_reset(headers: Mapping[str, Any] | None, now: float) -> float | None:
    """Seconds until an answer's ``X-Ratelimit-Reset`` (None when absent or past)."""
    raw = header_values(headers).get("reset")
    try:
        reset = float(raw) if raw is not None else math.nan
    except ValueError:
        return None
    return reset - now if reset > now else None
