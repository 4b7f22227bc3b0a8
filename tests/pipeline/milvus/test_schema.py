"""The collection schema as data: its fields, the index, search parameters and schema checks."""

from __future__ import annotations

from typing import Any

from pipeline.milvus.schema import (
    SCALAR_FIELDS,
    fields,
    index_spec,
    schema_problems,
    search_params_for,
)
from pipeline.settings import load_settings


def described(dimension: int) -> list[dict[str, Any]]:
    """The fields as ``describe_collection`` reports them, types as names (what the store hands)."""
    found = []
    for f in fields(dimension):
        flags = {k: v for k, v in f.params.items() if k.startswith("is_")}
        params = {k: v for k, v in f.params.items() if not k.startswith("is_")}
        found.append({"name": f.name, "type": f.type, "params": params, **flags})
    return found


def test_fields_are_pk_vector_and_every_scalar_with_category_the_partition_key() -> None:
    specs = {f.name: f for f in fields(8)}
    assert list(specs) == ["pk", "vector", *SCALAR_FIELDS]
    assert specs["pk"].params == {"max_length": 32, "is_primary": True}
    assert (specs["vector"].type, specs["vector"].params) == ("FLOAT_VECTOR", {"dim": 8})
    assert specs["category"].params == {"max_length": 64, "is_partition_key": True}
    assert specs["metadata"].params == {}


def test_the_index_comes_from_the_settings_unless_given() -> None:
    settings = load_settings(index_type="HNSW", index_params={"M": 16})
    assert index_spec(settings) == {"field_name": "vector", "index_type": "HNSW",
                                    "metric_type": "COSINE", "params": {"M": 16}}
    assert index_spec(settings, "IVF_FLAT", {"nlist": 64})["params"] == {"nlist": 64}


def test_a_matching_collection_has_no_problem_and_each_difference_is_named() -> None:
    assert schema_problems("c", described(8), 8) == []
    assert schema_problems("c", described(8), 16) == [
        "collection c has vector dimension 8, settings ask for 16"]
    changed = [f for f in described(8) if f["name"] != "title"]
    for f in changed:
        if f["name"] == "category":
            f.pop("is_partition_key")
        if f["name"] == "url":
            f["params"] = {"max_length": 100}
    assert schema_problems("c", changed, 8) == [
        "collection c field 'url' is ('VARCHAR', 100), expected ('VARCHAR', 4096)",
        "collection c lacks field 'title' (VARCHAR)",
        "collection c field 'category' is not the partition key",
    ]


def test_search_params_are_per_collection_and_ef_is_never_below_the_limit() -> None:
    settings = load_settings(search_params={"ef": 64}, collection_search_params={"c1": {"ef": 128}})
    assert search_params_for(settings, "c1", 10) == {"ef": 128}
    assert search_params_for(settings, "c2", 10) == {"ef": 64}
    assert search_params_for(settings, "c2", 80) == {"ef": 80}
    ivf = load_settings(search_params={"nprobe": 16})
    assert search_params_for(ivf, "c1", 500) == {"nprobe": 16}
