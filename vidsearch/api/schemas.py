"""The API's request and response models; the OpenAPI document is generated from them.

Search parameters keep the CLI's names (``text``, ``category`` repeatable, ``top_k``, ``weights``
as ``text=1,clip=0.5`` or an object...) and are handed to ``Query.from_mapping`` unchanged, so the
HTTP API and ``vidsearch search`` validate alike. Hits have the shape of ``vidsearch search --json``.

The models also state ``Query``'s rules in the document, from its own constants: bounds
(``MAX_TOP_K``, ``MAX_MOMENTS``), enums (``MODALITIES``, ``PART_KINDS``), URL shape and, in the
descriptions, which fields need or exclude each other. Rules the schema states but ``Query``
enforces (URLs, weights, combinations) keep its 400 ``invalid-query``; ``WithJsonSchema`` only
documents them. Limits set per server carry ``x-setting`` (the setting's name); ``openapi.build``
fills in the running server's value.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from pipeline.search.query import (
    DEFAULT_MAX_MOMENTS,
    MAX_MOMENTS,
    MAX_TOP_K,
    MIN_SCORE_LOWEST,
    MODALITIES,
    PART_KINDS,
    SYNC_VIDEO_MAX_S,
)

Option = Literal["visual", "audio", "transcription"]
HTTP_URL = r"^https?://[^/?#\s]+"
"""``check_media_url``: an absolute http(s) URL with a host."""
Url = Annotated[str, WithJsonSchema({"type": "string", "pattern": HTTP_URL})]
SETTING = "x-setting"
"""Schema key naming the setting whose value ``openapi.build`` writes as the bound beside it."""
DEFAULT_TOP_K = 10
TOP_K = (f"how many videos (or segments); default {DEFAULT_TOP_K}, or the maximum when lower; the "
         f"maximum is this server's api_max_top_k (at most {MAX_TOP_K}); over it: 400 top-k-too-large")

MIN_SCORE = ("relevance floor: hits scored below it are not answered (default: the search_min_score "
             f"setting; {MIN_SCORE_LOWEST:g} shows every hit); the answer's X-Vidsearch-Min-Score "
             "header names the floor applied, X-Vidsearch-Below-Min-Score how many hits it hid")


def weights_schema(keys: tuple[str, ...], *, allow_object: bool) -> dict[str, Any]:
    """``name=weight`` pairs (or a JSON object) with names from ``keys`` and weights >= 0."""
    pairs = {"type": "string", "description": f"name=weight pairs, names from {', '.join(keys)}, "
             "e.g. " + ",".join(f"{k}=1" for k in keys[:2]) + "; or the JSON object as a string"}
    if not allow_object:
        return pairs
    return {"anyOf": [pairs, {"type": "object", "propertyNames": {"enum": list(keys)},
                              "additionalProperties": {"type": "number", "minimum": 0}}]}


PartWeights = Annotated[str, WithJsonSchema(weights_schema(PART_KINDS, allow_object=False))]
ModalityWeights = Annotated[str, WithJsonSchema(weights_schema(MODALITIES, allow_object=False))]
PartWeightsBody = Annotated[str | dict[str, float],
                            WithJsonSchema(weights_schema(PART_KINDS, allow_object=True))]
ModalityWeightsBody = Annotated[str | dict[str, float],
                                WithJsonSchema(weights_schema(MODALITIES, allow_object=True))]


class SearchParams(BaseModel):
    """``GET /v1/search`` query parameters (weights as ``name=weight`` pairs)."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(
        None, description="what to look for; at most this server's api_max_query_chars characters "
        "(over it: 400 query-too-long)", json_schema_extra={SETTING: {"maxLength": "api_max_query_chars"}})
    category: list[str] = Field([], description="restrict to these categories (repeatable)")
    top_k: int = Field(DEFAULT_TOP_K, ge=1, le=MAX_TOP_K, description=TOP_K,
                       json_schema_extra={SETTING: {"maximum": "api_max_top_k"}})
    clip_url: Url | None = Field(None, description="a video clip to look for (an http(s) URL)")
    clip_start_s: float | None = Field(None, ge=0, description="start of the clip range; needs clip_url")
    clip_end_s: float | None = Field(
        None, gt=0, description="end of the clip range; needs clip_url, after clip_start_s (default 0) "
        f"and at most {SYNC_VIDEO_MAX_S:g} s after it")
    image_url: Url | None = Field(None, description="an image to look for (an http(s) URL)")
    text_image: bool = Field(False, description="embed text and image together as one part; "
                             "needs text and image_url")
    weights: PartWeights | None = Field(
        None, description="part weights, each >= 0 (default 1), only for parts the query has "
        "(text, clip, image, or text_image when text_image is true); not all zero")
    modality_weights: ModalityWeights | None = Field(
        None, description="embedding option weights, each >= 0, not all zero; excludes option")
    option: Option | None = Field(None, description="search one embedding option only; "
                                  "excludes modality_weights")
    moments: bool = Field(False, description="stitch adjacent close-to-best segments into moments; "
                          "excludes segments")
    max_moments: int | None = Field(None, ge=1, le=MAX_MOMENTS, description="most moments per video "
                                    f"(default {DEFAULT_MAX_MOMENTS})")
    segments: bool = Field(False, description="raw top segments instead of best per video; "
                           "excludes moments")
    collapse_duplicates: bool | None = Field(
        None, description="keep only the best-ranked video of each duplicate group "
        "(default: the search_collapse_duplicates setting)")
    min_score: float | None = Field(None, ge=MIN_SCORE_LOWEST, le=1, description=MIN_SCORE)


class SearchBody(SearchParams):
    """``POST /v1/search`` JSON body: the same fields; weights may also be objects."""

    weights: PartWeightsBody | None = Field(  # type: ignore[assignment]
        None, description="part weights, each >= 0 (default 1), only for parts the query has; "
        "not all zero")
    modality_weights: ModalityWeightsBody | None = Field(  # type: ignore[assignment]
        None, description="embedding option weights, each >= 0, not all zero; excludes option"
    )
    like_url: Url | None = Field(None, description="more like this ingested video (an http(s) URL); "
                                 "excludes text, clip_url and image_url")
    like_at_s: float | None = Field(None, ge=0, description="the segment of like_url at this time; "
                                    "needs like_url")


class MomentOut(BaseModel):
    start_s: float
    end_s: float
    score: float


class HitOut(BaseModel):
    """One hit, as ``vidsearch search --json`` prints it."""

    url: str
    title: str
    category: str
    score: float
    start_s: float
    end_s: float
    moments: list[MomentOut] = []
    option: str = ""


class JobOut(BaseModel):
    """A job's record, counters and progress."""

    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    created_at: float
    manifests: list[str]
    status: Literal["running", "done", "done with failures", "failed", "stopped at budget"]
    model: str
    lines: int
    accepted: int
    rejected: int
    duplicates: int
    skipped: int
    in_progress: int
    queued: int
    done: int
    failed: int
    segments: int
    previously_failed: int = 0
    failed_elsewhere: int = 0
    open_elsewhere: int = 0
    tick_stalled: bool = Field(False, description="no scheduler tick ran lately: nothing moves")
    last_tick_at: float | None = None
    progress: float = Field(description="finished (done + failed) / queued, 0..1")
    rate_per_s: float | None = Field(None, description="items settled per second since creation")
    eta_s: float | None = Field(None, description="seconds until every queued item is finished")
    held: int = Field(0, description="items waiting aside because the job reached its budget")
    media_minutes: float = Field(0.0, description="media minutes charged (estimates for tasks in "
                                 "flight, actual for finished ones)")
    max_minutes: float | None = Field(None, description="the job's budget in media minutes")
    spend: float | None = Field(None, description="media_minutes x price_per_media_minute (unset: no price)")
    held_by: str | None = Field(None, description="the quota dimension that holds admission now")
    resumes_at: float | None = Field(None, description="when that limit frees (epoch seconds)")


class SubmitOut(BaseModel):
    """What a submission did (``vidsearch submit --json``)."""

    job_id: str
    lines: int
    accepted: int
    rejected: int
    duplicates: int
    skipped: int
    in_progress: int
    previously_failed: int = 0
    queued: int


class ServerManifest(BaseModel):
    """``POST /v1/jobs`` with a JSON body: a manifest already on the server."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="a manifest file, relative to the server's api_manifest_dir and "
                      "inside it (403 when outside it or when api_manifest_dir is unset; 404 when "
                      "there is no such file)")
    category: str | None = Field(None, description="category for lines that have none")
    force: bool = Field(False, description="re-embed items already ingested")
    name: str = Field("", description="a name for the job")


class FailureOut(BaseModel):
    item: str
    url: str
    category: str
    reason: str | None
    attempts: int
    task_id: str | None


class RejectOut(BaseModel):
    file: str
    line: int
    reason: str


class RetryOut(BaseModel):
    job_id: str
    requeued: int


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    checks: dict[str, str]


def job_out(job_dict: dict[str, Any]) -> JobOut:
    queued = job_dict.get("queued", 0)
    finished = job_dict.get("done", 0) + job_dict.get("failed", 0)
    progress = 1.0 if not queued and job_dict.get("status") != "running" else (
        finished / queued if queued else 0.0)
    return JobOut(**{**job_dict, "progress": min(1.0, progress)})


# --- analytics (the shapes of `vidsearch analytics ... --json`) ------------------------------------
class CentralVideo(BaseModel):
    url: str
    title: str
    category: str
    similarity: float


class ClusterOut(BaseModel):
    id: int
    size: int
    label: str
    cohesion: float = Field(description="mean similarity of its videos to the centroid")
    central: list[CentralVideo] = Field(description="its videos nearest the centroid")


class MappedVideo(BaseModel):
    url: str
    category: str
    cluster: int
    x: float = Field(description="first principal component")
    y: float = Field(description="second principal component")


class ClustersOut(BaseModel):
    k: int
    criterion: str = Field(description="how k was chosen")
    silhouettes: dict[str, float] = Field(description="mean silhouette per k tried (auto only)")
    clusters: list[ClusterOut]
    videos: list[MappedVideo]


class OutlierOut(BaseModel):
    url: str
    title: str
    category: str = Field(description="the category it is filed under")
    suggested: str = Field(description="the category whose centroid is nearest")
    score: float = Field(description="suggested_similarity - own_similarity")
    own_similarity: float
    suggested_similarity: float


class OutliersOut(BaseModel):
    outliers: list[OutlierOut]
    skipped_categories: list[str] = Field(description="categories of one video (nothing to compare)")
    videos: int


class DuplicateGroupOut(BaseModel):
    urls: list[str] = Field(description="first ingested first")
    categories: list[str]
    titles: list[str]
    similarity_min: float
    similarity_max: float


class DuplicatesOut(BaseModel):
    threshold: float
    videos: int
    method: str
    groups: list[DuplicateGroupOut]


Cells = dict[str, dict[str, dict[str, int]]]


class TrendsOut(BaseModel):
    by: Literal["day", "week"]
    periods: list[str]
    last: str
    previous: str | None
    categories: Cells = Field(description="category -> period -> {videos, segments}")
    clusters: Cells = Field(description="'id: label' -> period -> {videos, segments}")
    growth: dict[str, float | None] = Field(description="relative change of videos, previous -> last")
