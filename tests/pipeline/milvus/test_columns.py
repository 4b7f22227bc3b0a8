"""Column-wise batches: the wire message carries exactly the segments' values."""

from __future__ import annotations

import json

import numpy as np

from pipeline.milvus.columns import Columns, columns_of, metadata_json, request, vector_field
from pipeline.segments import Segment, pack_vector

DIM = 8


def segment(i: int, pk: str | None = None) -> Segment:
    rng = np.random.default_rng(i)
    return Segment(
        pk=pk or f"{i:032x}", item_key="i" * 32, job_id="job", url=f"https://v.example.com/{i}.mp4",
        category=f"c{i % 3}", title=f"title {i}", metadata=f'{{"n": {i}}}', model="marengo3.0",
        option="visual", scope="clip", start_s=float(i), end_s=float(i) + 6.0,
        vector=pack_vector(rng.random(DIM).tolist()),
    )


def columns(segments: list[Segment]) -> Columns:
    meta = [metadata_json(json.loads(s.metadata)) for s in segments]
    return columns_of(segments, DIM, 1234, meta, [s.title for s in segments])


def test_vectors_go_from_packed_bytes_into_the_message_unchanged() -> None:
    segments = [segment(i) for i in range(5)]
    field = vector_field(columns(segments).vectors)
    assert field.vectors.dim == DIM
    got = np.asarray(field.vectors.float_vector.data, dtype=np.float32).reshape(5, DIM)
    want = np.stack([np.frombuffer(s.vector, dtype="<f4") for s in segments])
    assert np.array_equal(got, want)


def test_a_request_holds_every_field_with_one_value_per_row() -> None:
    segments = [segment(i) for i in range(3)]
    message = request("coll", columns(segments), upsert=True)
    assert message.collection_name == "coll" and message.num_rows == 3
    fields = {f.field_name: f for f in message.fields_data}
    assert list(fields["pk"].scalars.string_data.data) == [s.pk for s in segments]
    assert list(fields["category"].scalars.string_data.data) == ["c0", "c1", "c2"]
    assert list(fields["end_s"].scalars.double_data.data) == [6.0, 7.0, 8.0]
    assert list(fields["ingested_at"].scalars.long_data.data) == [1234] * 3
    assert [json.loads(b) for b in fields["metadata"].scalars.json_data.data] == [{"n": i} for i in range(3)]
    assert len(fields["vector"].vectors.float_vector.data) == 3 * DIM
    assert type(request("coll", columns(segments), upsert=False)).__name__ == "InsertRequest"


def test_unique_keeps_the_last_row_of_a_repeated_pk_and_slice_keeps_rows_aligned() -> None:
    segments = [segment(1, pk="a"), segment(2, pk="b"), segment(3, pk="a")]
    unique = columns(segments).unique()
    assert unique.pks == ["b", "a"]
    assert unique.scalars["title"] == ["title 2", "title 3"]
    assert np.array_equal(unique.vectors[1], np.frombuffer(segments[2].vector, dtype="<f4"))
    half = unique.slice(1, 2)
    assert half.pks == ["a"] and half.scalars["title"] == ["title 3"] and half.vectors.shape == (1, DIM)
