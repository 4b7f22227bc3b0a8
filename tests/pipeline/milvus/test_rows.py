"""Segments to rows and columns: what fits, why the rest never will, and hits from answers."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import DimensionMismatchError, InvalidSegmentError
from pipeline.milvus.rows import check_segment, hit_of, prepare, title_of, to_row
from pipeline.segments import Segment, pack_vector

DIM = 4


def segment(i: int, **fields: object) -> Segment:
    values: dict[str, object] = {
        "pk": f"{i:032x}", "item_key": "k" * 32, "job_id": "job", "url": f"https://v.example/{i}",
        "category": "news", "title": f"title {i}", "metadata": f'{{"n": {i}}}', "model": "m",
        "option": "visual", "scope": "clip", "start_s": float(i), "end_s": float(i + 1),
        "vector": pack_vector([float(i)] * DIM),
    }
    values.update(fields)
    return Segment(**values)  # type: ignore[arg-type]


def test_a_row_carries_every_field_with_the_vector_as_float32() -> None:
    row = to_row(segment(3), DIM, "c", ingested_at_ms=1234)
    assert row["pk"] == f"{3:032x}"
    assert row["vector"].dtype == np.float32 and row["vector"].tolist() == [3.0] * DIM
    assert (row["metadata"], row["ingested_at"], row["title"]) == ({"n": 3}, 1234, "title 3")


def test_what_can_never_fit_is_refused_with_its_reason() -> None:
    with pytest.raises(DimensionMismatchError, match="dimension 2, collection c has vector dimension 4"):
        check_segment(segment(1, vector=pack_vector([1.0, 2.0])), DIM, "c")
    with pytest.raises(InvalidSegmentError, match="metadata is not JSON"):
        check_segment(segment(1, metadata="{"), DIM, "c")
    with pytest.raises(InvalidSegmentError, match="item_key is longer than 32 bytes"):
        check_segment(segment(1, item_key="k" * 33), DIM, "c")
    with pytest.raises(InvalidSegmentError, match="longer than 32 bytes"):
        check_segment(segment(1, pk="p" * 33), DIM, "c")
    assert check_segment(segment(1, metadata=""), DIM, "c") == {}


def test_a_long_title_is_cut_at_a_character_boundary() -> None:
    title = "\u00e9" * 300  # 600 bytes of UTF-8
    assert title_of(segment(1, title=title)) == "\u00e9" * 256
    assert title_of(segment(1, title=None)) == ""


def test_prepare_keeps_what_fits_and_says_why_the_rest_never_will() -> None:
    batch = [segment(0), segment(1, metadata="not json"), segment(2), segment(3, category="c" * 65)]
    kept, columns, rejects = prepare(batch, DIM, "c", ingested_at_ms=99)
    assert kept == [0, 2]
    assert columns.pks == [batch[0].pk, batch[2].pk]
    assert columns.scalars["ingested_at"] == [99, 99]
    assert [i for i, _reason in rejects] == [1, 3]
    assert "metadata is not JSON" in rejects[0][1]
    assert "category is longer than 64 bytes" in rejects[1][1]


def test_a_hit_is_read_from_an_answer_row_and_l2_distances_are_negated() -> None:
    raw = {"id": "p1", "distance": 0.25, "entity": {"url": "u", "start_s": 1, "end_s": 2}}
    assert hit_of(raw, negate=False).score == 0.25
    hit = hit_of(raw, negate=True)
    assert (hit.pk, hit.score, hit.url, hit.start_s, hit.end_s, hit.title) == ("p1", -0.25, "u", 1.0, 2.0, "")
