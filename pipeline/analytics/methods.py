"""Corpus analytics over video vectors (``analytics/corpus.py``): clusters, outliers, duplicates, trends.

Vectors are unit length, so the inner product is the cosine similarity.

* **Clusters**: spherical k-means (FAISS ``Kmeans``, 25 iterations, 3 restarts, fixed seed). With
  ``auto`` k is the k in 2..``AUTO_K_MAX`` (at most n - 1) with the best mean silhouette (cosine
  distance) on a sample of at most ``SILHOUETTE_SAMPLE`` videos. Each cluster: size, its most
  central videos (highest similarity to the centroid), cohesion (mean similarity of its videos to
  the centroid) and a label made of the most frequent title words of its central videos. The map
  is the first two principal components (PCA, numpy) of the vectors.
* **Outliers**: per video, the similarity to its own category's centroid computed without it
  (leave-one-out) and to every other category's centroid; a video closer to another category is
  listed with that category as the suggestion and the difference as its score, highest first.
  Videos of a category with one video are skipped (nothing to compare with) and named.
* **Duplicates**: a FAISS range search at the threshold over the video vectors: exact
  (``IndexFlatIP``, BLAS) up to ``EXACT_MAX`` videos; above, inverted lists (k-means centroids, one
  per ``CELL_SIZE`` videos; each video in the lists of its 2 nearest centroids) and the exact
  range search inside each list. FAISS's own ``IndexIVFFlat.range_search`` scans without BLAS and
  took ~140 s for 100,000 videos here against seconds for this. Pairs are joined into groups
  (union-find over the pairs found, never over all pairs).
* **Trends**: videos and segments per period (UTC day or ISO week of the ingest time) per category
  and per cluster, with each cluster's growth between the last two periods.

Bad input (no videos, k out of range, a threshold outside (0, 1], a category with too few videos)
raises :class:`AnalyticsError` (exit 2 in the CLI).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from pipeline.analytics.corpus import Matrix, VideoSet
from pipeline.errors import AnalyticsError

AUTO_K_MAX = 12
SILHOUETTE_SAMPLE = 2000
CENTRAL = 5
EXACT_MAX = 20000
CELL_SIZE = 400
CELL_PROBES = 2
DEFAULT_THRESHOLD = 0.9
SEED = 1234
LABEL_WORDS = 3
_WORD = re.compile(r"[a-z]+")
_LABEL_STOP = frozenset({"the", "and", "with", "for", "from", "video", "clip", "part"})


def require_videos(videos: VideoSet, what: str, at_least: int = 1) -> None:
    """Raise AnalyticsError unless ``videos`` has at least ``at_least`` videos."""
    if len(videos) < at_least:
        have = "no videos" if not len(videos) else f"only {len(videos)} video(s)"
        raise AnalyticsError(f"{what} needs at least {at_least} video(s); the collection has {have}")


def only_category(videos: VideoSet, category: str | None) -> VideoSet:
    """The videos of ``category`` (all when None); an unknown category is an error."""
    if category is None:
        return videos
    mask = np.array([c == category for c in videos.categories], dtype=bool)
    if not mask.any():
        known = ", ".join(sorted(set(videos.categories))) or "none"
        raise AnalyticsError(f"no videos in category {category!r} (categories: {known})")
    return videos.subset(mask)


# --- clusters --------------------------------------------------------------------------------------
@dataclass
class Cluster:
    """One cluster of videos."""

    id: int
    size: int
    label: str
    cohesion: float
    central: list[dict[str, Any]]


@dataclass
class Clustering:
    """k-means result: clusters, each video's cluster and its 2-D map coordinates."""

    k: int
    criterion: str
    clusters: list[Cluster]
    assignment: npt.NDArray[np.int64]
    coords: npt.NDArray[np.float32]
    silhouettes: dict[int, float] = field(default_factory=dict)

    def to_dict(self, videos: VideoSet) -> dict[str, Any]:
        return {
            "k": self.k, "criterion": self.criterion,
            "silhouettes": {str(k): round(v, 4) for k, v in self.silhouettes.items()},
            "clusters": [c.__dict__ for c in self.clusters],
            "videos": [{"url": videos.urls[i], "category": videos.categories[i],
                        "cluster": int(self.assignment[i]),
                        "x": round(float(self.coords[i, 0]), 5), "y": round(float(self.coords[i, 1]), 5)}
                       for i in range(len(videos))],
        }


def kmeans(x: Matrix, k: int, *, restarts: int = 3, niter: int = 25,
           sample_per_centroid: int = 256) -> tuple[Matrix, npt.NDArray[np.int64]]:
    """Centroids (unit length) and the cluster of each row (trained on at most
    ``sample_per_centroid`` x k rows, FAISS's subsample)."""
    km = faiss.Kmeans(x.shape[1], k, niter=niter, nredo=restarts, seed=SEED, spherical=True,
                      verbose=False, min_points_per_centroid=1, max_points_per_centroid=sample_per_centroid)
    km.train(np.ascontiguousarray(x, dtype=np.float32))
    _, labels = km.index.search(np.ascontiguousarray(x, dtype=np.float32), 1)
    return np.asarray(km.centroids, dtype=np.float32), labels[:, 0].astype(np.int64)


def silhouette(x: Matrix, labels: npt.NDArray[np.int64]) -> float:
    """Mean silhouette with cosine distance (0 for a video alone in its cluster)."""
    dist = 1.0 - x @ x.T
    k = int(labels.max()) + 1
    onehot = np.eye(k, dtype=np.float32)[labels]
    sums = dist @ onehot
    counts = onehot.sum(axis=0)
    own = counts[labels]
    a = sums[np.arange(len(x)), labels] / np.maximum(own - 1, 1)
    means = sums / np.maximum(counts, 1)
    means[np.arange(len(x)), labels] = np.inf
    means[:, counts == 0] = np.inf
    b = means.min(axis=1)
    s = np.where(own > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(s.mean())


def choose_k(x: Matrix) -> tuple[int, dict[int, float]]:
    """The k in 2..min(AUTO_K_MAX, n - 1) with the best silhouette on a sample."""
    rng = np.random.default_rng(SEED)
    sample = x[rng.choice(len(x), SILHOUETTE_SAMPLE, replace=False)] if len(x) > SILHOUETTE_SAMPLE else x
    scores: dict[int, float] = {}
    for k in range(2, min(AUTO_K_MAX, len(x) - 1) + 1):
        _, labels = kmeans(sample, k)
        scores[k] = silhouette(sample, labels)
    best = max(scores, key=lambda k: (round(scores[k], 6), -k))
    return best, scores


def pca_2d(x: Matrix) -> npt.NDArray[np.float32]:
    """The first two principal components of the rows."""
    centred = x - x.mean(axis=0, dtype=np.float64).astype(np.float32)
    _, vectors = np.linalg.eigh((centred.T @ centred).astype(np.float64))  # d x d: small
    axes = vectors[:, ::-1][:, :2].astype(np.float32)
    return np.asarray(centred @ axes, dtype=np.float32)


def label_of(titles: Sequence[str]) -> str:
    """The most frequent title words (3+ letters, first seen first on ties)."""
    counts: Counter[str] = Counter()
    for title in titles:
        counts.update(w for w in _WORD.findall(title.lower()) if len(w) > 2 and w not in _LABEL_STOP)
    return " ".join(w for w, _ in counts.most_common(LABEL_WORDS)) or "(untitled)"


def _cluster(videos: VideoSet, members: npt.NDArray[np.int64], centroid: Matrix, cid: int) -> Cluster:
    sims = videos.vectors[members] @ centroid
    order = members[np.argsort(-sims, kind="stable")][:CENTRAL]
    central = [{"url": videos.urls[i], "title": videos.titles[i], "category": videos.categories[i],
                "similarity": round(float(videos.vectors[i] @ centroid), 4)} for i in order]
    return Cluster(id=cid, size=len(members), label=label_of([c["title"] for c in central]),
                   cohesion=round(float(sims.mean()), 4), central=central)


def clusters(videos: VideoSet, k: int | None) -> Clustering:
    """k-means with ``k`` clusters, or the silhouette's choice when ``k`` is None."""
    require_videos(videos, "clustering", 3 if k is None else 1)
    if k is not None and not 1 <= k <= len(videos):
        raise AnalyticsError(f"k must be between 1 and the number of videos ({len(videos)}); got {k}")
    scores: dict[int, float] = {}
    criterion = "given"
    if k is None:
        k, scores = choose_k(videos.vectors)
        criterion = f"best mean silhouette (cosine), k in 2..{min(AUTO_K_MAX, len(videos) - 1)}"
    centroids, labels = kmeans(videos.vectors, k)
    found = [_cluster(videos, np.flatnonzero(labels == c), centroids[c], c)
             for c in range(k) if (labels == c).any()]
    found.sort(key=lambda c: -c.size)
    return Clustering(k=k, criterion=criterion, clusters=found, assignment=labels,
                      coords=pca_2d(videos.vectors), silhouettes=scores)


# --- outliers --------------------------------------------------------------------------------------
Ints = npt.NDArray[np.int64]


def _category_sums(videos: VideoSet) -> tuple[list[str], Ints, Matrix, Ints]:
    names = sorted(set(videos.categories))
    index = {c: i for i, c in enumerate(names)}
    own = np.array([index[c] for c in videos.categories], dtype=np.int64)
    sums = np.zeros((len(names), videos.vectors.shape[1]), dtype=np.float32)
    for c in range(len(names)):
        sums[c] = videos.vectors[own == c].sum(axis=0, dtype=np.float64)
    return names, own, sums, np.bincount(own, minlength=len(names))


def _centroid_similarities(x: Matrix, own: Ints, sums: Matrix) -> tuple[Matrix, Matrix]:
    """Cosine of each row to every category centroid, and to its own category's centroid without
    itself: cos(v, S - v) = (v.S - v.v) / |S - v|, with |S - v|^2 = |S|^2 - 2 v.S + v.v (n x C
    products only, no n x d temporaries)."""
    raw = x @ sums.T
    norms = np.linalg.norm(sums, axis=1)
    own_dot = raw[np.arange(len(x)), own]
    self_dot = np.einsum("ij,ij->i", x, x)
    rest = np.sqrt(np.maximum(norms[own] ** 2 - 2 * own_dot + self_dot, 1e-12))
    cosines = np.asarray(raw / np.where(norms > 0, norms, 1.0), dtype=np.float32)
    return cosines, np.asarray((own_dot - self_dot) / rest, dtype=np.float32)


def outliers(videos: VideoSet, category: str | None = None, limit: int | None = None) -> dict[str, Any]:
    """Videos closer to another category's centroid than to their own (leave-one-out), ranked."""
    require_videos(videos, "outliers", 2)
    names, own, sums, counts = _category_sums(videos)
    if len(names) < 2:
        raise AnalyticsError(f"outliers need at least two categories; every video is in {names[0]!r}")
    if category is not None:
        only_category(videos, category)
        if counts[names.index(category)] < 2:
            raise AnalyticsError(f"category {category!r} has one video: there is nothing to compare it with")
    sims, own_sim = _centroid_similarities(videos.vectors, own, sums)
    rows = np.arange(len(videos))
    sims[rows, own] = -np.inf
    sims[:, counts < 2] = -np.inf  # a one-video category is no suggestion either
    best = sims.argmax(axis=1)
    score = sims[rows, best] - own_sim
    keep = (score > 0) & (counts[own] >= 2)
    if category is not None:
        keep &= own == names.index(category)
    ranked = sorted(np.flatnonzero(keep), key=lambda i: -score[i])[:limit]
    return {
        "outliers": [{"url": videos.urls[i], "title": videos.titles[i], "category": names[own[i]],
                      "suggested": names[best[i]], "score": round(float(score[i]), 4),
                      "own_similarity": round(float(own_sim[i]), 4),
                      "suggested_similarity": round(float(sims[i, best[i]]), 4)} for i in ranked],
        "skipped_categories": [n for n, c in zip(names, counts, strict=True) if c < 2],
        "videos": int((counts[own] >= 2).sum()) if category is None else int(counts[names.index(category)]),
    }


# --- duplicates ------------------------------------------------------------------------------------
def check_threshold(threshold: float) -> None:
    """A similarity threshold must be in (0, 1]."""
    if not 0.0 < threshold <= 1.0:
        raise AnalyticsError(f"threshold must be a cosine similarity in (0, 1]; got {threshold}")


Pairs = tuple[Ints, Ints, npt.NDArray[np.float32]]


def _range_pairs(x: Matrix, ids: Ints, threshold: float) -> Pairs:
    """Pairs (global ids, i < j) among the rows ``ids`` of ``x``: an exact FAISS range search."""
    members = np.ascontiguousarray(x[ids])
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(members)
    lims, sims, found = index.range_search(members, float(threshold))
    left = ids[np.repeat(np.arange(len(ids), dtype=np.int64), np.diff(lims.astype(np.int64)))]
    right = ids[found.astype(np.int64)]
    keep = right > left
    return left[keep], right[keep], sims[keep]


def _cells(x: Matrix) -> list[Ints]:
    """Inverted lists: each video in the lists of its ``CELL_PROBES`` nearest k-means centroids."""
    centroids, _ = kmeans(x, max(2, len(x) // CELL_SIZE), restarts=1, niter=10, sample_per_centroid=40)
    quantizer = faiss.IndexFlatIP(x.shape[1])
    quantizer.add(centroids)
    _, nearest = quantizer.search(x, CELL_PROBES)
    owner = np.repeat(np.arange(len(x), dtype=np.int64), CELL_PROBES)
    cells = nearest.reshape(-1)
    order = np.argsort(cells, kind="stable")
    bounds = np.searchsorted(cells[order], np.arange(len(centroids) + 1))
    return [owner[order[a:b]] for a, b in itertools.pairwise(bounds.tolist()) if b - a > 1]


def similar_pairs(x: Matrix, threshold: float) -> Pairs:
    """Pairs (i < j) with similarity >= ``threshold``: an exact FAISS range search up to
    ``EXACT_MAX`` videos; above, the same inside each inverted list (a video sits in the lists of
    its ``CELL_PROBES`` nearest of n / ``CELL_SIZE`` k-means centroids), pairs found twice kept once."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if len(x) <= EXACT_MAX:
        return _range_pairs(x, np.arange(len(x), dtype=np.int64), threshold)
    found = [_range_pairs(x, ids, threshold) for ids in _cells(x)]
    left = np.concatenate([f[0] for f in found])
    right = np.concatenate([f[1] for f in found])
    sims = np.concatenate([f[2] for f in found])
    _, first = np.unique(left * len(x) + right, return_index=True)
    return left[first], right[first], sims[first]


def _groups(n: int, left: npt.NDArray[np.int64], right: npt.NDArray[np.int64],
            sims: npt.NDArray[np.float32]) -> list[tuple[list[int], list[float]]]:
    """Connected groups of the pairs (union-find over the pairs found) with their pair similarities."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        parent[root(a)] = root(b)
    members: dict[int, list[int]] = {}
    for i in sorted(set(left.tolist()) | set(right.tolist())):
        members.setdefault(root(i), []).append(i)
    pair_sims: dict[int, list[float]] = {}
    for a, s in zip(left.tolist(), sims.tolist(), strict=True):
        pair_sims.setdefault(root(a), []).append(float(s))
    return [(members[r], pair_sims[r]) for r in members]


def duplicates(videos: VideoSet, threshold: float = DEFAULT_THRESHOLD) -> dict[str, Any]:
    """Groups of near-identical videos; each lists its URLs, first ingested first."""
    check_threshold(threshold)
    require_videos(videos, "duplicates")
    left, right, sims = similar_pairs(videos.vectors, threshold)
    groups: list[dict[str, Any]] = []
    for members, pair_sims in _groups(len(videos), left, right, sims):
        ordered = sorted(members, key=lambda i: (int(videos.ingested_ms[i]), videos.urls[i]))
        groups.append({
            "urls": [videos.urls[i] for i in ordered],
            "categories": [videos.categories[i] for i in ordered],
            "titles": [videos.titles[i] for i in ordered],
            "similarity_min": round(min(pair_sims), 4), "similarity_max": round(max(pair_sims), 4),
        })
    groups.sort(key=lambda g: (-len(g["urls"]), -g["similarity_max"]))
    method = ("exact range search (IndexFlatIP)" if len(videos) <= EXACT_MAX else
              f"range search in inverted lists ({CELL_PROBES} of {len(videos) // CELL_SIZE} per video)")
    return {"threshold": threshold, "videos": len(videos), "method": method, "groups": groups}


# --- trends ----------------------------------------------------------------------------------------
def period_of(ms: int, by: str) -> str:
    """The UTC day (``2026-12-03``) or ISO week (``2026-W49``) of an epoch-ms time."""
    when = datetime.fromtimestamp(ms / 1000, UTC)
    if by == "day":
        return when.strftime("%Y-%m-%d")
    if by == "week":
        year, week, _ = when.isocalendar()
        return f"{year}-W{week:02d}"
    raise AnalyticsError(f"trends are by 'day' or 'week'; got {by!r}")


def _tally(periods: list[str], groups: Sequence[str], segments: npt.NDArray[np.int64]
           ) -> dict[str, dict[str, dict[str, int]]]:
    out: dict[str, dict[str, dict[str, int]]] = {}
    for period, group, count in zip(periods, groups, segments.tolist(), strict=True):
        cell = out.setdefault(group, {}).setdefault(period, {"videos": 0, "segments": 0})
        cell["videos"] += 1
        cell["segments"] += int(count)
    return dict(sorted(out.items()))


def growth(series: dict[str, dict[str, int]], last: str, previous: str | None) -> float | None:
    """Relative change of videos from ``previous`` to ``last`` (None without a base)."""
    if previous is None:
        return None
    before = series.get(previous, {}).get("videos", 0)
    after = series.get(last, {}).get("videos", 0)
    return round((after - before) / before, 4) if before else None


def trends_k(videos: VideoSet, k: int | None) -> int | None:
    """The clusters of a trends report: ``k``, else chosen by silhouette (1 under 3 videos)."""
    if k is not None:
        return k
    return None if len(videos) >= 3 else 1


def trends(videos: VideoSet, by: str, clustering: Clustering) -> dict[str, Any]:
    """Videos and segments per period, per category and per cluster, and each cluster's growth."""
    require_videos(videos, "trends")
    periods = [period_of(int(ms), by) for ms in videos.ingested_ms.tolist()]
    labels = {c.id: f"{c.id}: {c.label}" for c in clustering.clusters}
    cluster_names = [labels[int(c)] for c in clustering.assignment.tolist()]
    per_cluster = _tally(periods, cluster_names, videos.segments)
    ordered = sorted(set(periods))
    last = ordered[-1]
    previous = ordered[-2] if len(ordered) > 1 else None
    return {
        "by": by, "periods": ordered, "last": last, "previous": previous,
        "categories": _tally(periods, videos.categories, videos.segments),
        "clusters": per_cluster,
        "growth": {name: growth(series, last, previous) for name, series in per_cluster.items()},
    }
