"""``vidsearch analytics`` on the real stack: a planted collection (sandbox catalog) ingested by
Celery workers through the sandbox over HTTP into Milvus Lite, then every analysis and its bad input."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack import Stack, start_stack
from vidsearch.sandbox.planted import Planted, plant

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOPICS = 4
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    return plant(topics=TOPICS, per_topic=6, duplicates=2, misfiled=2, solo=True, seed=12)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, planted: Planted) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("analytics")
    planted.write(root / "planted")
    stack = start_stack(root, sandbox_args=["--catalog", str(root / "planted" / "catalog.json")])
    stack.start_worker("w1", "embedding,polling,writing", concurrency=2)
    proc = stack.vidsearch("submit", str(root / "planted" / "manifest.csv"), "--wait", "--json",
                           timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["done"] == len(planted.lines)
    yield stack
    stack.stop()


def analytics(stack: Stack, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return stack.vidsearch("analytics", *args, check=False, env=env)


def as_json(stack: Stack, *args: str) -> dict:
    proc = analytics(stack, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout))


def bad_input(proc: subprocess.CompletedProcess[str], words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr


def test_duplicates_finds_exactly_the_planted_copies(stack: Stack, planted: Planted) -> None:
    report = as_json(stack, "duplicates")
    found = sorted(sorted(g["urls"]) for g in report["groups"])
    assert found == sorted(sorted(g) for g in planted.duplicates)
    assert report["videos"] == len(planted.lines)
    assert all(g["similarity_min"] >= 0.9 for g in report["groups"])


def test_outliers_rank_the_misfiled_lines_first_with_their_true_category(
    stack: Stack, planted: Planted
) -> None:
    report = as_json(stack, "outliers")
    top = {o["url"]: o["suggested"] for o in report["outliers"][: len(planted.misfiled)]}
    assert top == planted.misfiled
    assert report["skipped_categories"] == ["solo"]


def test_clusters_match_the_planted_topics_and_the_map_is_a_png(
    stack: Stack, planted: Planted, tmp_path: Path
) -> None:
    plot = tmp_path / "map.png"
    report = as_json(stack, "clusters", "--k", str(TOPICS), "--plot", str(plot))
    by_cluster: dict[int, set[str]] = {}
    for video in report["videos"]:
        if planted.topic[video["url"]] != "solo":  # one video of its own: it joins some cluster
            by_cluster.setdefault(video["cluster"], set()).add(planted.topic[video["url"]])
    assert sorted(len(topics) for topics in by_cluster.values()) == [1] * TOPICS  # one topic each
    assert len(set().union(*by_cluster.values())) == TOPICS
    assert all(c["central"] and c["label"] for c in report["clusters"])
    assert plot.read_bytes().startswith(PNG_MAGIC)


def test_auto_clusters_choose_k_by_silhouette(stack: Stack) -> None:
    report = as_json(stack, "clusters", "--auto")
    assert report["criterion"].startswith("best mean silhouette")
    scores = report["silhouettes"]
    assert str(report["k"]) == max(scores, key=lambda k: scores[k])
    assert len(report["clusters"]) == report["k"] and len(scores) >= 2


def test_trends_count_today_per_category_and_plot_an_svg(
    stack: Stack, planted: Planted, tmp_path: Path
) -> None:
    plot = tmp_path / "trends.svg"
    report = as_json(stack, "trends", "--by", "week", "--k", str(TOPICS), "--plot", str(plot))
    assert len(report["periods"]) == 1 and report["previous"] is None
    filed = {c for _, c, _ in planted.lines}
    assert set(report["categories"]) == filed
    total = sum(cell["videos"] for series in report["categories"].values() for cell in series.values())
    assert total == len(planted.lines)
    assert all(g is None for g in report["growth"].values())
    assert plot.read_text().lstrip().startswith("<?xml")


def test_a_repeated_command_reads_the_cache(stack: Stack) -> None:
    first = analytics(stack, "duplicates")
    again = analytics(stack, "duplicates")
    assert first.returncode == again.returncode == 0
    assert "(cached)" in again.stderr
    assert again.stdout == first.stdout


def test_text_output_lists_the_groups_and_the_clusters(stack: Stack, planted: Planted) -> None:
    dup = analytics(stack, "duplicates")
    assert all(url in dup.stdout for group in planted.duplicates for url in group)
    clusters = analytics(stack, "clusters", "--k", "2")
    assert clusters.returncode == 0 and clusters.stdout.count("cluster ") == 2


@pytest.mark.parametrize("threshold", ["0", "1.5", "-0.2"])
def test_a_bad_threshold_is_exit_2(stack: Stack, threshold: str) -> None:
    bad_input(analytics(stack, "duplicates", "--threshold", threshold), "threshold must be")


def test_k_larger_than_the_videos_is_exit_2(stack: Stack, planted: Planted) -> None:
    bad_input(analytics(stack, "clusters", "--k", str(len(planted.lines) + 1)),
              "k must be between 1 and the number of videos")
    bad_input(analytics(stack, "clusters", "--k", "0"), "--k must be at least 1")


def test_a_category_with_one_video_is_exit_2(stack: Stack) -> None:
    bad_input(analytics(stack, "outliers", "--category", "solo"), "'solo' has one video")
    bad_input(analytics(stack, "clusters", "--category", "solo", "--k", "2"), "k must be between 1")
    bad_input(analytics(stack, "clusters", "--category", "solo", "--auto"), "only 1 video")


def test_an_unknown_category_and_a_bad_plot_file_are_exit_2(stack: Stack, tmp_path: Path) -> None:
    bad_input(analytics(stack, "outliers", "--category", "nope"), "no videos in category 'nope'")
    bad_input(analytics(stack, "clusters", "--plot", str(tmp_path / "map.gif")), "must end in .png or .svg")
    bad_input(analytics(stack, "trends", "--plot", str(tmp_path / "no" / "t.png")), "does not exist")


def test_bad_arguments_are_exit_2(stack: Stack) -> None:
    assert analytics(stack, "trends", "--by", "month").returncode == 2
    assert analytics(stack, "clusters", "--k", "3", "--auto").returncode == 2
    bad_input(analytics(stack, "outliers", "--limit", "0"), "--limit must be at least 1")


# Every analysis loads the video set before it runs (``run``: ``load_videos``, then the command), so
# the two tests below split the four between them: each still meets both refusals' path.
def test_a_collection_never_ingested_is_exit_2(stack: Stack) -> None:
    for kind in ("clusters", "duplicates"):
        bad_input(analytics(stack, kind, VIDSEARCH_COLLECTION_PREFIX="never"), "does not exist")


def test_an_empty_collection_is_exit_2(stack: Stack) -> None:
    from pipeline.milvus.store import MilvusStore
    from pipeline.settings import load_settings

    store = MilvusStore(load_settings(milvus_uri=stack.env["VIDSEARCH_MILVUS_URI"],
                                      collection_prefix="empty"))
    store.ensure_collection("marengo3.0", 512)
    store.close()
    for kind in ("outliers", "trends"):
        bad_input(analytics(stack, kind, VIDSEARCH_COLLECTION_PREFIX="empty"), "no videos")


def search_urls(stack: Stack, text: str, *args: str, **env: str) -> list[str]:
    proc = stack.vidsearch("search", text, "--top-k", "8", "--min-score", "-1", "--json", *args, env=env)
    assert proc.returncode == 0, proc.stderr
    return [h["url"] for h in json.loads(proc.stdout)]


def test_search_collapses_a_planted_duplicate_group_to_its_best_hit(stack: Stack, planted: Planted) -> None:
    original, copy = planted.duplicates[0]
    scenes = next(e for e in planted.catalog if e["url"] == original)["scenes"]
    text = " ".join(word for scene in scenes for word in scene["words"])
    plain = search_urls(stack, text)
    assert set(plain[:2]) == {original, copy}, plain
    collapsed = search_urls(stack, text, "--collapse-duplicates")
    assert collapsed[0] == plain[0] and plain[1] not in collapsed and len(collapsed) == 8
    by_setting = search_urls(stack, text, VIDSEARCH_SEARCH_COLLAPSE_DUPLICATES="true")
    assert by_setting == collapsed
    refused = search_urls(stack, text, "--no-collapse-duplicates",
                          VIDSEARCH_SEARCH_COLLAPSE_DUPLICATES="true")
    assert refused == plain
