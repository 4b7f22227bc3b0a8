"""A restarted Milvus comes back with its collections released: reads and writes through the store
load them again instead of failing with "call load() before search/get/query"."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from pymilvus import MilvusClient

from pipeline.milvus.store import MilvusStore
from pipeline.segments import Segment, pack_vector
from pipeline.settings import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.both_engines]


def test_a_released_collection_is_loaded_again_for_reads(milvus_uri: str) -> None:
    store = MilvusStore(load_settings(milvus_uri=milvus_uri, collection_prefix=f"r{uuid.uuid4().hex[:8]}"))
    name = store.ensure_collection("marengo3.0", 8)
    segment = Segment(
        pk="p" * 32, item_key="i" * 32, job_id="j", url="https://v.example/x", category="news",
        title="", metadata="{}", model="marengo3.0", option="visual", scope="clip", start_s=0.0,
        end_s=1.0, vector=pack_vector(np.ones(8).tolist()),
    )
    store.upsert(name, [segment])
    raw = MilvusClient(uri=milvus_uri)
    raw.release_collection(name)  # what a Milvus restart leaves behind
    assert store.count(name) == 1
    assert [r["pk"] for r in store.iter_rows(name, "", ["pk"])] == ["p" * 32]
    assert store.search(name, np.ones(8).tolist(), limit=1)[0].pk == "p" * 32
    raw.close()
    store.close()
