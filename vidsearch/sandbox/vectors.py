"""Deterministic embeddings that carry meaning.

Every word has a fixed 1024-d unit vector per model family ("space"): a numpy PCG64 generator
seeded from blake2b(space, word), so the vector is the same on every run and machine. A model of
dimension D uses the first D components. Vectors of different families are unrelated, as
Marengo 2.7, 3.0 and 3.5 embeddings are.

- a segment's vector = normalize(sum of weight x concept vector + a small option vector
  + small noise seeded by the segment's key);
- a text query's vector = normalize(sum of its words' vectors);
- Marengo 3.5 with ``embedding_dimension`` d returns the first d components of its 512-d vector,
  renormalized (a Matryoshka prefix).

So a query sharing words with a video's concepts scores high against that video's segments, and
unrelated words score near zero.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from functools import lru_cache

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float64]

BASE_DIM = 1024
OPTION_WEIGHT = 0.25
NOISE_WEIGHT = 0.2

MODEL_DIMS = {"marengo3.0": 512, "marengo3.5": 512, "Marengo-retrieval-2.7": 1024}
MODEL_SPACES = {"marengo3.0": "marengo3.0", "marengo3.5": "marengo3.5",
                "Marengo-retrieval-2.7": "marengo2.7"}

STOP_WORDS = frozenset({
    "a", "an", "the", "at", "of", "in", "on", "and", "or", "to", "for", "with", "by", "from", "is",
    "mp4", "mov", "mkv", "webm", "avi", "m4v", "mpg", "mpeg", "wav", "mp3", "flac", "m4a",
    "jpg", "jpeg", "png", "gif", "webp", "bmp", "heic",
    "http", "https", "www", "com",
})
_SPLIT = re.compile(r"[^a-z0-9]+")


def words(text: str) -> list[str]:
    """Lower-cased words of ``text`` split on anything not a letter or digit, stop words dropped."""
    return [w for w in _SPLIT.split(text.lower()) if w and w not in STOP_WORDS]


def model_dim(model: str) -> int:
    """Full embedding dimension of ``model``."""
    return MODEL_DIMS[model]


def _seed(*parts: str) -> int:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


@lru_cache(maxsize=65536)
def _base(space: str, word: str) -> Vector:
    vec = np.random.default_rng(_seed(space, word)).standard_normal(BASE_DIM)
    vec /= np.linalg.norm(vec)
    vec.setflags(write=False)
    return vec


def word_vector(model: str, word: str) -> Vector:
    """The fixed vector of ``word`` in ``model``'s space, of the model's dimension."""
    return _base(MODEL_SPACES[model], word)[: model_dim(model)]


def _normalize(vec: Vector) -> Vector:
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec


def prefix(vec: Vector, dim: int) -> Vector:
    """The first ``dim`` components, renormalized to unit length."""
    return _normalize(vec[:dim].copy())


def segment_vector(
    model: str, concepts: Mapping[str, float], option: str, noise_key: str
) -> Vector:
    """Unit vector of one segment: weighted concepts, an option tint and per-segment noise."""
    dim = model_dim(model)
    vec = np.zeros(dim)
    for word, weight in concepts.items():
        vec += weight * word_vector(model, word)
    vec += OPTION_WEIGHT * word_vector(model, f"~option:{option}")
    noise = np.random.default_rng(_seed(MODEL_SPACES[model], noise_key)).standard_normal(dim)
    vec += NOISE_WEIGHT * noise / np.linalg.norm(noise)
    return _normalize(vec)


def uncertainty(key: str, dim: int) -> list[float]:
    """A per-dimension uncertainty vector (values in [0.05, 0.5), higher: less confident), a pure
    function of the item's key (``embedding_uncertainty``)."""
    values = 0.05 + 0.45 * np.random.default_rng(_seed("uncertainty", key)).random(dim)
    return [float(x) for x in np.round(values, 6)]


def text_vector(model: str, text: str) -> Vector:
    """Unit vector of a text query: the normalized sum of its words' vectors."""
    tokens = words(text) or [f"~text:{text}"]
    vec = np.zeros(model_dim(model))
    for word in tokens:
        vec += word_vector(model, word)
    return _normalize(vec)


def to_list(vec: Vector) -> list[float]:
    """JSON-ready floats (8 significant decimals keep the payload small and the norm ~1)."""
    return [float(x) for x in np.round(vec, 8)]
