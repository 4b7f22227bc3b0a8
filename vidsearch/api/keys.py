"""API keys of ``vidsearch serve``: only their SHA-256 digests are stored, in settings.

A key is 32 random bytes, URL-safe base64 with the prefix ``vsk_`` (``new_key``). The setting
``api_keys`` holds one entry per key, ``name:role:sha256-hex``, where ``role`` is ``read`` (search)
or ``admin`` (search and jobs) and ``name`` identifies the key in logs and in its rate bucket (the
key itself never appears anywhere). A plain SHA-256 suffices because keys are random and long: there
is nothing to guess from a digest, and a slow password hash would cost every request.

``KeyRing.authenticate`` hashes the presented key and compares it with every stored digest in
constant time. The entry's shape is settings' ``API_KEY_ENTRY``, which validates entries at load.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pipeline.settings import API_KEY_ENTRY, API_KEY_SHAPE

Role = Literal["read", "admin"]
ROLES: tuple[Role, ...] = ("read", "admin")
KEY_PREFIX = "vsk_"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key: its name, role and digest (never the key)."""

    name: str
    role: Role
    digest: str

    def allows(self, needed: Role) -> bool:
        return needed == "read" or self.role == "admin"

    def entry(self) -> str:
        return f"{self.name}:{self.role}:{self.digest}"


def digest(key: str) -> str:
    """The SHA-256 hex digest of a presented key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh random key (show it once; store only its digest)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def parse_entry(entry: str) -> ApiKey:
    """``name:role:sha256-hex`` -> ApiKey; ValueError with the expected shape otherwise."""
    match = API_KEY_ENTRY.match(entry.strip())
    if match is None:
        raise ValueError(API_KEY_SHAPE)
    role: Role = "admin" if match["role"] == "admin" else "read"
    return ApiKey(match["name"], role, match["digest"])


class KeyRing:
    """The configured keys; empty means no key is accepted (loopback-only mode)."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self.keys = tuple(keys)
        names = [k.name for k in self.keys]
        if len(set(names)) != len(names):
            raise ValueError("api_keys names must be unique")

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> KeyRing:
        return cls(parse_entry(e) for e in entries)

    def __bool__(self) -> bool:
        return bool(self.keys)

    def authenticate(self, presented: str) -> ApiKey | None:
        """The key whose digest matches, compared in constant time against every stored one."""
        wanted = digest(presented)
        found: ApiKey | None = None
        for key in self.keys:
            if hmac.compare_digest(key.digest, wanted):
                found = key
        return found
