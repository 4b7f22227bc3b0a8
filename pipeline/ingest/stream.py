"""The segment stream's consumer group and its backlog (read by the writer, the tick and metrics)."""

from __future__ import annotations

import redis

from pipeline.settings import Settings
from pipeline.state.keys import Keys

GROUP = "writers"


def stream_backlog(client: redis.Redis[bytes], settings: Settings) -> int:
    """Entries the writers still owe: not yet delivered (group lag) plus pending (unacked)."""
    stream = Keys(settings.redis_prefix).segments
    try:
        groups = client.xinfo_groups(stream)  # type: ignore[no-untyped-call]
    except redis.ResponseError:  # no such stream
        return 0
    for info in groups:
        name = info["name"]
        if (name.decode() if isinstance(name, bytes) else name) == GROUP:
            lag = info.get("lag")
            undelivered = int(lag) if lag is not None else int(client.xlen(stream))
            return undelivered + int(info["pending"])
    return int(client.xlen(stream))
