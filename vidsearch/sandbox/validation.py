"""Request checks, as the API does them: a parsed ``TaskSpec`` or a 400 ``ApiFailure``.

Covers the v2 async create body (video and audio input; models, segmentation shape per model and
its ranges, options, scopes, start/end, media source, ``embedding_dimension``, ``embedding_type``
with ``time_based_metadata``, ``embedding_uncertainty``), the v1 multipart create form, and the
bodies of the sync embeds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from vidsearch.sandbox.errors import ApiFailure, invalid, missing
from vidsearch.sandbox.segments import Segmentation

V2_MODELS = ("marengo3.0", "marengo3.5")
V1_MODELS = ("Marengo-retrieval-2.7", "marengo3.0")
V2_OPTIONS = {"marengo3.0": ("visual", "audio", "transcription"), "marengo3.5": ("visual", "audio")}
AUDIO_OPTIONS = {"marengo3.0": ("audio", "transcription"), "marengo3.5": ("audio",)}
"""Options of audio input and their defaults (SDK ``AsyncAudioInputRequest``)."""
AUDIO_DEFAULT_FIXED = 6
"""Marengo 3.0 audio: fixed segmentation only, 6 s by default (SDK ``AsyncAudioInputRequest``)."""
V2_DEFAULT_MIN = {"marengo3.0": 4, "marengo3.5": 2}
V1_OPTIONS = {"Marengo-retrieval-2.7": ("visual-text", "audio"),
              "marengo3.0": ("visual", "audio", "transcription")}
DIMENSIONS_35 = (128, 256, 512)
SCOPES = ("clip", "asset")
V1_SCOPES = ("clip", "video")
FIXED_RANGE = (2, 10)
DYNAMIC_RANGE = (2, 5)


@dataclass(frozen=True)
class TaskSpec:
    """A validated task request (v1 or v2)."""

    api: str
    model: str
    source: str
    url: str | None
    start_sec: float
    end_sec: float | None
    segmentation: Segmentation
    options: tuple[str, ...]
    scopes: tuple[str, ...]
    dimension: int
    input_type: str = "video"
    separate: bool = True
    """Whether separate per-option embeddings are returned (``embedding_type``)."""
    fused: bool = False
    """Whether one fused embedding per segment is returned (``embedding_type: fused_embedding``)."""
    metadata_text: tuple[tuple[float, float, str], ...] = ()
    """``time_based_metadata`` entries (start, end, text), folded into the fused embeddings."""
    uncertainty: bool = False
    """``embedding_uncertainty``: each item carries a per-dimension uncertainty vector."""


def check_url(url: Any, name: str = "url") -> str:
    """``url`` if it is an absolute http(s) URL with a host; a 400 otherwise."""
    if not isinstance(url, str) or not url:
        raise invalid(f"The {name} parameter must be a non-empty string.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid(f"The {name} parameter is invalid: {url!r} is not an http or https URL.")
    return url


def media_source(raw: Any) -> tuple[str, str | None]:
    """(source key, url or None) of a ``media_source`` with exactly one of url, base64, asset."""
    if not isinstance(raw, Mapping):
        raise missing("media_source")
    given = [k for k in ("url", "base64_string", "asset_id") if raw.get(k) not in (None, "")]
    if len(given) != 1:
        raise invalid("media_source must contain exactly one of url, base64_string or asset_id "
                      f"(got {len(given)}).")
    kind = given[0]
    if kind == "url":
        url = check_url(raw["url"], "media_source.url")
        return url, url
    value = str(raw[kind])
    digest = hashlib.blake2b(value.encode(), digest_size=12).hexdigest()
    return (f"asset:{value}" if kind == "asset_id" else f"base64:{digest}"), None


def _model(body: Mapping[str, Any], allowed: tuple[str, ...]) -> str:
    model = body.get("model_name")
    if model is None:
        raise missing("model_name")
    if model not in allowed:
        raise invalid(f"The model_name parameter is invalid: {model!r}. Allowed: {', '.join(allowed)}.")
    return str(model)


def _dimension(body: Mapping[str, Any], model: str) -> int:
    dim = body.get("embedding_dimension")
    if dim is None:
        return 512
    if model != "marengo3.5":
        raise invalid("embedding_dimension requires model_name marengo3.5.")
    if dim not in DIMENSIONS_35 or isinstance(dim, bool):
        raise invalid(f"embedding_dimension must be one of {DIMENSIONS_35}, got {dim!r}.")
    return int(dim)


def _int_in(value: Any, name: str, bounds: tuple[int, int]) -> int:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise invalid(f"{name} must be an integer between {low} and {high}.")
    if not low <= value <= high:
        raise invalid(f"{name} is out of range: {value} (allowed {low} to {high}).")
    return int(value)


def _strategy(raw: Any, where: str) -> Segmentation:
    if not isinstance(raw, Mapping) or raw.get("strategy") not in ("fixed", "dynamic"):
        raise invalid(f"{where}.strategy must be fixed or dynamic.")
    strategy = str(raw["strategy"])
    inner = raw.get(strategy)
    key, bounds = ("duration_sec", FIXED_RANGE) if strategy == "fixed" else ("min_duration_sec",
                                                                           DYNAMIC_RANGE)
    if not isinstance(inner, Mapping) or key not in inner:
        raise missing(f"{where}.{strategy}.{key}")
    return Segmentation(strategy, _int_in(inner[key], f"{where}.{strategy}.{key}", bounds))


def segmentation(raw: Any, model: str) -> Segmentation:
    """The segmentation of a v2 video request; the shape must match the model."""
    if raw is None:
        return Segmentation("dynamic", V2_DEFAULT_MIN[model])
    if not isinstance(raw, Mapping):
        raise invalid("segmentation must be an object.")
    if model == "marengo3.5":
        if "temporal" not in raw or "strategy" in raw:
            raise invalid("With marengo3.5, segmentation must be wrapped in a temporal object: "
                          '{"temporal": {"strategy": ...}}.')
        return _strategy(raw["temporal"], "segmentation.temporal")
    if "temporal" in raw:
        raise invalid("With marengo3.0, segmentation takes strategy directly; the temporal "
                      "wrapper requires marengo3.5.")
    return _strategy(raw, "segmentation")


def _choices(raw: Any, name: str, allowed: tuple[str, ...], default: tuple[str, ...]) -> tuple[str, ...]:
    if raw is None:
        return default
    if not isinstance(raw, list) or not raw:
        raise invalid(f"{name} must be a non-empty list.")
    bad = [v for v in raw if v not in allowed]
    if bad:
        raise invalid(f"{name} has unsupported values {bad}; allowed: {', '.join(allowed)}.")
    return tuple(dict.fromkeys(raw))


def _range(start: Any, end: Any, names: tuple[str, str]) -> tuple[float, float | None]:
    for value, name in ((start, names[0]), (end, names[1])):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise invalid(f"{name} must be a number.")
    begin = float(start) if start is not None else 0.0
    if begin < 0:
        raise invalid(f"{names[0]} must be >= 0.")
    if end is not None and float(end) <= begin:
        raise invalid(f"{names[1]} ({end}) must be greater than {names[0]} ({begin}).")
    return begin, (float(end) if end is not None else None)


def _scopes(raw: Any) -> tuple[str, ...]:
    scopes = _choices(raw, "embedding_scope", (*SCOPES, "local"), SCOPES)
    return tuple(dict.fromkeys("clip" if s == "local" else s for s in scopes))


def v2_task(body: Any) -> TaskSpec:
    """The ``TaskSpec`` of a POST embed-v2/tasks JSON body (``input_type`` video or audio)."""
    if not isinstance(body, Mapping):
        raise invalid("The request body must be a JSON object.")
    model = _model(body, V2_MODELS)
    dimension = _dimension(body, model)
    kind = body.get("input_type")
    if kind not in ("video", "audio"):
        raise invalid(f"input_type {kind!r} is not supported here: the sandbox embeds video and "
                      "audio (input_type video or audio).")
    part = body.get(kind)
    if not isinstance(part, Mapping):
        raise missing(str(kind))
    source, url = media_source(part.get("media_source"))
    start, end = _range(part.get("start_sec"), part.get("end_sec"), ("start_sec", "end_sec"))
    allowed = V2_OPTIONS[model] if kind == "video" else AUDIO_OPTIONS[model]
    options = _choices(part.get("embedding_option"), "embedding_option", allowed, allowed)
    separate, fused = _check_type(part.get("embedding_type"), len(options))
    cuts = segmentation(part.get("segmentation"), model) if kind == "video" else _audio_cuts(
        part.get("segmentation"), model)
    scopes = _scopes(part.get("embedding_scope"))
    return TaskSpec("v2", model, source, url, start, end, cuts, options, scopes, dimension,
                    input_type=str(kind), separate=separate, fused=fused,
                    metadata_text=_metadata_text(part.get("time_based_metadata"), model, fused),
                    uncertainty=_uncertainty(body.get("embedding_uncertainty"), model, scopes))


def _audio_cuts(raw: Any, model: str) -> Segmentation:
    """Audio segmentation: 3.0 takes only ``fixed`` (default 6 s); 3.5 the temporal shapes."""
    if model == "marengo3.5":
        return segmentation(raw, model)
    if raw is None:
        return Segmentation("fixed", AUDIO_DEFAULT_FIXED)
    if isinstance(raw, Mapping) and raw.get("strategy") == "dynamic":
        raise invalid("With marengo3.0, audio segmentation is fixed only.")
    return segmentation(raw, model)


def _check_type(raw: Any, n_options: int) -> tuple[bool, bool]:
    """(separate, fused) of ``embedding_type``; only with two or more options."""
    kinds = _choices(raw, "embedding_type", ("separate_embedding", "fused_embedding"),
                     ("separate_embedding",))
    if raw is not None and n_options < 2:
        raise invalid("embedding_type requires at least two embedding_option values.")
    return "separate_embedding" in kinds, "fused_embedding" in kinds


FUSED_NEEDS_METADATA = ("embedding_type fused_embedding requires the time_based_metadata field "
                        "with marengo3.5.")
"""The sandbox's wording of the rule the SDK states (``AsyncVideoInputRequest.embedding_type``)."""


def _metadata_text(raw: Any, model: str, fused: bool) -> tuple[tuple[float, float, str], ...]:
    """``time_based_metadata``: Marengo 3.5 only, with ``fused_embedding``, which on 3.5 needs it."""
    if raw is None:
        if fused and model == "marengo3.5":
            raise ApiFailure(400, "parameter_not_provided", FUSED_NEEDS_METADATA)
        return ()
    if model != "marengo3.5":
        raise invalid("time_based_metadata is supported only with marengo3.5.")
    if not fused:
        raise invalid("time_based_metadata requires the fused_embedding value in embedding_type.")
    if not isinstance(raw, list) or not raw:
        raise invalid("time_based_metadata must be a non-empty list of {start, end, text}.")
    return tuple(_metadata_entry(entry, i) for i, entry in enumerate(raw))


def _metadata_entry(raw: Any, index: int) -> tuple[float, float, str]:
    where = f"time_based_metadata[{index}]"
    if not isinstance(raw, Mapping) or not isinstance(raw.get("text"), str):
        raise invalid(f"{where} must be an object with start, end and text.")
    start, end = raw.get("start"), raw.get("end")
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in (start, end)):
        raise invalid(f"{where}.start and .end must be numbers.")
    if not 0 <= float(start) <= float(end):  # type: ignore[arg-type]
        raise invalid(f"{where}: end ({end}) must not be before start ({start}), both >= 0.")
    return float(start), float(end), str(raw["text"])  # type: ignore[arg-type]


def _uncertainty(raw: Any, model: str, scopes: tuple[str, ...]) -> bool:
    """``embedding_uncertainty``: Marengo 3.5 only, and refused with the ``asset`` scope."""
    if raw is None or raw is False:
        return False
    if raw is not True:
        raise invalid("embedding_uncertainty must be a boolean.")
    if model != "marengo3.5":
        raise invalid("embedding_uncertainty requires model_name marengo3.5.")
    if "asset" in scopes:
        raise invalid("embedding_uncertainty cannot be used with the asset embedding_scope: set "
                      'embedding_scope to exclude asset, for example ["clip"].')
    return True


def v1_task(form: Mapping[str, Any], scopes: list[str]) -> TaskSpec:
    """The ``TaskSpec`` of a POST embed/tasks multipart form (``scopes``: repeated values)."""
    model = _model(form, V1_MODELS)
    if form.get("video_file") is not None and not form.get("video_url"):
        raise invalid("The sandbox accepts video_url only, not video_file uploads.")
    url = check_url(form.get("video_url"), "video_url")
    start_raw, end_raw = form.get("video_start_offset_sec"), form.get("video_end_offset_sec")
    if (start_raw is None) != (end_raw is None):
        raise invalid("video_start_offset_sec and video_end_offset_sec must be sent together.")
    start, end = _range(_number(start_raw, "video_start_offset_sec"),
                        _number(end_raw, "video_end_offset_sec"),
                        ("video_start_offset_sec", "video_end_offset_sec"))
    clip = form.get("video_clip_length")
    length = _int_in(_number(clip, "video_clip_length"), "video_clip_length",
                     FIXED_RANGE) if clip is not None else 6
    chosen = _choices(scopes or None, "video_embedding_scope", V1_SCOPES, ("clip",))
    return TaskSpec("v1", model, url, url, start, end, Segmentation("fixed", length),
                    V1_OPTIONS[model], chosen, 1024 if model == "Marengo-retrieval-2.7" else 512)


def _number(raw: Any, name: str) -> float | None:
    if raw is None:
        return None
    try:
        return float(raw)
    except (TypeError, ValueError) as exc:
        raise invalid(f"{name} must be a number.") from exc


SYNC_VIDEO_MAX_S = {"marengo3.0": 600.0, "marengo3.5": 30.0}
"""Longest audio/video a sync embed takes, per model."""


@dataclass(frozen=True)
class SyncRequest:
    """A validated sync embed: model, dimension, query text and media URLs (a video: ``video``)."""

    model: str
    dimension: int
    input_type: str
    text: str
    urls: tuple[str, ...]
    video: TaskSpec | None = None
    video_urls: tuple[str, ...] = ()
    tokens: int = 0
    """The text's tokens (the sandbox counts whitespace-separated words), before truncation."""
    truncated: bool = False


TEXT_TOKEN_LIMIT = {"marengo3.0": 500, "marengo3.5": 2000}
"""Longest sync text per model (SDK 1.3.6 docstrings); 3.5 may truncate to it (``auto_truncate``)."""


MEDIA_TOKENS_PER_S = {"video": 10, "audio": 5}
"""Input tokens Marengo 3.5 counts per second of media: the sandbox's own figures (the real rate is
not published)."""


def task_tokens(spec: TaskSpec, covered_s: float) -> dict[str, int]:
    """The input tokens of a Marengo 3.5 task (``usage.input_tokens``, and what the token limits
    count): its media by the second, plus the words of its ``time_based_metadata``."""
    tokens = {spec.input_type: math.ceil(max(0.0, covered_s) * MEDIA_TOKENS_PER_S[spec.input_type])}
    words = sum(len(text.split()) for _, _, text in spec.metadata_text)
    if words:
        tokens["text"] = words
    return tokens


def limit_tokens(request: SyncRequest, auto_truncate: Any) -> SyncRequest:
    """``request`` within its model's text token limit: a 400 past it, unless Marengo 3.5 was asked
    to ``auto_truncate`` (then the text is cut and ``truncated`` set)."""
    if auto_truncate is not None and request.model != "marengo3.5":
        raise invalid("auto_truncate requires Marengo 3.5.")
    words = request.text.split()
    limit = TEXT_TOKEN_LIMIT.get(request.model, 0)
    if not limit or len(words) <= limit:
        return dataclasses.replace(request, tokens=len(words))
    if auto_truncate is not True:
        raise invalid(f"The text has {len(words)} tokens; the maximum for {request.model} is {limit}.")
    return dataclasses.replace(request, text=" ".join(words[:limit]), tokens=len(words), truncated=True)


def v2_sync(body: Any) -> SyncRequest:
    """The ``SyncRequest`` of a POST embed-v2 JSON body."""
    if not isinstance(body, Mapping):
        raise invalid("The request body must be a JSON object.")
    model = _model(body, V2_MODELS)
    dimension = _dimension(body, model)
    input_type = body.get("input_type")
    allowed = ("multi_input",) if model == "marengo3.5" else ("text", "image", "text_image",
                                                               "video", "multi_input")
    if input_type not in allowed:
        raise invalid(f"input_type {input_type!r} is not valid with {model}; allowed: "
                      f"{', '.join(allowed)}.")
    if input_type == "video":
        return SyncRequest(model, dimension, "video", "", (), video=_sync_video(body, model))
    text, urls = _sync_content(body, str(input_type))
    videos = _multi_videos(body) if input_type == "multi_input" else ()
    request = SyncRequest(model, dimension, str(input_type), text, urls, video_urls=videos)
    return limit_tokens(request, body.get("auto_truncate"))


def _sync_video(body: Mapping[str, Any], model: str) -> TaskSpec:
    """A sync video embed (Marengo 3.0): the keys of an async video task (section 2.2)."""
    video = body.get("video")
    if not isinstance(video, Mapping):
        raise missing("video")
    source, url = media_source(video.get("media_source"))
    start, end = _range(video.get("start_sec"), video.get("end_sec"), ("start_sec", "end_sec"))
    limit = SYNC_VIDEO_MAX_S[model]
    if end is not None and end - start > limit:
        raise invalid(f"Duration ({end - start:.1f} seconds) exceeds maximum limit of "
                      f"{limit:.0f} seconds.")
    options = _choices(video.get("embedding_option"), "embedding_option", V2_OPTIONS[model],
                       V2_OPTIONS[model])
    return TaskSpec("v2", model, source, url, start, end, segmentation(video.get("segmentation"), model),
                    options, _scopes(video.get("embedding_scope")), 512)


def _multi_videos(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The video sources of a multi_input body (their duration is checked against the media)."""
    part = body.get("multi_input") or {}
    sources = part.get("media_sources") or []
    return tuple(media_source(s)[0] for s in sources
                 if isinstance(s, Mapping) and s.get("media_type") == "video")


def _sync_content(body: Mapping[str, Any], input_type: str) -> tuple[str, tuple[str, ...]]:
    part = body.get(input_type)
    if not isinstance(part, Mapping):
        raise missing(input_type)
    text = part.get("input_text")
    if input_type in ("text", "text_image") and not isinstance(text, str):
        raise missing(f"{input_type}.input_text")
    if input_type in ("image", "text_image"):
        return text or "", (media_source(part.get("media_source"))[0],)
    sources = part.get("media_sources") or []
    if not isinstance(sources, list) or len(sources) > 10:
        raise invalid("multi_input.media_sources must be a list of at most 10 sources.")
    urls = tuple(_multi_source(s) for s in sources)
    if not (isinstance(text, str) and text) and not urls:
        raise invalid("multi_input needs input_text or at least one media source.")
    return text or "", urls


def _multi_source(raw: Any) -> str:
    if not isinstance(raw, Mapping):
        raise invalid("each media source must be an object.")
    return media_source(raw)[0]


def v1_sync(form: Mapping[str, Any]) -> SyncRequest:
    """The ``SyncRequest`` of a POST embed multipart form."""
    model = _model(form, V1_MODELS)
    text = form.get("text")
    urls = tuple(check_url(form[k], k) if form.get(k) else "" for k in ("image_url", "audio_url"))
    if not text and not any(urls):
        raise invalid("Provide text, image_url or audio_url.", code="parameter_not_provided")
    dim = 1024 if model == "Marengo-retrieval-2.7" else 512
    return SyncRequest(model, dim, "v1", str(text or ""), urls)


def page_args(query: Mapping[str, str]) -> tuple[int, int]:
    """(page, page_limit) from a list query; 400 when out of range."""
    try:
        page = int(query.get("page", "1"))
        limit = int(query.get("page_limit", "10"))
    except ValueError as exc:
        raise invalid("page and page_limit must be integers.") from exc
    if page < 1:
        raise invalid("page must be >= 1.")
    if not 1 <= limit <= 50:
        raise invalid(f"page_limit must be between 1 and 50, got {limit}.")
    return page, limit


__all__ = ["ApiFailure", "SyncRequest", "TaskSpec", "page_args", "v1_sync", "v1_task",
           "v2_sync", "v2_task"]
