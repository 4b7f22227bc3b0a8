"""What a Milvus server can do, from its version string, and the limits a request must keep.

The store reads the version once per connection (``MilvusStore.server_version``); everything here
is plain logic on that string, so it is tested without a server. Versions met in practice:
``milvus_lite-3.2.2`` (Milvus Lite) and ``v2.3.5-lite`` (the ``milvus`` 2.3.5 server wheel).

* Search: ``hybrid_search`` came in Milvus 2.4, ``group_by_field`` with ``group_size`` in 2.5;
  Milvus Lite 3.x has both. Milvus 2.3 has neither, and does not refuse a grouping search: it
  ignores ``group_by_field`` and answers ungrouped rows, so the version decides, not a probe.
* Upsert: servers before 2.3.10 hash the wrong field when an upsert routes rows by partition key
  (milvus-io/milvus#30607, fixed by #30773): the rows land in another category's partition and
  category-filtered searches miss them (:func:`upsert_misroutes`; the store then writes a delete
  followed by an insert).
* Exact filtered searches: Milvus Lite 3.x searches a segment with its HNSW index (FAISS, once
  the background build after a flush has made it; brute force before) and applies a filter
  *inside* the graph walk (an ``IDSelector``): the walk stops after about ``ef`` nodes, so a
  selective filter (a few videos' rows of one option) misses most of the rows it matches, unless
  ``ef`` covers the whole segment (:attr:`Capabilities.exact_ef`: Lite's largest segment).
* Limits: ``topk`` of one search (:data:`MAX_SEARCH_LIMIT`) and the size of one query-iterator
  answer (:func:`iterator_batch`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UPSERT_ROUTING_FIXED = (2, 3, 10)
"""First Milvus release whose upsert routes partition-key rows right (milvus-io/milvus#30773)."""
MAX_SEARCH_LIMIT = 16384
"""Milvus's upper bound on ``limit`` (topk) of one search."""
LITE_SEGMENT_ROWS = 100_000
"""Milvus Lite 3.x's largest compacted segment (its ``MAX_SEGMENT_ROWS``; a flush writes the
memtable's 128 MB, about 50,000 rows of 512-d): an HNSW ``ef`` of that many walks every node of
such a segment, so a filtered search returns every row the filter matches (FAISS HNSW, 6,000
rows: ``ef`` 6,000 found all 67 rows a 1 % filter matched, ``ef`` 128 found 11). A walk ends when
the graph is exhausted, so a smaller segment costs what a brute-force scan of it would."""
MAX_GROUP_SIZE = 100
"""The largest ``group_size`` of a grouping search: Milvus Lite 3.2 answers a larger one with no
rows at all, without an error (measured; Milvus 2.5's default ``maxGroupSize`` is lower still,
so a caller that needs more rows per group searches per group)."""
QUERY_MESSAGE_BYTES = 32 * 1024 * 1024
"""What one query-iterator batch may weigh: half the 64 MB a Milvus proxy sends by default. A 2.3
server answers a batch of ``n`` with up to ``n`` rows from every partition (12 partitions x 4,000
rows of 512-d came to 101 MB and were refused), so the batch is sized per row and partition."""
ROW_SCALAR_BYTES = 512
"""An estimate of a row's fields besides its vector (pk, keys, url, title ...); longer rows fit in
the half of the proxy's maximum that ``QUERY_MESSAGE_BYTES`` leaves."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a Milvus server can do for search (see ``capabilities_of``)."""

    version: str
    grouping: bool
    hybrid: bool
    exact_ef: int = 0
    """The HNSW ``ef`` that makes a filtered search return every matching row (0: the
    configured ``ef`` is kept; a 2.x server walks its graph with the filter as a bitset)."""


def parse_version(text: str) -> tuple[int, ...] | None:
    """``(2, 3, 5)`` from ``v2.3.5-lite``; None when the text names no version."""
    match = re.match(r"v?(\d+)\.(\d+)\.(\d+)", text.strip())
    return tuple(int(part) for part in match.groups()) if match else None


def capabilities_of(version: str) -> Capabilities:
    """Grouping search with ``group_size`` and ``hybrid_search`` from a server version string
    (an unknown version is assumed to have neither: the client-side paths always work)."""
    if version.startswith("milvus_lite"):
        return Capabilities(version, grouping=True, hybrid=True, exact_ef=LITE_SEGMENT_ROWS)
    release = parse_version(version)
    if release is None:
        return Capabilities(version, grouping=False, hybrid=False)
    return Capabilities(version, grouping=release >= (2, 5), hybrid=release >= (2, 4))


def upsert_misroutes(version: str) -> bool:
    """Whether a server of ``version`` upserts partition-key rows into the wrong partition."""
    parsed = parse_version(version)
    return parsed is not None and parsed < UPSERT_ROUTING_FIXED


def iterator_batch(requested: int, dimension: int, partitions: int, with_vector: bool) -> int:
    """The rows per query-iterator batch (at most ``requested``) that keep one answer within
    ``QUERY_MESSAGE_BYTES`` when every partition fills the batch."""
    row = ROW_SCALAR_BYTES + (4 * dimension if with_vector else 0)
    return max(1, min(requested, QUERY_MESSAGE_BYTES // (row * max(1, partitions))))
