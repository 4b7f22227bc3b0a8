"""A collection's generation: a counter that moves whenever new rows became visible in it.

The writer bumps ``{prefix}:gen:{collection}`` (INCR) after every flush that made rows visible
(``pipeline/ingest/writer.py``). Readers key what they compute from the collection's contents by
it, so a bump retires all of it at once: cached search results
(``pipeline/search/result_cache.py``) and the analytics video set (``pipeline/analytics/cache.py``).
A collection never bumped is at generation 0. The counter is shared Redis state, read and bumped
by any process on any host; it is never reset (an entry keyed by an old generation is simply never
read again).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis

from pipeline.state.keys import Keys

if TYPE_CHECKING:
    Redis = redis.Redis[bytes]
else:
    Redis = redis.Redis


def current_generation(client: Redis, keys: Keys, collection: str) -> int:
    """The generation of ``collection`` (0 before its first bump)."""
    raw = client.get(keys.generation(collection))
    return int(raw) if raw is not None else 0


def bump_generation(client: Redis, keys: Keys, collection: str) -> int:
    """Move ``collection`` to its next generation and return it (the writer, after a flush)."""
    return int(client.incr(keys.generation(collection)))
