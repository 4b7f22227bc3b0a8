"""The API's request and response models; the OpenAPI document is generated from them.

Search parameters keep the CLI's names (``text``, ``category`` repeatable, ``top_k``, ``weights``
as ``text=1,clip=0.5`` or an object...) and are handed to ``Query.from_mapping`` unchanged, so the
HTTP API and ``vidsearch search`` validate alike. Hits have the shape of ``vidsearch search --json``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Option = Literal["visual", "audio", "transcription"]


class SearchParams(BaseModel):
    """``GET /v1/search`` query parameters (weights as ``name=weight`` pairs)."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(None, description="what to look for")
    category: list[str] = Field([], description="restrict to these categories (repeatable)")
    top_k: int = Field(10, ge=1, description="how many videos (or segments)")
    clip_url: str | None = Field(None, description="a video clip to look for")
    clip_start_s: float | None = Field(None, ge=0, description="start of the clip range")
    clip_end_s: float | None = Field(None, gt=0, description="end of the clip range")
    image_url: str | None = Field(None, description="an image to look for")
    text_image: bool = Field(False, description="embed text and image together as one part")
    weights: str | None = Field(None, description="part weights, e.g. text=1,clip=0.5")
    modality_weights: str | None = Field(None, description="option weights, e.g. visual=1,audio=0.3")
    option: Option | None = Field(None, description="search one embedding option only")
    moments: bool = Field(False, description="stitch adjacent close-to-best segments into moments")
    max_moments: int | None = Field(None, ge=1, description="most moments per video")
    segments: bool = Field(False, description="raw top segments instead of best per video")
    collapse_duplicates: bool | None = Field(
        None, description="keep only the best-ranked video of each duplicate group "
        "(default: the search_collapse_duplicates setting)")


class SearchBody(SearchParams):
    """``POST /v1/search`` JSON body: the same fields; weights may also be objects."""

    weights: str | dict[str, float] | None = Field(None, description="part weights")  # type: ignore[assignment]
    modality_weights: str | dict[str, float] | None = Field(  # type: ignore[assignment]
        None, description="option weights"
    )
    like_url: str | None = Field(None, description="more like this ingested video")
    like_at_s: float | None = Field(None, ge=0, description="the segment of like_url at this time")


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
    status: Literal["running", "done", "done with failures", "failed"]
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

    path: str = Field(description="a manifest under api_manifest_dir")
    category: str | None = None
    force: bool = False
    name: str = ""


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
