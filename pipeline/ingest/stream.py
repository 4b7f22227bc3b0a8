"""The segment stream: its consumer group, its backlog, and how entries leave it.

The stream ``{prefix}:segments`` is a buffer, not a store: an entry leaves Redis in the same
transaction that acknowledges it (``settle``: XACK and XDEL in one MULTI), which the writer runs
only after Milvus accepted the entry's row and the ledger recorded it. ``trim_settled`` removes
what an earlier writer acknowledged without deleting (a stream written before deletion on
acknowledgement existed, or a crash between two steps of an older writer): every entry older than
both the group's oldest pending entry and its last delivered id is acknowledged, so XTRIM MINID
drops exactly those.

Dead letters (``{prefix}:segments:dead``) keep what an operator needs to find and re-drive the
failed item (``vidsearch failures JOB``, ``vidsearch retry JOB``): the entry's ids, its segment's
place in the video, the reason; not the vector, URL, title or metadata (the failed item's ledger
record keeps those). The stream is capped at ``dead_letter_max_entries``; entries pushed out past
the cap are counted in ``{prefix}:metrics`` field ``dl:dropped`` (``dead_letters_dropped``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import redis

from pipeline.metrics.recorder import metrics_key
from pipeline.settings import Settings
from pipeline.state.keys import Keys

GROUP = "writers"
DROPPED_FIELD = "dl:dropped"
"""The field of ``{prefix}:metrics`` counting dead letters pushed out past the cap."""
DEAD_FIELDS = (b"pk", b"ik", b"j", b"md", b"o", b"sc", b"s", b"e", b"cl")
"""The fields of a segment entry a dead letter keeps (besides ``reason`` and ``entry_id``)."""

# KEYS: stream, dead stream, metrics hash. ARGV: group, entry id, cap, then field, value pairs.
# Adds the dead letter (capped), acknowledges and deletes the entry; returns how many old dead
# letters the cap pushed out (counted in the metrics hash).
_DEAD_LETTER = """
local before = redis.call('XLEN', KEYS[2])
local cap = tonumber(ARGV[3])
redis.call('XADD', KEYS[2], 'MAXLEN', cap, '*', unpack(ARGV, 4))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
local dropped = math.max(0, before + 1 - cap)
if dropped > 0 then redis.call('HINCRBY', KEYS[3], 'dl:dropped', dropped) end
return dropped
"""


def stream_backlog(client: redis.Redis[bytes], settings: Settings) -> int:
    """Entries the writers still owe: not yet delivered (group lag) plus pending (unacked).

    Redis cannot always tell the lag once entries were deleted out of order (acknowledged ahead
    of an older pending one); then the stream's length is the answer, since the entries left in
    it are exactly those not yet acknowledged (``settle``)."""
    stream = Keys(settings.redis_prefix).segments
    info = _group_info(client, stream)
    lag = info.get("lag") if info is not None else None
    if info is None or lag is None:
        return int(client.xlen(stream))
    return int(lag) + int(info["pending"])


def _group_info(client: redis.Redis[bytes], stream: str) -> dict[str, Any] | None:
    try:
        groups = client.xinfo_groups(stream)  # type: ignore[no-untyped-call]
    except redis.ResponseError:  # no such stream
        return None
    for info in groups:
        if _text(info["name"]) == GROUP:
            return dict(info)
    return None


def settle(client: redis.Redis[bytes], stream: str, ids: Sequence[str]) -> None:
    """Acknowledge ``ids`` and delete them from the stream, in one transaction."""
    if not ids:
        return
    pipe = client.pipeline(transaction=True)
    pipe.xack(stream, GROUP, *ids)
    pipe.xdel(stream, *ids)
    pipe.execute()


def trim_settled(client: redis.Redis[bytes], stream: str) -> int:
    """Remove every entry the group has acknowledged and left in the stream; returns how many.

    Safe while writers run: entries below both the oldest pending id and the group's last
    delivered id were delivered and are not pending, and no later delivery can make them pending.
    """
    info = _group_info(client, stream)
    if info is None:
        return 0
    threshold = _successor(_text(info["last-delivered-id"]))
    summary = client.xpending(stream, GROUP)  # type: ignore[no-untyped-call]
    if int(summary["pending"]) and summary["min"] is not None:
        threshold = min(threshold, _text(summary["min"]), key=_id_order)
    return int(client.xtrim(stream, minid=threshold, approximate=False))


def dead_letter(
    client: redis.Redis[bytes], keys: Keys, entry_id: str, record: Mapping[bytes, bytes], cap: int
) -> int:
    """Move one entry to the dead stream (capped at ``cap``); returns the dead letters dropped."""
    args: list[Any] = [GROUP, entry_id, cap]
    for name, value in record.items():
        args += [name, value]
    script = client.register_script(_DEAD_LETTER)
    return int(script(keys=[keys.segments, keys.dead, metrics_key(keys.prefix)], args=args))


def dead_record(fields: Mapping[Any, Any], entry_id: str, reason: str) -> dict[bytes, bytes]:
    """What a dead letter keeps of a segment entry: ids, place, reason (``DEAD_FIELDS``)."""
    record = {name: _bytes(fields[name]) for name in DEAD_FIELDS if name in fields}
    record[b"reason"] = reason.encode()
    record[b"entry_id"] = entry_id.encode()
    return record


def dead_letters_dropped(client: redis.Redis[bytes], prefix: str) -> int:
    """Dead letters pushed out of the capped dead stream so far (fleet-wide)."""
    return int(client.hget(metrics_key(prefix), DROPPED_FIELD) or 0)


def _successor(entry_id: str) -> str:
    ms, _, seq = entry_id.partition("-")
    return f"{ms}-{int(seq or 0) + 1}"


def _id_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()
