"""Shared builders for the analytics tests: Milvus rows and video sets made in memory."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np

from pipeline.analytics.corpus import VideoSet

DIM = 64


def row(item: str, scope: str, option: str, start: float, vector: np.ndarray, **extra: Any) -> dict[str, Any]:
    return {
        "pk": uuid.uuid4().hex, "vector": vector.astype(np.float32),
        "category": extra.get("category", "news"),
        "url": f"https://v.example/{item}.mp4", "start_s": start, "end_s": start + 6, "option": option,
        "scope": scope, "model": "marengo3.0", "item_key": item.ljust(32, "0"), "job_id": "j",
        "ingested_at": extra.get("at", 1000), "title": f"title of {item}", "metadata": {},
    }


DAY_MS = 86_400_000


TOPICS = ["animals", "sports", "cooking"]


def video_set(per_topic: int = 12, *, dups: int = 0, misfiled: int = 0, seed: int = 0,
              categories: list[str] | None = None, times: list[int] | None = None) -> VideoSet:
    """Three topics of ``per_topic`` videos; ``dups`` copies of the first videos (tiny noise);
    the last ``misfiled`` videos of topic 0 filed under topic 1."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(TOPICS), DIM))
    vectors, cats, titles = [], [], []
    for t, topic in enumerate(TOPICS):
        for i in range(per_topic):
            vectors.append(centres[t] + 0.6 * rng.standard_normal(DIM))
            cats.append(topic)
            titles.append(f"{topic} clip {i}")
    for t in range(misfiled):
        cats[per_topic - 1 - t] = TOPICS[1]
    for i in range(dups):
        vectors.append(vectors[i] + 0.01 * rng.standard_normal(DIM))
        cats.append(cats[i])
        titles.append(titles[i])
    x = np.array(vectors, dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    n = len(x)
    cats = categories or cats
    return VideoSet(
        keys=[f"{i:032x}" for i in range(n)], urls=[f"https://v.example/{i}.mp4" for i in range(n)],
        titles=titles, categories=cats,
        ingested_ms=np.array(times or [0] * n, dtype=np.int64),
        segments=np.full(n, 10, dtype=np.int64), vectors=x,
    )
