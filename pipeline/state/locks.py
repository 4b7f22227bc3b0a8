"""Fenced locks in Redis: each holder owns a random token and releases or extends only its own lock.

A plain ``SET NX`` + ``DEL`` lets a holder that outlived its lease (a paused process, a long
call) delete the lock of the next holder. Here the value is a random token, release is a Lua
compare-and-delete and extension a compare-and-pexpire, so a late holder changes nothing.
``FencedLock.token`` can travel to another process (in a task message) that then releases it.
"""

from __future__ import annotations

import secrets

import redis

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


def new_token() -> str:
    return secrets.token_hex(12)


class FencedLock:
    """One lock key; ``acquire`` takes it with a fresh token for ``lease_s`` seconds."""

    def __init__(self, client: redis.Redis[bytes], key: str, lease_s: float, token: str = "") -> None:
        self.r = client
        self.key = key
        self.lease_ms = max(1, int(lease_s * 1000))
        self.token = token or new_token()
        self._release = client.register_script(_RELEASE)
        self._extend = client.register_script(_EXTEND)

    def acquire(self) -> bool:
        """Take the lock if it is free; False when another holder has it."""
        return bool(self.r.set(self.key, self.token, nx=True, px=self.lease_ms))

    def release(self) -> bool:
        """Delete the lock if it is still ours; False when it expired or another holder took it."""
        return bool(self._release(keys=[self.key], args=[self.token]))

    def extend(self, lease_s: float | None = None) -> bool:
        """Push our lease ``lease_s`` (default: the lock's lease) from now; False if not ours."""
        ms = self.lease_ms if lease_s is None else max(1, int(lease_s * 1000))
        return bool(self._extend(keys=[self.key], args=[self.token, ms]))

    def held(self) -> bool:
        raw = self.r.get(self.key)
        return raw is not None and raw.decode() == self.token
