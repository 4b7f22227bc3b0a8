"""Plots of corpus analytics (matplotlib, Agg backend): the cluster map and the trends.

The file's extension picks the format: ``.png`` or ``.svg``; anything else raises
:class:`AnalyticsError`. ``*_image`` functions return the bytes instead (the HTTP API's plot
routes); pyplot is not thread-safe, so one lock serializes drawing in a process. The map draws at
most ``MAP_POINTS`` videos (a fixed random sample when there are more), coloured by cluster, each
cluster's label at its videos' mean position.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from pipeline.analytics.methods import Clustering
from pipeline.errors import AnalyticsError

FORMATS = (".png", ".svg")
MAP_POINTS = 20000
MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}
_DRAWING = threading.Lock()


def check_plot_path(path: Path) -> None:
    """A plot goes to a ``.png`` or ``.svg`` file in an existing directory."""
    if path.suffix.lower() not in FORMATS:
        raise AnalyticsError(f"plot file {path} must end in .png or .svg")
    if not path.parent.is_dir():
        raise AnalyticsError(f"plot directory {path.parent} does not exist")


def cluster_map(clustering: Clustering, path: Path, title: str) -> None:
    """Videos on their first two principal components, coloured by cluster."""
    with _DRAWING:
        _save(_map_figure(clustering, title), path)


def cluster_map_image(clustering: Clustering, fmt: str, title: str) -> bytes:
    """The cluster map as ``fmt`` (png or svg) bytes."""
    with _DRAWING:
        return _render(_map_figure(clustering, title), fmt)


def _map_figure(clustering: Clustering, title: str) -> Any:
    coords, labels = clustering.coords, clustering.assignment
    shown = np.arange(len(labels))
    if len(shown) > MAP_POINTS:
        shown = np.sort(np.random.default_rng(0).choice(shown, MAP_POINTS, replace=False))
    fig, ax = plt.subplots(figsize=(9, 7), dpi=110)
    cmap = plt.get_cmap("tab20" if clustering.k > 10 else "tab10")
    size = 14 if len(shown) < 2000 else 3
    for cluster in clustering.clusters:
        members = shown[labels[shown] == cluster.id]
        ax.scatter(coords[members, 0], coords[members, 1], s=size, color=cmap(cluster.id % cmap.N),
                   label=f"{cluster.id}: {cluster.label} ({cluster.size})", alpha=0.8)
        if len(members):
            x, y = coords[members].mean(axis=0)
            ax.annotate(cluster.label, (x, y), fontsize=9, weight="bold", ha="center",
                        bbox={"boxstyle": "round", "fc": "white", "alpha": 0.7})
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="best", markerscale=2 if size < 10 else 1)
    return fig


def _stacked(ax: Any, periods: list[str], series: dict[str, dict[str, dict[str, int]]], title: str,
             notes: dict[str, str]) -> None:
    bottom = np.zeros(len(periods))
    cmap = plt.get_cmap("tab20")
    for n, (name, cells) in enumerate(series.items()):
        values = np.array([cells.get(p, {}).get("videos", 0) for p in periods], dtype=float)
        ax.bar(periods, values, bottom=bottom, label=name + notes.get(name, ""), color=cmap(n % cmap.N))
        bottom += values
    ax.set_title(title)
    ax.set_ylabel("videos ingested")
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _growth_notes(report: dict[str, Any]) -> dict[str, str]:
    if report["previous"] is None:
        return {}
    return {name: " (new)" if value is None else f" ({value:+.0%})"
            for name, value in report["growth"].items()}


def trends_plot(report: dict[str, Any], path: Path, title: str) -> None:
    """Videos ingested per period, stacked by category (top) and by cluster (bottom, with each
    cluster's growth between the last two periods in its legend)."""
    with _DRAWING:
        _save(_trends_figure(report, title), path)


def trends_image(report: dict[str, Any], fmt: str, title: str) -> bytes:
    """The trends plot as ``fmt`` (png or svg) bytes."""
    with _DRAWING:
        return _render(_trends_figure(report, title), fmt)


def _trends_figure(report: dict[str, Any], title: str) -> Any:
    periods = report["periods"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 8), dpi=110, sharex=True)
    _stacked(top, periods, report["categories"], f"{title}: by category", {})
    _stacked(bottom, periods, report["clusters"],
             _cluster_title(report), _growth_notes(report))
    bottom.set_xlabel(f"period ({report['by']}, UTC)")
    return fig


def _cluster_title(report: dict[str, Any]) -> str:
    if report["previous"] is None:
        return "by cluster (one period: no growth yet)"
    return f"by cluster (growth {report['previous']} -> {report['last']})"


def _render(fig: Any, fmt: str) -> bytes:
    if fmt not in MEDIA_TYPES:
        plt.close(fig)
        raise AnalyticsError(f"a plot is png or svg; got {fmt!r}")
    buffer = io.BytesIO()
    try:
        fig.tight_layout()
        fig.savefig(buffer, format=fmt)
    finally:
        plt.close(fig)
    return buffer.getvalue()


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    try:
        fig.savefig(path)
    except OSError as exc:
        raise AnalyticsError(f"cannot write plot {path}: {exc}") from exc
    finally:
        plt.close(fig)
