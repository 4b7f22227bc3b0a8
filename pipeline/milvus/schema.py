"""The collection schema as plain data: fields, their lengths, the partition key, the vector index.

One collection per model and dimension: primary key ``pk`` (VARCHAR), ``vector`` (FLOAT_VECTOR of
the collection's dimension) and the scalar fields of :data:`SCALAR_FIELDS`, ``category`` being the
partition key; no dynamic field. The vector index comes from the settings (``index_type``,
``index_metric``, ``index_params``) and a search's parameters from :func:`search_params_for`.

Only :mod:`pipeline.milvus.store` imports pymilvus: it builds the pymilvus schema and index from
:func:`fields` and :func:`index_spec`, and hands :func:`schema_problems` a described collection
with each field's type as its ``DataType`` member name (``"VARCHAR"``), as types are named here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.settings import Settings

PK_MAX_LENGTH = 32
TITLE_MAX_BYTES = 512
"""Longer titles are cut (at a character boundary) rather than refused."""
PARTITION_KEY = "category"

SCALAR_FIELDS: dict[str, tuple[str, int | None]] = {
    "category": ("VARCHAR", 64),
    "url": ("VARCHAR", 4096),
    "start_s": ("DOUBLE", None),
    "end_s": ("DOUBLE", None),
    "option": ("VARCHAR", 16),
    "scope": ("VARCHAR", 16),
    "model": ("VARCHAR", 32),
    "item_key": ("VARCHAR", 32),
    "job_id": ("VARCHAR", 64),
    "ingested_at": ("INT64", None),
    "title": ("VARCHAR", TITLE_MAX_BYTES),
    "metadata": ("JSON", None),
}
"""name -> (``DataType`` member name, max_length in bytes for VARCHAR or None)."""
CHECKED_LENGTHS = ("category", "url", "option", "scope", "model", "item_key", "job_id")
"""VARCHAR fields a segment is refused for exceeding (``title`` is cut instead)."""

OUTPUT_FIELDS = (
    "url", "title", "category", "start_s", "end_s", "option", "scope", "item_key", "metadata",
)
"""What a search returns of each hit by default."""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field: its name, its ``DataType`` member name and the keyword arguments of ``add_field``."""

    name: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)


def fields(dimension: int) -> list[FieldSpec]:
    """Every field of a collection at ``dimension``, in creation order."""
    specs = [
        FieldSpec("pk", "VARCHAR", {"max_length": PK_MAX_LENGTH, "is_primary": True}),
        FieldSpec("vector", "FLOAT_VECTOR", {"dim": dimension}),
    ]
    for name, (dtype, length) in SCALAR_FIELDS.items():
        params: dict[str, Any] = {"max_length": length} if length is not None else {}
        if name == PARTITION_KEY:
            params["is_partition_key"] = True
        specs.append(FieldSpec(name, dtype, params))
    return specs


def index_spec(settings: Settings, index_type: str | None = None,
               index_params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The keyword arguments of ``add_index`` for the vector field (the settings' index unless
    ``index_type`` / ``index_params`` say otherwise)."""
    return {
        "field_name": "vector",
        "index_type": index_type or settings.index_type,
        "metric_type": settings.index_metric,
        "params": dict(settings.index_params if index_params is None else index_params),
    }


def search_params_for(settings: Settings, collection: str, limit: int) -> dict[str, Any]:
    """The index search parameters of ``collection`` for a top-``limit`` search.

    ``collection_search_params[collection]`` overrides ``search_params`` key by key. HNSW's ``ef``
    is raised to ``limit`` when below it (Milvus servers refuse ``ef < k``; Milvus Lite walks
    its FAISS HNSW graph with it).
    """
    params = {**settings.search_params, **settings.collection_search_params.get(collection, {})}
    if "ef" in params:
        params["ef"] = max(int(params["ef"]), limit)
    return params


def schema_problems(name: str, described: Iterable[dict[str, Any]], dimension: int) -> list[str]:
    """What differs between a described collection's fields (types as names) and the expected
    schema (empty: none)."""
    found = {f["name"]: f for f in described}
    problems: list[str] = []
    vector_problem = _vector_problem(name, found.get("vector"), dimension)
    if vector_problem:
        problems.append(vector_problem)
    pk = found.get("pk")
    if pk is None or not pk.get("is_primary"):
        problems.append(f"collection {name} has no primary key field 'pk'")
    return problems + _scalar_problems(name, found)


def _signature(described: dict[str, Any]) -> tuple[str, int | None]:
    params = described.get("params") or {}
    length = params.get("max_length")
    return described["type"], int(length) if length is not None else None


def _vector_problem(name: str, vector: dict[str, Any] | None, dimension: int) -> str | None:
    if vector is None or vector["type"] != "FLOAT_VECTOR":
        return f"collection {name} has no FLOAT_VECTOR field 'vector'"
    got = int((vector.get("params") or {}).get("dim", 0))
    if got != dimension:
        return f"collection {name} has vector dimension {got}, settings ask for {dimension}"
    return None


def _scalar_problems(name: str, found: dict[str, dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    for field_name, want in SCALAR_FIELDS.items():
        have = found.get(field_name)
        if have is None:
            problems.append(f"collection {name} lacks field {field_name!r} ({want[0]})")
        elif _signature(have) != want:
            problems.append(
                f"collection {name} field {field_name!r} is {_signature(have)}, expected {want}"
            )
    if PARTITION_KEY in found and not found[PARTITION_KEY].get("is_partition_key"):
        problems.append(f"collection {name} field {PARTITION_KEY!r} is not the partition key")
    return problems
