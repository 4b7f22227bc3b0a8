"""``GET /v1/posters``: the frame of an ingested video at a moment (``posters.py`` has the rules).

400 when the URL fails the manifests' URL rule, 404 when it is not an ingested video: both before
anything is fetched. Otherwise 200 with a JPEG (``X-Vidsearch-Poster: frame``) or, when the video
cannot be fetched or decoded within the limits, the placeholder SVG (``placeholder``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from pipeline.ingest.urls import InvalidUrl, normalize_url
from pipeline.spec import EmbeddingSpec, item_key
from vidsearch.api.context import ApiContext
from vidsearch.api.keys import ApiKey
from vidsearch.api.posters import PLACEHOLDER
from vidsearch.api.problems import ProblemError
from vidsearch.api.schemas import HTTP_URL
from vidsearch.api.security import charge, read_identity

router = APIRouter(prefix="/v1", tags=["posters"])
Caller = Annotated[ApiKey, Depends(read_identity)]
POSTER_HEADER = "X-Vidsearch-Poster"
IMAGES = {"content": {"image/jpeg": {}, "image/svg+xml": {}},  # images: no schema (as analytics')
          "description": "the frame (JPEG), or the placeholder (SVG) when the video cannot be fetched",
          "headers": {POSTER_HEADER: {"description": "frame or placeholder",
                                      "schema": {"type": "string", "enum": ["frame", "placeholder"]}}}}


def ingested_url(ctx: ApiContext, url: str) -> str:
    """The normalized ``url`` when it may be fetched: the manifests' rule, then an ingested item."""
    s = ctx.settings
    try:
        normalized = normalize_url(url, max_length=s.max_url_length,
                                   allow_private_hosts=s.allow_private_hosts)
    except InvalidUrl as exc:
        raise ProblemError(400, "poster-url-refused", "URL refused",
                           f"{url!r} cannot be fetched: {exc.reason}") from exc
    item = ctx.clients.jobs.get_item(item_key(normalized, EmbeddingSpec.from_settings(s)))
    if item is None or item.state != "done":
        raise ProblemError(404, "not-ingested", "Not an ingested video",
                           f"{normalized} is not an ingested video; posters are cut only from those")
    return normalized


@router.get("/posters", response_class=Response, responses={200: IMAGES},
            summary="The frame of an ingested video at a moment")
def poster(
    request: Request,
    key: Caller,
    *,
    url: Annotated[str, Query(description="an ingested video's URL (as a hit names it)",
                              json_schema_extra={"pattern": HTTP_URL})],
    t: Annotated[float, Query(ge=0, le=86400, description="seconds into the video")] = 0.0,
) -> Response:
    ctx: ApiContext = request.app.state.ctx
    charge(ctx, key)
    normalized = ingested_url(ctx, url)
    jpeg = ctx.posters().frame(normalized, t)
    if jpeg is None:
        return Response(PLACEHOLDER, media_type="image/svg+xml",
                        headers={POSTER_HEADER: "placeholder", "Cache-Control": "no-store"})
    return Response(jpeg, media_type="image/jpeg",
                    headers={POSTER_HEADER: "frame", "Cache-Control": "private, max-age=86400"})
