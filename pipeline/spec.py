"""The embedding spec, item keys, segment primary keys and collection names.

An item is (normalized URL, embedding spec); its key is the blake2b-128 hex digest of the URL and
the spec's canonical JSON: the same video asked for with the same spec maps to the same key.
Segment primary keys derive from the item key, the option, the scope and the time range rounded to
milliseconds, so replays write the same rows again (upserts) instead of new ones.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from hashlib import blake2b
from typing import Any

from pipeline.settings import Settings

__all__ = ["EmbeddingSpec", "collection_name", "item_key", "segment_pk"]

MAX_COLLECTION_NAME = 255
_NAME_UNSAFE = re.compile(r"[^0-9A-Za-z_]")


@dataclass(frozen=True, slots=True)
class EmbeddingSpec:
    """What is asked of Twelve Labs for one video; part of every item key."""

    model: str
    dimension: int | None
    segmentation: str
    segment_duration_s: int
    min_segment_duration_s: int
    options: tuple[str, ...]
    scopes: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddingSpec:
        return cls(
            model=settings.model,
            dimension=settings.embedding_dimension,
            segmentation=settings.segmentation,
            segment_duration_s=settings.segment_duration_s,
            min_segment_duration_s=settings.min_segment_duration_s,
            options=tuple(settings.embedding_options),
            scopes=tuple(settings.embedding_scopes),
        )

    def canonical(self) -> str:
        """Canonical JSON of the fields that change the embeddings (sorted, no whitespace)."""
        return _canonical(self)

    def to_json(self) -> str:
        """Every field as JSON (for storing with a job or an item)."""
        return json.dumps(
            {
                "model": self.model,
                "dimension": self.dimension,
                "segmentation": self.segmentation,
                "segment_duration_s": self.segment_duration_s,
                "min_segment_duration_s": self.min_segment_duration_s,
                "options": list(self.options),
                "scopes": list(self.scopes),
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> EmbeddingSpec:
        """Parse ``to_json`` output; ``ValueError`` on anything else."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"embedding spec is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError("embedding spec must be a JSON object")
        return cls(
            model=_typed(data, "model", str),
            dimension=_optional_int(data, "dimension"),
            segmentation=_typed(data, "segmentation", str),
            segment_duration_s=_typed(data, "segment_duration_s", int),
            min_segment_duration_s=_typed(data, "min_segment_duration_s", int),
            options=_strings(data, "options"),
            scopes=_strings(data, "scopes"),
        )


def _typed(data: dict[str, Any], name: str, kind: type[Any]) -> Any:
    value = data.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"embedding spec field {name!r} must be {kind.__name__}")
    return value


def _optional_int(data: dict[str, Any], name: str) -> int | None:
    if data.get(name) is None:
        return None
    return int(_typed(data, name, int))


def _strings(data: dict[str, Any], name: str) -> tuple[str, ...]:
    value = data.get(name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"embedding spec field {name!r} must be a list of strings")
    return tuple(value)


@lru_cache(maxsize=64)
def _canonical(spec: EmbeddingSpec) -> str:
    fields: dict[str, Any] = {
        "model": spec.model,
        "dimension": spec.dimension,
        "segmentation": spec.segmentation,
        "options": sorted(spec.options),
        "scopes": sorted(spec.scopes),
    }
    if spec.segmentation == "fixed":
        fields["segment_duration_s"] = spec.segment_duration_s
    else:
        fields["min_segment_duration_s"] = spec.min_segment_duration_s
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def _digest(text: str) -> str:
    return blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def item_key(url: str, spec: EmbeddingSpec) -> str:
    """32 hex chars: blake2b-128 of the normalized URL, a newline and the spec's canonical JSON."""
    return _digest(f"{url}\n{_canonical(spec)}")


def _millis(seconds: float) -> int:
    if not math.isfinite(seconds):
        raise ValueError(f"segment time must be finite, got {seconds!r}")
    return round(seconds * 1000)


def segment_pk(item_key: str, option: str, scope: str, start_s: float, end_s: float) -> str:
    """32 hex chars identifying one segment; times count to the millisecond."""
    return _digest(f"{item_key}\n{option}\n{scope}\n{_millis(start_s)}\n{_millis(end_s)}")


def collection_name(prefix: str, model: str, dimension: int) -> str:
    """A valid Milvus collection name, e.g. ``vidsearch_marengo3_0_d512``."""
    if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension <= 0:
        raise ValueError(f"dimension must be a positive integer, got {dimension!r}")
    name = _NAME_UNSAFE.sub("_", f"{prefix}_{model}_d{dimension}")
    if not (name[0].isalpha() or name[0] == "_"):
        name = f"_{name}"
    if len(name) > MAX_COLLECTION_NAME:
        raise ValueError(f"collection name longer than {MAX_COLLECTION_NAME} characters")
    return name
