"""Segment records: stream fields round-trip, vectors stay bit-exact, malformed entries are refused."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.segments import Segment, pack_vector, unpack_vector


def _segment(**changes: object) -> Segment:
    values: dict[str, object] = {
        "pk": "p" * 32,
        "item_key": "k" * 32,
        "job_id": "job-1",
        "url": "https://example.com/v.mp4",
        "category": "news",
        "title": "Titel ü",
        "metadata": '{"lang":"de"}',
        "model": "marengo3.0",
        "option": "visual",
        "scope": "clip",
        "start_s": 0.1,
        "end_s": 6.2,
        "vector": pack_vector([0.5, -1.25, 3.0]),
    }
    values.update(changes)
    return Segment(**values)  # type: ignore[arg-type]


def test_pack_vector_is_little_endian_float32() -> None:
    assert pack_vector([1.0, -2.5]) == struct.pack("<2f", 1.0, -2.5)
    assert unpack_vector(struct.pack("<2f", 1.0, -2.5)) == [1.0, -2.5]


def test_dim_counts_float32_values() -> None:
    assert _segment(vector=pack_vector([0.0] * 512)).dim == 512


def test_to_fields_uses_short_byte_keys_and_raw_vector_bytes() -> None:
    fields = _segment().to_fields()
    assert all(isinstance(k, bytes) and len(k) <= 2 for k in fields)
    assert all(isinstance(v, bytes) for v in fields.values())
    assert fields[b"v"] == pack_vector([0.5, -1.25, 3.0])
    assert fields[b"t"] == "Titel ü".encode()


def test_fields_round_trip_to_an_equal_segment() -> None:
    segment = _segment(start_s=1 / 3, end_s=2 / 3)
    assert Segment.from_fields(segment.to_fields()) == segment


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.pop(b"pk"), "missing field 'pk'"),
        (lambda f: f.update({b"s": b"soon"}), "field 's' is not a number"),
        (lambda f: f.update({b"e": b"nan"}), "field 'e' is not finite"),
        (lambda f: f.update({b"v": b"abc"}), "bad vector"),
        (lambda f: f.update({b"v": b""}), "bad vector"),
        (lambda f: f.update({b"u": b"\xff"}), "field 'u' is not UTF-8"),
        (lambda f: f.update({b"c": 5}), "field 'c' is not bytes"),
    ],
)
def test_from_fields_rejects_malformed_entries_with_a_clear_message(change, message: str) -> None:
    fields = _segment().to_fields()
    change(fields)
    with pytest.raises(ValueError, match=message):
        Segment.from_fields(fields)


def test_unpack_vector_rejects_a_length_not_multiple_of_four() -> None:
    with pytest.raises(ValueError, match="multiple of 4"):
        unpack_vector(b"\x00" * 6)


def test_approx_bytes_grows_with_the_vector_and_text() -> None:
    small = _segment(vector=pack_vector([0.0] * 4))
    big = _segment(vector=pack_vector([0.0] * 1024))
    assert big.approx_bytes() - small.approx_bytes() == 1020 * 4
    assert small.approx_bytes() > len(small.url) + len(small.title)


# --- properties ------------------------------------------------------------------------------

_f32 = st.floats(width=32, allow_nan=False)
_text = st.text(max_size=30)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(_f32, min_size=1, max_size=64),
    _text,
    _text,
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False, allow_infinity=False),
)
def test_segment_round_trips_and_float32_vectors_survive_bit_exactly(
    values: list[float], title: str, metadata: str, start: float, end: float
) -> None:
    segment = _segment(title=title, metadata=metadata, start_s=start, end_s=end, vector=pack_vector(values))
    again = Segment.from_fields(segment.to_fields())
    assert again == segment
    unpacked = again.values()
    assert np.array(unpacked, dtype="<f4").tobytes() == np.array(values, dtype="<f4").tobytes()
    assert all(math.copysign(1, a) == math.copysign(1, b) for a, b in zip(unpacked, values, strict=True))
