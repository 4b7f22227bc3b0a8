"""A collection's generation: a counter that moves whenever new rows became visible in it.

The writer bumps ``{prefix}:gen:{collection}`` (INCR) after every flush that made rows visible
(``pipeline/ingest/writer.py``). Readers key what they compute from the collection's contents by
it, so a bump retires all of it at once: cached search results
(``pipeline/search/result_cache.py``) and the analytics video set (``pipeline/analytics/cache.py``).
A collection never bumped is at generation 0. The counter is shared Redis state, read and bumped
by any process on any host; it is never reset (an entry keyed by an old generation is simply never
read again).

Rows can also vanish without a flush: Milvus' data lost and Milvus started empty, a collection
dropped and created again (``vidsearch restore``). Readers then compare the collection's
*identity* (``MilvusStore.collection_identity``: collection id and creation time, or "absent")
with the one recorded beside the generation (``{prefix}:gen:{collection}:identity``);
:func:`retire_if_changed` bumps the generation when they differ, so nothing computed from the
lost rows is read again.
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


def retire_if_changed(client: Redis, keys: Keys, collection: str, identity: str) -> bool:
    """Record ``identity`` as the collection's and bump its generation when it differs from the
    one recorded before (a first sighting counts as a change); True when it bumped."""
    previous = client.getset(keys.identity(collection), identity)
    if previous is not None and previous.decode() == identity:
        return False
    bump_generation(client, keys, collection)
    return True
