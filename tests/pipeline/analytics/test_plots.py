"""Plots drawn to files and to bytes (the API's plot routes), from analytics of an in-memory set."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.analytics import methods as analytics
from pipeline.analytics import plots
from pipeline.errors import AnalyticsError
from tests.pipeline.analytics.helpers import DAY_MS, video_set

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_the_cluster_map_is_png_or_svg_bytes_and_a_file(tmp_path: Path) -> None:
    clustering = analytics.clusters(video_set(), 3)
    assert plots.cluster_map_image(clustering, "png", "map").startswith(PNG_MAGIC)
    svg = plots.cluster_map_image(clustering, "svg", "map").decode()
    assert "<svg" in svg and "principal component 1" in svg
    plots.cluster_map(clustering, tmp_path / "map.png", "map")
    assert (tmp_path / "map.png").read_bytes().startswith(PNG_MAGIC)
    plots.cluster_map(clustering, tmp_path / "map.svg", "map")
    written = (tmp_path / "map.svg").read_text()
    assert written.lstrip().startswith("<?xml") and "<svg" in written and "principal component 1" in written


def test_the_trends_plot_is_png_or_svg_bytes_and_a_file(tmp_path: Path) -> None:
    videos = video_set(times=[(i % 3) * DAY_MS for i in range(36)])
    report = analytics.trends(videos, "day", analytics.clusters(videos, 3))
    assert plots.trends_image(report, "png", "trends").startswith(PNG_MAGIC)
    assert "<svg" in plots.trends_image(report, "svg", "trends").decode()
    plots.trends_plot(report, tmp_path / "t.svg", "trends")
    assert (tmp_path / "t.svg").read_text().lstrip().startswith("<?xml")


def test_a_format_other_than_png_or_svg_is_an_error() -> None:
    clustering = analytics.clusters(video_set(), 2)
    with pytest.raises(AnalyticsError, match="png or svg"):
        plots.cluster_map_image(clustering, "gif", "map")


def test_one_period_says_there_is_no_growth_yet() -> None:
    videos = video_set()
    report = analytics.trends(videos, "day", analytics.clusters(videos, 3))
    assert report["previous"] is None
    assert "no growth yet" in plots.trends_image(report, "svg", "trends").decode()
