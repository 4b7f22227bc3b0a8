"""``/v1/search`` (GET and POST) and ``/v1/videos/similar``: parse, check limits, search, answer.

The handlers are plain functions: FastAPI runs them in its thread pool, where the Redis and Milvus
calls of ``Searcher.search`` block nothing else. The answer is ``result_to_json`` (the shape of
``vidsearch search --json``) with ``X-Vidsearch-Cache: hit`` or ``miss``, the relevance floor
applied in ``X-Vidsearch-Min-Score`` and how many hits it hid in ``X-Vidsearch-Below-Min-Score``
(a page asks again with ``min_score=-1`` to show the near misses).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from pipeline.errors import QueryError, RateLimitedError, StoreError, TransientError, VidsearchError
from pipeline.search.query import MAX_TOP_K, MIN_SCORE_LOWEST
from pipeline.search.query import Query as SearchQuery
from pipeline.search.results import result_to_json
from vidsearch.api.context import ApiContext
from vidsearch.api.keys import ApiKey
from vidsearch.api.problems import ProblemError
from vidsearch.api.schemas import (
    DEFAULT_TOP_K,
    HTTP_URL,
    MIN_SCORE,
    SETTING,
    TOP_K,
    HitOut,
    SearchBody,
    SearchParams,
)
from vidsearch.api.security import charge, read_identity

router = APIRouter(prefix="/v1", tags=["search"])
Caller = Annotated[ApiKey, Depends(read_identity)]
CACHE_HEADER = "X-Vidsearch-Cache"
FLOOR_HEADER = "X-Vidsearch-Min-Score"
BELOW_HEADER = "X-Vidsearch-Below-Min-Score"
HITS = {"model": list[HitOut], "headers": {
    CACHE_HEADER: {"description": "hit when the result came from the result cache, else miss",
                   "schema": {"type": "string", "enum": ["hit", "miss"]}},
    FLOOR_HEADER: {"description": "the relevance floor applied (min_score, else the setting)",
                   "schema": {"type": "number"}},
    BELOW_HEADER: {"description": "how many hits scored below the floor and were left out",
                   "schema": {"type": "integer", "minimum": 0}}}}


def check_limits(ctx: ApiContext, data: dict[str, Any]) -> None:
    """Query length and top-k cap (400 problems naming the limit)."""
    s = ctx.settings
    text = data.get("text") or ""
    if len(text) > s.api_max_query_chars:
        raise ProblemError(400, "query-too-long", "Search text too long",
                           f"the search text has {len(text)} characters; at most "
                           f"{s.api_max_query_chars} are accepted", limit=s.api_max_query_chars)
    top_k = data.get("top_k")
    if isinstance(top_k, int) and top_k > s.api_max_top_k:
        raise ProblemError(400, "top-k-too-large", "top_k too large",
                           f"top_k {top_k} is over this server's cap of {s.api_max_top_k}",
                           limit=s.api_max_top_k)


def _query(data: dict[str, Any]) -> SearchQuery:
    try:
        return SearchQuery.from_mapping(data)
    except QueryError as exc:
        raise ProblemError(400, "invalid-query", "Invalid query", str(exc)) from exc


def _unavailable(exc: VidsearchError) -> ProblemError:
    if isinstance(exc, RateLimitedError):
        wait = max(1, int(exc.retry_after_s or 1))
        return ProblemError(503, "embedding-rate-limited", "Embedding quota exhausted",
                            "Twelve Labs rate-limited the query embedding; retry later",
                            headers={"Retry-After": str(wait)}, retry_after_s=wait)
    what = "Milvus" if isinstance(exc, StoreError) else "a backing service"
    return ProblemError(503, "unavailable", "Service unavailable", f"{what} failed: {exc}")


def run_search(ctx: ApiContext, key: ApiKey, data: dict[str, Any]) -> Response:
    """Charge the key's rate, validate, search, answer with the hits and the cache header.

    Without ``top_k`` the default is ``DEFAULT_TOP_K``, or this server's cap when that is lower
    (as the document says), so leaving it out is never refused."""
    charge(ctx, key)
    data.setdefault("top_k", min(DEFAULT_TOP_K, ctx.settings.api_max_top_k))
    check_limits(ctx, data)
    query = _query(data)
    try:
        result = ctx.searcher().search(query)
    except (TransientError, StoreError) as exc:
        raise _unavailable(exc) from exc
    except VidsearchError as exc:  # bad input the query could not see (e.g. a clip Twelve Labs refuses)
        raise ProblemError(400, "invalid-query", "Invalid query", str(exc)) from exc
    body = json.dumps(result_to_json(result), ensure_ascii=False, separators=(",", ":"))
    return Response(body, media_type="application/json", headers={
        CACHE_HEADER: "hit" if result.cached else "miss",
        FLOOR_HEADER: f"{result.min_score:g}", BELOW_HEADER: str(result.below_floor)})


def _mapping(params: SearchParams) -> dict[str, Any]:
    data = params.model_dump(exclude_none=True, exclude_defaults=True)
    if "top_k" in params.model_fields_set:  # given, even at the default: checked against the cap
        data["top_k"] = params.top_k
    return data


@router.get("/search", responses={200: HITS}, summary="Search videos (query parameters)")
def search_get(request: Request, key: Caller, params: Annotated[SearchParams, Query()]) -> Response:
    return run_search(request.app.state.ctx, key, _mapping(params))


@router.post("/search", responses={200: HITS}, summary="Search videos (JSON body)")
def search_post(request: Request, key: Caller, body: SearchBody) -> Response:
    return run_search(request.app.state.ctx, key, _mapping(body))


@router.get("/videos/similar", responses={200: HITS}, summary="Videos like an ingested one")
def similar(
    request: Request,
    key: Caller,
    *,
    url: Annotated[str, Query(description="an ingested video's URL (http or https)",
                              json_schema_extra={"pattern": HTTP_URL})],
    top_k: Annotated[int, Query(ge=1, le=MAX_TOP_K, description=TOP_K,
                                json_schema_extra={SETTING: {"maximum": "api_max_top_k"}})] = DEFAULT_TOP_K,
    category: Annotated[list[str] | None, Query(description="restrict (repeatable)")] = None,
    at_s: Annotated[float | None, Query(ge=0, description="the segment at this time")] = None,
    min_score: Annotated[float | None, Query(ge=MIN_SCORE_LOWEST, le=1, description=MIN_SCORE)] = None,
) -> Response:
    data: dict[str, Any] = {"like_url": url}
    if "top_k" in request.query_params:
        data["top_k"] = top_k
    if category:
        data["category"] = category
    if at_s is not None:
        data["like_at_s"] = at_s
    if min_score is not None:
        data["min_score"] = min_score
    return run_search(request.app.state.ctx, key, data)
