"""A search query: its parts, weights, filters and output shape, validated where it is built.

A query combines any of: ``text``; a video clip (``clip_url`` with an optional
``clip_start_s``/``clip_end_s``); an image (``image_url``); text embedded *with* the image as one
``text_image`` part (``text_image=True``); or, on its own, ``like_url`` (more like an ingested
video, ``like_at_s`` for the segment at that time). Parts are fused with ``weights`` (keys
``text``, ``clip``, ``image``, ``text_image``; default 1 each) and segment rows of different
embedding options with ``modality_weights`` (keys ``visual``, ``audio``, ``transcription``).
``collapse_duplicates`` keeps only the best-ranked video of each duplicate group (None: the
``search_collapse_duplicates`` setting decides). ``min_score`` is the relevance floor: hits scored
below it are not results (None: the ``search_min_score`` setting; -1 lifts it, every cosine clears
it). The floor is applied to the answer, so it is no part of the result cache's key material.

``Query(...)`` checks itself and ``Query.from_mapping`` parses strings (CLI flags, HTTP query
parameters, JSON); both raise :class:`QueryError` with a message naming the bad field.
``Query.parts`` are the ``QueryPart`` values the Twelve Labs boundary embeds (``pipeline/media.py``:
below both, so the boundary never imports search).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from pipeline.errors import QueryError
from pipeline.media import PART_KINDS, QueryPart

__all__ = [  # QueryPart is pipeline/media.py's, named here too for search callers
    "DEFAULT_MAX_MOMENTS", "MAX_MOMENTS", "MAX_TOP_K", "MIN_SCORE_LOWEST", "MODALITIES", "PART_KINDS",
    "SYNC_VIDEO_MAX_S", "Query", "QueryPart", "check_media_url", "normalize_text", "parse_weights",
]

MODALITIES = ("visual", "audio", "transcription")
SYNC_VIDEO_MAX_S = 600.0
"""Longest video the sync embed endpoint takes (Marengo 3.0: 10 minutes)."""
MAX_TOP_K = 1000
MAX_MOMENTS = 20
DEFAULT_MAX_MOMENTS = 3
MIN_SCORE_LOWEST = -1.0
"""The lowest floor: every cosine clears it (a floor lifted)."""


def normalize_text(text: str) -> str:
    """Trimmed, whitespace collapsed to single spaces, lower-cased."""
    return " ".join(text.split()).lower()


def check_media_url(url: str, name: str) -> str:
    """``url`` when it is an absolute http(s) URL with a host; a QueryError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise QueryError(f"{name} must be an http(s) URL, got {url!r}")
    return url


def _weight(name: str, raw: Any) -> float:
    if isinstance(raw, bool):
        raise QueryError(f"weight {name} must be a number, got {raw!r}")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise QueryError(f"weight {name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise QueryError(f"weight {name} must be a finite number >= 0, got {raw!r}")
    return value


def parse_weights(raw: Any, allowed: tuple[str, ...], what: str) -> dict[str, float]:
    """``{"a": 1.0}`` from ``"a=1,b=2"``, a JSON object string or a mapping; keys in ``allowed``."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        raw = _weights_from_string(raw, what)
    if not isinstance(raw, Mapping):
        raise QueryError(f"{what} must be name=weight pairs or an object, got {raw!r}")
    unknown = [str(k) for k in raw if k not in allowed]
    if unknown:
        raise QueryError(f"unknown {what} {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    return {str(k): _weight(str(k), v) for k, v in raw.items()}


def _weights_from_string(text: str, what: str) -> Mapping[str, Any]:
    text = text.strip()
    if text.startswith("{"):
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise QueryError(f"{what} is not valid JSON: {exc}") from None
        if not isinstance(loaded, Mapping):
            raise QueryError(f"{what} must be a JSON object")
        return loaded
    pairs: dict[str, str] = {}
    for chunk in filter(None, (c.strip() for c in text.split(","))):
        name, sep, value = chunk.partition("=")
        if not sep:
            raise QueryError(f"{what} must be name=weight pairs separated by commas, got {chunk!r}")
        pairs[name.strip()] = value.strip()
    return pairs


@dataclass(frozen=True, slots=True)
class Query:
    """One search: what to look for, how to weigh it, what to return."""

    text: str | None = None
    clip_url: str | None = None
    clip_start_s: float | None = None
    clip_end_s: float | None = None
    image_url: str | None = None
    weights: Mapping[str, float] = field(default_factory=dict)
    modality_weights: Mapping[str, float] = field(default_factory=dict)
    like_url: str | None = None
    like_at_s: float | None = None
    categories: tuple[str, ...] = ()
    top_k: int = 10
    moments: bool = False
    max_moments: int = DEFAULT_MAX_MOMENTS
    segments: bool = False
    option: str | None = None
    text_image: bool = False
    collapse_duplicates: bool | None = None  # None: the search_collapse_duplicates setting
    min_score: float | None = None  # None: the search_min_score setting

    def __post_init__(self) -> None:
        text = normalize_text(self.text) if self.text is not None else None
        object.__setattr__(self, "text", text or None)
        object.__setattr__(self, "categories", tuple(self.categories))
        object.__setattr__(self, "weights", parse_weights(self.weights, PART_KINDS, "weights"))
        object.__setattr__(self, "modality_weights", parse_weights(
            self.modality_weights, MODALITIES, "modality weights"))
        self._check_parts()
        self._check_media()
        self._check_shape()

    # --- checks ----------------------------------------------------------------------------
    def _check_parts(self) -> None:
        if not (self.text or self.clip_url or self.image_url or self.like_url):
            raise QueryError("nothing to search for: give text, a clip, an image or --like")
        if self.like_url and (self.text or self.clip_url or self.image_url):
            raise QueryError("--like cannot be combined with text, a clip or an image")
        if self.like_at_s is not None and not self.like_url:
            raise QueryError("--at needs --like")
        if self.text_image and not (self.text and self.image_url):
            raise QueryError("text_image needs both text and an image")
        kinds = self.part_kinds()
        stray = [k for k in self.weights if k not in kinds]
        if stray:
            raise QueryError(f"weights given for {', '.join(stray)}, which the query does not have")
        if kinds and sum(self.weights.get(k, 1.0) for k in kinds) <= 0:
            raise QueryError("the weights of the query's parts are all zero")

    def _check_media(self) -> None:
        for name in ("clip_url", "image_url", "like_url"):
            value = getattr(self, name)
            if value is not None:
                check_media_url(value, name.removesuffix("_url"))
        start, end = self.clip_start_s, self.clip_end_s
        if (start is not None or end is not None) and not self.clip_url:
            raise QueryError("a clip range needs a clip URL")
        if start is not None and start < 0:
            raise QueryError(f"clip start must be >= 0, got {start}")
        if end is not None and end <= (start or 0.0):
            raise QueryError(f"clip range is empty: end {end} is not after start {start or 0.0}")
        if end is not None and end - (start or 0.0) > SYNC_VIDEO_MAX_S:
            raise QueryError(f"clip range of {end - (start or 0.0):g} s is longer than the "
                             f"{SYNC_VIDEO_MAX_S:g} s a sync embed accepts")
        if self.like_at_s is not None and self.like_at_s < 0:
            raise QueryError(f"--at must be >= 0, got {self.like_at_s}")

    def _check_shape(self) -> None:
        if not 1 <= self.top_k <= MAX_TOP_K:
            raise QueryError(f"top_k must be between 1 and {MAX_TOP_K}, got {self.top_k}")
        if not 1 <= self.max_moments <= MAX_MOMENTS:
            raise QueryError(f"max_moments must be between 1 and {MAX_MOMENTS}, got {self.max_moments}")
        if self.moments and self.segments:
            raise QueryError("--moments and --segments exclude each other")
        if self.option is not None and self.option not in MODALITIES:
            raise QueryError(f"unknown option {self.option!r}; allowed: {', '.join(MODALITIES)}")
        if self.option is not None and self.modality_weights:
            raise QueryError("--option and --modality-weights exclude each other")
        if self.modality_weights and sum(self.modality_weights.values()) <= 0:
            raise QueryError("the modality weights are all zero")
        if self.min_score is not None and not MIN_SCORE_LOWEST <= self.min_score <= 1:
            raise QueryError(f"min_score must be between {MIN_SCORE_LOWEST:g} and 1, got {self.min_score}")

    # --- derived ---------------------------------------------------------------------------
    def part_kinds(self) -> tuple[str, ...]:
        """The embedded parts of this query (``like`` queries have none)."""
        kinds: list[str] = []
        if self.text_image:
            kinds.append("text_image")
        elif self.text:
            kinds.append("text")
        if self.clip_url:
            kinds.append("clip")
        if self.image_url and not self.text_image:
            kinds.append("image")
        return tuple(kinds)

    def parts(self) -> list[QueryPart]:
        """The parts to embed, in a fixed order."""
        made = {
            "text": lambda: QueryPart("text", text=self.text),
            "text_image": lambda: QueryPart("text_image", text=self.text, url=self.image_url),
            "clip": lambda: QueryPart("clip", url=self.clip_url, start_s=self.clip_start_s,
                                      end_s=self.clip_end_s),
            "image": lambda: QueryPart("image", url=self.image_url),
        }
        return [made[kind]() for kind in self.part_kinds()]

    def part_weight(self, kind: str) -> float:
        """The user's weight of part ``kind`` (default 1)."""
        return self.weights.get(kind, 1.0)

    def modalities(self, available: tuple[str, ...]) -> dict[str, float]:
        """Embedding option -> weight (> 0 only); default: equal over ``available``."""
        if self.option is not None:
            return {self.option: 1.0}
        if self.modality_weights:
            return {m: w for m, w in self.modality_weights.items() if w > 0}
        return dict.fromkeys(available, 1.0)

    def canonical(self) -> dict[str, Any]:
        """Every field but the floor in a stable, JSON-ready form (the result cache's key material:
        one cached answer serves every floor)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "min_score":
                continue
            value = getattr(self, f.name)
            if isinstance(value, Mapping):
                value = dict(sorted(value.items()))
            elif isinstance(value, tuple):
                value = sorted(value)
            out[f.name] = value
        return out

    # --- parsing -----------------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Query:
        """A query from strings or JSON values (aliases: clip, image, like, at, category)."""
        unknown = [k for k in data if k not in _PARSERS]
        if unknown:
            raise QueryError(f"unknown query field(s): {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {}
        for key, raw in data.items():
            name, parse = _PARSERS[key]
            if raw is None or (raw == "" and name != "text"):
                continue
            kwargs[name] = parse(key, raw)
        return cls(**kwargs)


def _str(name: str, raw: Any) -> str:
    if not isinstance(raw, str):
        raise QueryError(f"{name} must be a string, got {raw!r}")
    return raw


def _float(name: str, raw: Any) -> float:
    if isinstance(raw, bool):
        raise QueryError(f"{name} must be a number, got {raw!r}")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise QueryError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise QueryError(f"{name} must be a finite number, got {raw!r}")
    return value


def _int(name: str, raw: Any) -> int:
    value = _float(name, raw)
    if value != int(value):
        raise QueryError(f"{name} must be a whole number, got {raw!r}")
    return int(value)


def _bool(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise QueryError(f"{name} must be true or false, got {raw!r}")


def _categories(name: str, raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        return tuple(c.strip() for c in raw.split(",") if c.strip())
    if isinstance(raw, list | tuple) and all(isinstance(c, str) for c in raw):
        return tuple(raw)
    raise QueryError(f"{name} must be a string or a list of strings, got {raw!r}")


def _part_weights(name: str, raw: Any) -> dict[str, float]:
    return parse_weights(raw, PART_KINDS, "weights")


def _modality_weights(name: str, raw: Any) -> dict[str, float]:
    return parse_weights(raw, MODALITIES, "modality weights")


_PARSERS: dict[str, tuple[str, Any]] = {
    "text": ("text", _str),
    "clip": ("clip_url", _str), "clip_url": ("clip_url", _str),
    "clip_start": ("clip_start_s", _float), "clip_start_s": ("clip_start_s", _float),
    "clip_end": ("clip_end_s", _float), "clip_end_s": ("clip_end_s", _float),
    "image": ("image_url", _str), "image_url": ("image_url", _str),
    "text_image": ("text_image", _bool),
    "weights": ("weights", _part_weights),
    "modality_weights": ("modality_weights", _modality_weights),
    "like": ("like_url", _str), "like_url": ("like_url", _str),
    "at": ("like_at_s", _float), "like_at_s": ("like_at_s", _float),
    "category": ("categories", _categories), "categories": ("categories", _categories),
    "top_k": ("top_k", _int), "moments": ("moments", _bool),
    "max_moments": ("max_moments", _int), "segments": ("segments", _bool),
    "option": ("option", _str),
    "collapse_duplicates": ("collapse_duplicates", _bool),
    "min_score": ("min_score", _float),
}
