"""MilvusStore against Milvus Lite and a real Milvus server: collections, upserts, counts, errors."""

from __future__ import annotations

import time
import uuid
from typing import Any

import grpc
import numpy as np
import pytest
from pymilvus import DataType, MilvusClient

from pipeline.errors import (
    DimensionMismatchError,
    InvalidSegmentError,
    SchemaMismatchError,
    StoreRejectedError,
    StoreUnavailableError,
)
from pipeline.milvus.store import MilvusStore, translate
from pipeline.segments import Segment, pack_vector
from pipeline.settings import Settings, load_settings
from pipeline.spec import collection_name
from vidsearch.stack.services import free_port

pytestmark = pytest.mark.both_engines

MODEL = "marengo3.0"
DIM = 8


def make_settings(milvus_uri: str, **overrides: Any) -> Settings:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    return load_settings(milvus_uri=milvus_uri, collection_prefix=prefix, **overrides)


def make_segment(i: int, *, dim: int = DIM, item: str = "item0", **fields: object) -> Segment:
    rng = np.random.default_rng(i)
    values: dict[str, object] = {
        "pk": f"pk{i:030d}", "item_key": item, "job_id": "job1", "url": f"https://v.example/{item}",
        "category": "news", "title": f"title {i}", "metadata": f'{{"n": {i}}}', "model": MODEL,
        "option": "visual", "scope": "clip", "start_s": float(i), "end_s": float(i + 1),
        "vector": pack_vector(rng.random(dim).tolist()),
    }
    values.update(fields)
    return Segment(**values)  # type: ignore[arg-type]


@pytest.fixture
def store(milvus_uri: str) -> MilvusStore:
    """A store whose searches see its own writes at once (Strong; the default Bounded may not)."""
    return MilvusStore(make_settings(milvus_uri, search_consistency="Strong"))


def raw_client(uri: str) -> MilvusClient:
    return MilvusClient(uri=uri, timeout=10)


def test_ensure_collection_creates_partition_key_index_and_loads(
    store: MilvusStore, milvus_uri: str
) -> None:
    name = store.ensure_collection(MODEL, DIM)
    client = raw_client(milvus_uri)
    described = client.describe_collection(name)
    fields = {f["name"]: f for f in described["fields"]}
    assert fields["category"].get("is_partition_key") is True
    assert fields["pk"].get("is_primary") is True
    assert fields["vector"]["params"]["dim"] == DIM
    assert fields["metadata"]["type"] == DataType.JSON
    index = client.describe_index(name, "vector")
    assert (index["index_type"], index["metric_type"]) == ("HNSW", "COSINE")
    assert "Loaded" in str(client.get_load_state(name)["state"])


def test_second_ensure_is_a_no_op_that_keeps_rows(store: MilvusStore, milvus_uri: str) -> None:
    name = store.ensure_collection(MODEL, DIM)
    store.upsert(name, [make_segment(i) for i in range(5)])
    assert store.ensure_collection(MODEL, DIM) == name
    other = MilvusStore(store._settings)  # a fresh process: checks the existing schema
    assert other.ensure_collection(MODEL, DIM) == name
    assert other.count(name) == 5


def test_dimension_mismatch_names_both_sides(store: MilvusStore, milvus_uri: str) -> None:
    name = collection_name(store._settings.collection_prefix, MODEL, 16)
    raw_client(milvus_uri).create_collection(name, dimension=DIM, primary_field_name="pk",
                                             id_type="string", max_length=32)
    with pytest.raises(SchemaMismatchError) as caught:
        store.ensure_collection(MODEL, 16)
    message = str(caught.value)
    assert f"{name} has vector dimension {DIM}, settings ask for 16" in message
    assert raw_client(milvus_uri).has_collection(name)  # never dropped


def test_upsert_of_the_same_pk_twice_leaves_one_row(store: MilvusStore) -> None:
    name = store.ensure_collection(MODEL, DIM)
    store.upsert(name, [make_segment(1, title="first")])
    store.upsert(name, [make_segment(1, title="second")])
    assert store.count(name) == 1
    hits = store.search(name, [0.5] * DIM, limit=5)
    assert [h.title for h in hits] == ["second"]


def test_upsert_of_a_wrong_dimension_names_both_dimensions(store: MilvusStore) -> None:
    name = store.ensure_collection(MODEL, DIM)
    with pytest.raises(DimensionMismatchError) as caught:
        store.upsert(name, [make_segment(1), make_segment(2, dim=4)])
    assert "vector dimension 4" in str(caught.value)
    assert f"{name} has vector dimension {DIM}" in str(caught.value)
    assert store.count(name) == 0


def test_reject_reason_flags_bad_metadata_and_long_fields(store: MilvusStore) -> None:
    name = store.ensure_collection(MODEL, DIM)
    assert store.reject_reason(name, make_segment(1)) is None
    assert "metadata is not JSON" in (store.reject_reason(name, make_segment(2, metadata="{")) or "")
    assert "category" in (store.reject_reason(name, make_segment(3, category="c" * 65)) or "")
    with pytest.raises(InvalidSegmentError):
        store.upsert(name, [make_segment(4, metadata="not json")])


def test_count_and_rows_by_item_filter_by_item(store: MilvusStore) -> None:
    name = store.ensure_collection(MODEL, DIM)
    segments = [make_segment(i, item="a" * 32) for i in range(3)]
    segments += [make_segment(10 + i, item="b" * 32) for i in range(2)]
    store.upsert(name, segments)
    store.flush(name)
    assert store.count(name) == 5
    assert store.rows_by_item(name, ["a" * 32, "b" * 32, "c" * 32]) == {
        "a" * 32: 3, "b" * 32: 2, "c" * 32: 0,
    }


def test_reading_wide_rows_of_every_partition_stays_under_the_servers_message_maximum(
    milvus_uri: str,
) -> None:
    # 16 categories x 150 rows of 8,192-d: one batch of 4,000 rows per partition would be one 79 MB
    # answer, which a Milvus 2.3 proxy refuses (RESOURCE_EXHAUSTED above 64 MB).
    store = MilvusStore(make_settings(milvus_uri, num_partitions=16), timeout_s=120)
    dim, categories, per_category = 8192, 16, 150
    name = store.ensure_collection(MODEL, dim)
    segments = [make_segment(i, dim=dim, item=f"{i:032x}", category=f"c{i % categories}")
                for i in range(categories * per_category)]
    for start in range(0, len(segments), 200):
        store.upsert(name, segments[start:start + 200])
    store.flush(name)
    rows = list(store.iter_rows(name, 'scope == "clip"', ["item_key", "vector"], batch_size=4000))
    assert len(rows) == categories * per_category
    assert len({r["item_key"] for r in rows}) == categories * per_category
    assert all(len(r["vector"]) == dim for r in rows[:10])


def test_search_filters_by_category_with_quotes_escaped(store: MilvusStore) -> None:
    name = store.ensure_collection(MODEL, DIM)
    store.upsert(name, [make_segment(1, category='we"ird'), make_segment(2, category="plain")])
    hits = store.search(name, [0.5] * DIM, categories=['we"ird'], limit=10)
    assert [h.category for h in hits] == ['we"ird']
    assert hits[0].metadata == {"n": 1}


def test_every_category_filter_finds_its_rows_after_upserts_and_a_category_change(
    store: MilvusStore,
) -> None:
    """Milvus before 2.3.10 upserts partition-key rows into the wrong partition (milvus#30607)."""
    name = store.ensure_collection(MODEL, DIM)
    categories = [f"cat{i}" for i in range(8)]
    store.upsert(name, [make_segment(i, category=c) for i, c in enumerate(categories)])
    store.upsert(name, [make_segment(0, category="moved"), make_segment(0, category="moved")])
    store.flush(name)
    for i, category in enumerate(categories[1:], start=1):
        hits = store.search(name, [0.5] * DIM, categories=[category], limit=10)
        assert [h.pk for h in hits] == [make_segment(i).pk], category
    assert [h.category for h in store.search(name, [0.5] * DIM, categories=["moved"], limit=10)] == ["moved"]
    assert store.search(name, [0.5] * DIM, categories=["cat0"], limit=10) == []
    assert store.count(name) == len(categories)


def test_server_version_is_read_once_per_connection(store: MilvusStore) -> None:
    version = store.server_version()  # "v2.3.5-lite" (server), "milvus_lite-3.2.2" (Lite)
    assert version.startswith(("v2.", "milvus_lite-"))
    assert store.server_version() is version
    store.close()
    assert store.server_version() == version


def test_a_search_above_ef_is_served(store: MilvusStore) -> None:
    """A Milvus server refuses HNSW searches with ef below top-k; the store raises ef."""
    name = store.ensure_collection(MODEL, DIM)
    store.upsert(name, [make_segment(i) for i in range(3)])
    store.flush(name)
    assert len(store.search(name, [0.5] * DIM, limit=200)) == 3


def test_unreachable_milvus_raises_store_unavailable_within_seconds() -> None:
    settings = make_settings(f"http://127.0.0.1:{free_port()}")
    store = MilvusStore(settings, timeout_s=3)
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        store.ensure_collection(MODEL, DIM)
    assert time.monotonic() - started < 10


class _RpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def __str__(self) -> str:
        return f"<RpcError {self._code.name}>"


@pytest.mark.parametrize(("code", "error"), [
    (grpc.StatusCode.RESOURCE_EXHAUSTED, StoreRejectedError),  # a message too large stays so
    (grpc.StatusCode.UNIMPLEMENTED, StoreRejectedError),
    (grpc.StatusCode.UNAVAILABLE, StoreUnavailableError),
])
def test_grpc_errors_are_refusals_unless_the_server_is_out_of_reach(
    code: grpc.StatusCode, error: type[Exception],
) -> None:
    assert type(translate(_RpcError(code), "query c")) is error
