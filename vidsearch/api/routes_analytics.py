"""``/v1/analytics/...``: the four corpus analytics of ``vidsearch analytics`` and their plots.

Query parameters are the CLI's options (``k``/``auto``/``category``, ``category``/``limit``,
``threshold``, ``by``/``k``); JSON answers have the shape of ``--json``; the plot routes answer
PNG or SVG drawn by ``pipeline/analytics/plots.py``. Everything is computed from the process's
``CorpusCache`` (``ApiContext.corpus``): the video set is read once per collection generation and
each result is kept until new rows land, so the JSON route and its plot share one clustering.

Out-of-range parameters (k < 1, limit < 1, a threshold outside (0, 1], an unknown ``by``) are 422
``invalid-request``; what the CLI refuses with exit 2 after looking at the data (no collection, no
videos, k over the number of videos, an unknown or one-video category, ``k`` with ``auto``) is 400
``invalid-analytics``. Any key may call them (read role).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from pipeline.analytics import methods as analytics
from pipeline.analytics.corpus import VideoSet
from pipeline.errors import AnalyticsError, StoreError
from vidsearch.api.keys import ApiKey
from vidsearch.api.problems import ProblemError
from vidsearch.api.schemas import ClustersOut, DuplicatesOut, OutliersOut, TrendsOut
from vidsearch.api.security import read_access

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])
Caller = Annotated[ApiKey, Depends(read_access)]
T = TypeVar("T")
DEFAULT_K = 8
Format = Literal["png", "svg"]
IMAGE: dict[int | str, dict[str, Any]] = {200: {"description": "the plot", "content": {
    "image/png": {},  # images: no schema (a document validator would read them as text)
    "image/svg+xml": {}}}}
K = Annotated[int | None, Query(ge=1, description=f"number of clusters (default {DEFAULT_K})")]
Auto = Annotated[bool, Query(description="choose k by the best mean silhouette (not with k)")]
Category = Annotated[str | None, Query(description="only the videos of this category")]


def _compute(request: Request, name: tuple[Any, ...], compute: Callable[[VideoSet], T]) -> T:
    """``compute`` on the corpus (kept per generation under ``name``), errors as problems."""
    try:
        return request.app.state.ctx.corpus().memo(name, compute)  # type: ignore[no-any-return]
    except AnalyticsError as exc:
        raise ProblemError(400, "invalid-analytics", "Analytics cannot run on this input",
                           str(exc)) from exc
    except StoreError as exc:
        raise ProblemError(503, "unavailable", "Service unavailable", f"Milvus failed: {exc}") from exc


def _chosen_k(k: int | None, auto: bool) -> int | None:
    if auto and k is not None:
        raise ProblemError(400, "invalid-analytics", "Analytics cannot run on this input",
                           "give k or auto=true, not both")
    return None if auto else (k or DEFAULT_K)


def _clustering(request: Request, category: str | None, k: int | None
                ) -> tuple[VideoSet, analytics.Clustering]:
    def run(videos: VideoSet) -> tuple[VideoSet, analytics.Clustering]:
        chosen = analytics.only_category(videos, category)
        return chosen, analytics.clusters(chosen, k)

    return _compute(request, ("clusters", category, k), run)


def _trends(request: Request, by: str, k: int | None) -> dict[str, Any]:
    def run(videos: VideoSet) -> dict[str, Any]:
        analytics.require_videos(videos, "trends")
        _, clustering = _clustering(request, None, analytics.trends_k(videos, k))
        return analytics.trends(videos, by, clustering)

    return _compute(request, ("trends", by, k), run)


def _image(content: bytes, fmt: str) -> Response:
    from pipeline.analytics.plots import MEDIA_TYPES  # noqa: PLC0415  (matplotlib only when plotting)

    return Response(content, media_type=MEDIA_TYPES[fmt], headers={"Cache-Control": "no-cache"})


@router.get("/clusters", response_model=ClustersOut, summary="k-means clusters, labels, central videos")
def clusters(request: Request, _key: Caller, k: K = None, auto: Auto = False,
             category: Category = None) -> dict[str, Any]:
    videos, clustering = _clustering(request, category, _chosen_k(k, auto))
    return clustering.to_dict(videos)


@router.get("/clusters/map.{fmt}", response_class=Response, responses=IMAGE,
            summary="The cluster map (first two principal components)")
def cluster_map(request: Request, _key: Caller, fmt: Format, k: K = None, auto: Auto = False,
                category: Category = None) -> Response:
    chosen = _chosen_k(k, auto)

    def draw(_videos: VideoSet) -> bytes:
        from pipeline.analytics.plots import cluster_map_image  # noqa: PLC0415

        videos, clustering = _clustering(request, category, chosen)
        where = f" in {category}" if category else ""
        return cluster_map_image(clustering, fmt, f"{len(videos)} videos{where}, k = {clustering.k} (PCA)")

    return _image(_compute(request, ("map", category, chosen, fmt), draw), fmt)


@router.get("/outliers", response_model=OutliersOut, summary="Videos closer to another category")
def outliers(request: Request, _key: Caller, category: Category = None,
             limit: Annotated[int | None, Query(ge=1, description="at most this many")] = None
             ) -> dict[str, Any]:
    return _compute(request, ("outliers", category, limit),
                    lambda videos: analytics.outliers(videos, category, limit))


@router.get("/duplicates", response_model=DuplicatesOut, summary="Groups of near-identical videos")
def duplicates(request: Request, _key: Caller, threshold: Annotated[float | None, Query(
        gt=0, le=1, description="cosine similarity (default: the duplicate_threshold setting)")] = None
               ) -> dict[str, Any]:
    chosen = threshold if threshold is not None else request.app.state.ctx.settings.duplicate_threshold
    return _compute(request, ("duplicates", chosen), lambda videos: analytics.duplicates(videos, chosen))


By = Annotated[Literal["day", "week"], Query(description="period (UTC)")]
TrendsK = Annotated[int | None, Query(ge=1, description="clusters (default: chosen by silhouette)")]


@router.get("/trends", response_model=TrendsOut, summary="Videos and segments ingested per period")
def trends(request: Request, _key: Caller, by: By = "day", k: TrendsK = None) -> dict[str, Any]:
    return _trends(request, by, k)


@router.get("/trends/plot.{fmt}", response_class=Response, responses=IMAGE,
            summary="Videos ingested per period by category and by cluster")
def trends_plot(request: Request, _key: Caller, fmt: Format, by: By = "day",
                k: TrendsK = None) -> Response:
    def draw(videos: VideoSet) -> bytes:
        from pipeline.analytics.plots import trends_image  # noqa: PLC0415

        return trends_image(_trends(request, by, k), fmt, f"{len(videos)} videos per {by}")

    return _image(_compute(request, ("trends-plot", by, k, fmt), draw), fmt)
