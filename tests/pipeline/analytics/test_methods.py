"""Analytics logic on video sets built in memory (pure functions: FAISS and numpy, no services)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.analytics import methods as analytics
from pipeline.analytics.methods import period_of
from pipeline.errors import AnalyticsError
from tests.pipeline.analytics.helpers import DAY_MS, video_set


def test_kmeans_with_the_planted_k_recovers_the_topics_and_labels_them_from_titles() -> None:
    videos = video_set()
    result = analytics.clusters(videos, 3)
    assert sorted(c.size for c in result.clusters) == [12, 12, 12]
    for c in result.clusters:
        members = {videos.categories[i] for i in np.flatnonzero(result.assignment == c.id)}
        assert len(members) == 1
        assert c.label.split()[0] == members.pop()
        assert len(c.central) == analytics.CENTRAL and 0 < c.cohesion <= 1
    assert result.coords.shape == (36, 2)


def test_auto_chooses_the_planted_number_of_clusters_by_silhouette() -> None:
    result = analytics.clusters(video_set(), None)
    assert result.k == 3
    assert result.silhouettes[3] == max(result.silhouettes.values())
    assert "silhouette" in result.criterion


def test_k_larger_than_the_videos_is_an_error() -> None:
    with pytest.raises(AnalyticsError, match="between 1 and the number of videos"):
        analytics.clusters(video_set(per_topic=2), 7)


def test_clustering_no_videos_is_an_error() -> None:
    empty = video_set().subset(np.zeros(36, dtype=bool))
    with pytest.raises(AnalyticsError, match="no videos"):
        analytics.clusters(empty, 2)


def test_silhouette_is_near_one_for_separated_clusters_and_zero_for_singletons() -> None:
    x = np.array([[1, 0], [0.99, 0.141], [0, 1], [0.141, 0.99]], dtype=np.float32)
    assert analytics.silhouette(x, np.array([0, 0, 1, 1])) > 0.8
    assert analytics.silhouette(x, np.array([0, 1, 2, 3])) == 0.0


def test_outliers_rank_the_misfiled_videos_first_with_their_true_category() -> None:
    videos = video_set(misfiled=2)
    report = analytics.outliers(videos)
    top = report["outliers"][:2]
    assert {o["url"] for o in top} == {videos.urls[11], videos.urls[10]}
    assert all(o["category"] == "sports" and o["suggested"] == "animals" for o in top)
    assert all(o["score"] > 0 for o in report["outliers"])


def test_outliers_of_one_category_and_limit() -> None:
    videos = video_set(misfiled=2)
    report = analytics.outliers(videos, "sports", limit=1)
    assert len(report["outliers"]) == 1 and report["outliers"][0]["category"] == "sports"


def test_a_category_with_one_video_is_skipped_and_an_error_when_asked_for() -> None:
    cats = ["animals"] * 12 + ["sports"] * 12 + ["cooking"] * 11 + ["solo"]
    videos = video_set(categories=cats)
    report = analytics.outliers(videos)
    assert report["skipped_categories"] == ["solo"]
    assert all(o["suggested"] != "solo" and o["category"] != "solo" for o in report["outliers"])
    with pytest.raises(AnalyticsError, match="'solo' has one video"):
        analytics.outliers(videos, "solo")


def test_outliers_need_two_categories_and_a_known_category() -> None:
    with pytest.raises(AnalyticsError, match="at least two categories"):
        analytics.outliers(video_set(categories=["animals"] * 36))
    with pytest.raises(AnalyticsError, match="no videos in category 'nope'"):
        analytics.outliers(video_set(), "nope")


def test_duplicates_are_grouped_by_range_search() -> None:
    videos = video_set(dups=3)
    report = analytics.duplicates(videos, 0.95)
    groups = {tuple(g["urls"]) for g in report["groups"]}
    assert groups == {(videos.urls[i], videos.urls[36 + i]) for i in range(3)}
    assert all(g["similarity_min"] >= 0.95 for g in report["groups"])
    assert report["method"] == "exact range search (IndexFlatIP)"


def test_duplicates_above_the_exact_size_search_inside_inverted_lists(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analytics, "EXACT_MAX", 10)
    monkeypatch.setattr(analytics, "CELL_SIZE", 30)
    videos = video_set(per_topic=100, dups=4)
    report = analytics.duplicates(videos, 0.95)
    assert report["method"].startswith("range search in inverted lists (2 of 10")
    assert {tuple(g["urls"]) for g in report["groups"]} == {
        (videos.urls[i], videos.urls[300 + i]) for i in range(4)}


def test_the_inverted_lists_find_the_same_pairs_as_the_exact_search(monkeypatch: pytest.MonkeyPatch) -> None:
    videos = video_set(per_topic=100, dups=30, seed=3)
    exact = analytics.similar_pairs(videos.vectors, 0.9)
    monkeypatch.setattr(analytics, "EXACT_MAX", 10)
    monkeypatch.setattr(analytics, "CELL_SIZE", 25)
    cells = analytics.similar_pairs(videos.vectors, 0.9)
    assert set(zip(*cells[:2], strict=True)) == set(zip(*exact[:2], strict=True))
    assert len(exact[0]) == 30


def test_three_copies_make_one_group() -> None:
    videos = video_set(dups=2)
    videos.vectors[37] = videos.vectors[36]  # the copy of video 1 becomes a copy of video 0 too
    videos.vectors[1] = videos.vectors[0]
    report = analytics.duplicates(videos, 0.95)
    assert [len(g["urls"]) for g in report["groups"]] == [4]


@pytest.mark.parametrize("threshold", [0.0, -0.5, 1.5, float("nan")])
def test_a_threshold_outside_zero_one_is_an_error(threshold: float) -> None:
    with pytest.raises(AnalyticsError, match=r"threshold must be a cosine similarity in \(0, 1\]"):
        analytics.duplicates(video_set(), threshold)


def test_periods_are_utc_days_or_iso_weeks() -> None:
    ms = 1_764_720_000_000  # 2025-12-03T00:00:00Z
    assert period_of(ms, "day") == "2025-12-03"
    assert period_of(ms, "week") == "2025-W49"
    with pytest.raises(AnalyticsError, match="'day' or 'week'"):
        period_of(ms, "month")


def test_trends_count_videos_and_segments_per_period_and_cluster_growth() -> None:
    base = 1_764_720_000_000
    # animals: 12 on day 1; sports: 4 on day 1, 8 on day 2; cooking: 12 on day 2
    times = [base] * 12 + [base] * 4 + [base + DAY_MS] * 8 + [base + DAY_MS] * 12
    videos = video_set(times=times)
    report = analytics.trends(videos, "day", analytics.clusters(videos, 3))
    assert report["periods"] == ["2025-12-03", "2025-12-04"]
    assert report["categories"]["sports"] == {"2025-12-03": {"videos": 4, "segments": 40},
                                             "2025-12-04": {"videos": 8, "segments": 80}}
    growth = {name.split(": ")[1].split()[0]: g for name, g in report["growth"].items()}
    assert growth == {"animals": -1.0, "sports": 1.0, "cooking": None}
