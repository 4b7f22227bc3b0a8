"""``vidsearch analytics clusters|outliers|duplicates|trends``: load the video set, run, print.

Input is checked before anything is read (k, threshold, plot file); the video set of the configured
model's collection comes from ``pipeline.analytics.cache.CorpusCache`` (cache in
``{data_dir}/analytics/``). Output is a table for people or ``--json``; ``--plot FILE`` writes a
PNG or SVG. Bad input exits 2 through the CLI's ``VidsearchError`` handler.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from pipeline.analytics import methods as analytics
from pipeline.analytics.cache import CorpusCache
from pipeline.analytics.corpus import VideoSet
from pipeline.clients import Clients
from pipeline.errors import AnalyticsError
from pipeline.settings import Settings
from vidsearch.cli.display import print_json
from vidsearch.exit_codes import EXIT_OK

READ_TIMEOUT_S = 600.0
"""Bound on one Milvus call while reading the video vectors (a query iterator's page included)."""


def load_videos(settings: Settings) -> VideoSet:
    """The video set of the configured model's collection (cached per generation and row count)."""
    with Clients.from_settings(settings, store_timeout_s=READ_TIMEOUT_S) as clients:
        corpus = CorpusCache(settings, clients)
        videos, hit = corpus.videos()
    print(f"{len(videos)} videos in {corpus.collection}{' (cached)' if hit else ''}", file=sys.stderr)
    return videos



def _check(args: argparse.Namespace) -> None:
    k = getattr(args, "k", None)
    if k is not None and k < 1:
        raise AnalyticsError(f"--k must be at least 1; got {k}")
    if getattr(args, "threshold", None) is not None:
        analytics.check_threshold(args.threshold)
    if getattr(args, "limit", None) is not None and args.limit < 1:
        raise AnalyticsError(f"--limit must be at least 1; got {args.limit}")
    if getattr(args, "plot", None) is not None:
        from pipeline.analytics.plots import check_plot_path  # noqa: PLC0415  (matplotlib only when plotting)

        check_plot_path(args.plot)


def clusters(args: argparse.Namespace, videos: VideoSet) -> None:
    videos = analytics.only_category(videos, args.category)
    result = analytics.clusters(videos, None if args.auto else args.k)
    if args.plot:
        from pipeline.analytics.plots import cluster_map  # noqa: PLC0415

        where = f" in {args.category}" if args.category else ""
        cluster_map(result, args.plot, f"{len(videos)} videos{where}, k = {result.k} (PCA)")
    if args.json:
        print_json(result.to_dict(videos))
        return
    print(f"k = {result.k} ({result.criterion})")
    for c in result.clusters:
        print(f"cluster {c.id}: {c.size} videos, cohesion {c.cohesion:.3f}, label: {c.label}")
        for v in c.central:
            print(f"    {v['similarity']:.3f}  {v['category']:<12} {v['url']}  {v['title']}")


def outliers(args: argparse.Namespace, videos: VideoSet) -> None:
    report = analytics.outliers(videos, args.category, args.limit)
    if args.json:
        print_json(report)
        return
    print(f"{'score':>6}  {'filed under':<14} {'suggested':<14} video")
    for o in report["outliers"]:
        print(f"{o['score']:6.3f}  {o['category']:<14} {o['suggested']:<14} {o['url']}  {o['title']}")
    skipped = report["skipped_categories"]
    note = f"; skipped (one video): {', '.join(skipped)}" if skipped else ""
    print(f"{len(report['outliers'])} of {report['videos']} videos closer to another category{note}",
          file=sys.stderr)


def duplicates(args: argparse.Namespace, videos: VideoSet) -> None:
    report = analytics.duplicates(videos, args.threshold)
    if args.json:
        print_json(report)
        return
    for n, group in enumerate(report["groups"], 1):
        print(f"group {n}: {len(group['urls'])} videos, similarity "
              f"{group['similarity_min']:.3f}-{group['similarity_max']:.3f}")
        for url, category in zip(group["urls"], group["categories"], strict=True):
            print(f"    {category:<14} {url}")
    print(f"{len(report['groups'])} group(s) at similarity >= {args.threshold} among "
          f"{report['videos']} videos ({report['method']})", file=sys.stderr)


def trends(args: argparse.Namespace, videos: VideoSet) -> None:
    analytics.period_of(0, args.by)
    analytics.require_videos(videos, "trends")
    report = analytics.trends(videos, args.by, analytics.clusters(videos, analytics.trends_k(videos, args.k)))
    if args.plot:
        from pipeline.analytics.plots import trends_plot  # noqa: PLC0415

        trends_plot(report, args.plot, f"{len(videos)} videos per {args.by}")
    if args.json:
        print_json(report)
        return
    for title, series in (("category", report["categories"]), ("cluster", report["clusters"])):
        print(f"by {title}: " + "  ".join(report["periods"]))
        for name, cells in series.items():
            counts = "  ".join(f"{cells.get(p, {}).get('videos', 0)}v/{cells.get(p, {}).get('segments', 0)}s"
                               for p in report["periods"])
            print(f"    {name:<40} {counts}")
    for name, value in report["growth"].items():
        shown = "n/a (no earlier period)" if value is None else f"{value:+.0%}"
        print(f"growth {report['previous']} -> {report['last']}: {name}: {shown}")


COMMANDS: dict[str, Callable[[argparse.Namespace, VideoSet], None]] = {
    "clusters": clusters, "outliers": outliers, "duplicates": duplicates, "trends": trends,
}


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Check the arguments, load the video set, run one analytics command."""
    if getattr(args, "threshold", False) is None:
        args.threshold = settings.duplicate_threshold
    _check(args)
    COMMANDS[args.analysis](args, load_videos(settings))
    return EXIT_OK

