"""Server capabilities and request limits from a version string (no server needed)."""

from __future__ import annotations

import pytest
from milvus_lite.constants import MAX_SEGMENT_ROWS

from pipeline.milvus.capabilities import (
    LITE_SEGMENT_ROWS,
    capabilities_of,
    iterator_batch,
    parse_version,
    upsert_misroutes,
)


def test_upsert_misroutes_below_2_3_10_only() -> None:
    assert upsert_misroutes("v2.3.5-lite")
    assert upsert_misroutes("2.2.16")
    assert not upsert_misroutes("v2.3.10")
    assert not upsert_misroutes("v2.4.0")
    assert not upsert_misroutes("v2.6.3")
    assert not upsert_misroutes("milvus_lite-3.2.2")


def test_a_version_is_read_from_its_leading_numbers() -> None:
    assert parse_version("v2.3.5-lite") == (2, 3, 5)
    assert parse_version(" 2.5.10 ") == (2, 5, 10)
    assert parse_version("milvus_lite-3.2.2") is None


@pytest.mark.parametrize(("version", "grouping", "hybrid"), [
    ("milvus_lite-3.2.2", True, True), ("v2.3.5-lite", False, False), ("v2.3.5", False, False),
    ("v2.4.10", False, True), ("v2.5.4", True, True), ("v3.0.0", True, True),
    ("something else", False, False),
])
def test_capabilities_follow_the_server_version(version: str, grouping: bool, hybrid: bool) -> None:
    caps = capabilities_of(version)
    assert (caps.version, caps.grouping, caps.hybrid) == (version, grouping, hybrid)


def test_only_milvus_lite_needs_an_ef_over_its_largest_segment_for_an_exact_filtered_search() -> None:
    assert capabilities_of("milvus_lite-3.2.2").exact_ef == LITE_SEGMENT_ROWS == 100_000
    assert capabilities_of("v2.3.5-lite").exact_ef == 0
    assert capabilities_of("v2.5.4").exact_ef == 0


def test_the_exact_ef_covers_the_largest_segment_of_the_installed_milvus_lite() -> None:
    assert LITE_SEGMENT_ROWS >= MAX_SEGMENT_ROWS


def test_iterator_batches_keep_one_answer_under_the_message_budget() -> None:
    assert iterator_batch(4000, 512, 16, with_vector=True) == 819  # 32 MB / (16 x 2,560 B)
    assert iterator_batch(4000, 512, 16, with_vector=False) == 4000  # keys only: as asked
    assert iterator_batch(4000, 512, 1, with_vector=True) == 4000
    assert iterator_batch(4000, 32768, 1024, with_vector=True) == 1  # never zero
