"""JSON bodies of tasks and embeddings, in the wire shapes of the v2 and v1 Embed APIs.

- v2 retrieve: ``{_id, status, created_at, updated_at, data, metadata}`` when ready (one data item
  per clip segment and option, and a ``fused`` one when asked, then the asset items; each with an
  ``embedding_uncertainty`` vector when asked; Marengo 3.5 adds ``usage``), ``data: null`` while
  processing, ``error: {message}`` when failed;
- v2 and v1 list items: ``MediaEmbeddingTask`` with ``video_embedding.metadata.input_url``;
- v1 status and retrieve: ``video_embedding.{metadata, segments[{float, ...}]}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from vidsearch.sandbox import vectors
from vidsearch.sandbox.media import url_words
from vidsearch.sandbox.segments import v1_clips
from vidsearch.sandbox.tasks import Task, rfc3339
from vidsearch.sandbox.validation import SyncRequest, task_tokens

Item = tuple[str, str, float, float, list[float]]  # option, scope, start, end, embedding


def dumps(body: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(body, separators=(",", ":")).encode()


def _vector(task: Task, option: str, scope: str, start: float, end: float) -> list[float]:
    model = task.spec.model
    concepts = _fused_concepts(task, start, end) if option == "fused" else task.media.concepts(
        start, end, option)
    key = f"{task.spec.source}|{option}|{scope}|{start:.3f}|{end:.3f}"
    vec = vectors.segment_vector(model, concepts, option, key)
    if task.spec.dimension < vec.shape[0]:
        vec = vectors.prefix(vec, task.spec.dimension)
    return vectors.to_list(vec)


def _fused_concepts(task: Task, start: float, end: float) -> dict[str, float]:
    """A fused segment sees every modality's words, and the words of each ``time_based_metadata``
    entry that overlaps it in time (a point entry: one the segment contains)."""
    concepts = task.media.concepts(start, end, None)
    closed = end >= task.end - 1e-9  # the last segment holds a point entry at the very end
    for first, last, text in task.spec.metadata_text:
        inside = start <= first < end or (closed and first == end) if first == last else (
            first < end and last > start)
        if inside:
            for word in vectors.words(text):
                concepts[word] = concepts.get(word, 0.0) + 1.0
    return concepts


def _ranges(task: Task) -> list[tuple[float, float]]:
    seg = task.spec.segmentation
    if task.spec.api == "v1":
        return v1_clips(task.start, task.end, seg.seconds)
    return seg.cut(task.start, task.end, task.spec.source)


def items(task: Task, options: tuple[str, ...]) -> list[Item]:
    """Embeddings of a ready task: clip items, then whole-range items (asset / video scope)."""
    out: list[Item] = []
    scopes = task.spec.scopes
    if "clip" in scopes:
        for start, end in _ranges(task):
            out.extend((o, "clip", start, end, _vector(task, o, "clip", start, end)) for o in options)
    whole = "asset" if task.spec.api == "v2" else "video"
    if whole in scopes:
        start, end = round(task.start, 3), round(task.end, 3)
        out.extend((o, whole, start, end, _vector(task, o, whole, start, end)) for o in options)
    return out


def v2_metadata(task: Task) -> dict[str, Any]:
    """The complete video (or audio) metadata object of a v2 task."""
    meta: dict[str, Any] = {"input_type": task.spec.input_type}
    if task.spec.url:
        meta["input_url"] = task.spec.url
    if task.spec.input_type == "video":
        meta["clip_length"] = task.spec.segmentation.seconds
    meta.update({
        "embedding_scopes": list(task.spec.scopes),
        "embedding_options": list(task.spec.options),
        "duration": task.media.duration,
        "start_offset_sec": task.start,
        "end_offset_sec": round(task.end, 3),
    })
    if task.spec.model == "marengo3.5":
        meta["embedding_dimension"] = task.spec.dimension
    return meta


def v2_created(task: Task) -> bytes:
    """Body of the 202 answer to a v2 create."""
    body: dict[str, Any] = {"_id": task.id, "status": "processing", "data": None}
    if task.spec.model == "marengo3.5":
        body["metadata"] = {"embedding_dimension": task.spec.dimension}
    return dumps(body)


def v2_task(task: Task, status: str) -> bytes:
    """Body of GET embed-v2/tasks/{id}; finished bodies are cached on the task."""
    cached = task.cache.get("v2")
    if cached is not None:
        return cached
    body: dict[str, Any] = {"_id": task.id, "status": status,
                            "created_at": rfc3339(task.created_epoch),
                            "updated_at": rfc3339(task.updated_epoch(status)), "data": None}
    if status == "processing":
        return dumps(body)
    if status == "failed":
        body["error"] = {"message": task.error}
    else:
        body["data"] = v2_data(task)
        body["metadata"] = v2_metadata(task)
        if task.spec.model == "marengo3.5":
            body["usage"] = {"input_tokens": task_tokens(task.spec, task.end - task.start),
                             "truncated": False}
    task.cache["v2"] = data = dumps(body)
    return data


def v2_data(task: Task) -> list[dict[str, Any]]:
    """The ``data`` of a ready v2 task: the separate options asked for, then ``fused``; each item
    with its ``embedding_uncertainty`` when asked (Marengo 3.5)."""
    spec = task.spec
    kinds = (spec.options if spec.separate else ()) + (("fused",) if spec.fused else ())
    out = []
    for o, s, a, b, vec in items(task, kinds):
        item: dict[str, Any] = {"embedding": vec, "embedding_option": o, "embedding_scope": s,
                                "start_sec": a, "end_sec": b}
        if spec.uncertainty:
            key = f"{spec.source}|{o}|{s}|{a:.3f}|{b:.3f}"
            item["embedding_uncertainty"] = vectors.uncertainty(key, len(vec))
        out.append(item)
    return out


EXPIRED_MESSAGE = "The embedding result is no longer available and cannot be retrieved."


def v2_expired(task: Task) -> bytes:
    """Body of GET embed-v2/tasks/{id} after the retention period: failed, results gone."""
    return dumps({"_id": task.id, "status": "failed", "created_at": rfc3339(task.created_epoch),
                  "updated_at": rfc3339(task.created_epoch), "data": None,
                  "error": {"message": EXPIRED_MESSAGE}})


def _v1_metadata(task: Task) -> dict[str, Any]:
    return {
        "input_url": task.spec.url,
        "video_clip_length": task.spec.segmentation.seconds,
        "video_embedding_scope": list(task.spec.scopes),
        "video_embedding_option": list(task.spec.options),
        "duration": task.media.duration,
    }


def list_item(task: Task, status: str) -> dict[str, Any]:
    """A ``MediaEmbeddingTask`` (list entry, and the v1 status body)."""
    body: dict[str, Any] = {
        "_id": task.id,
        "model_name": task.spec.model,
        "status": status,
        "created_at": rfc3339(task.created_epoch),
        "updated_at": rfc3339(task.updated_epoch(status)),
    }
    if task.spec.input_type == "audio":
        body["audio_embedding"] = {"metadata": {
            "audio_embedding_option": list(task.spec.options),
            "audio_embedding_scope": list(task.spec.scopes), "duration": task.media.duration,
            "start_offset_sec": task.start, "end_offset_sec": round(task.end, 3)}}
        return body
    meta = _v1_metadata(task)
    if task.spec.api == "v2":
        meta["video_clip_length"] = task.spec.segmentation.seconds
    body["video_embedding"] = {"metadata": meta}
    return body


def v1_status(task: Task, status: str) -> bytes:
    """Body of GET embed/tasks/{id}/status."""
    body = list_item(task, status)
    if status == "failed":
        body["error_message"] = task.error
    return dumps(body)


def v1_task(task: Task, status: str, options: tuple[str, ...]) -> bytes:
    """Body of GET embed/tasks/{id}, with segments when ready (filtered by ``options``)."""
    key = "v1:" + ",".join(options)
    cached = task.cache.get(key)
    if cached is not None:
        return cached
    body = list_item(task, status)
    if status != "ready":
        return dumps(body)
    body["video_embedding"]["segments"] = [
        {"float": vec, "start_offset_sec": a, "end_offset_sec": b, "embedding_scope": s,
         "embedding_option": o}
        for o, s, a, b, vec in items(task, options)
    ]
    task.cache[key] = data = dumps(body)
    return data


def sync_vector(
    request: SyncRequest, media_words: Callable[[str], tuple[str, ...]] = url_words
) -> list[float]:
    """One query embedding: the words of the text and of the media (``media_words`` of each URL:
    its catalog entry's words, else its file name's)."""
    text = " ".join([request.text, *(" ".join(media_words(u)) for u in request.urls if u)])
    vec = vectors.text_vector(request.model, text)
    if request.dimension < vec.shape[0]:
        vec = vectors.prefix(vec, request.dimension)
    return vectors.to_list(vec)


def v2_sync(
    request: SyncRequest, media_words: Callable[[str], tuple[str, ...]] = url_words
) -> bytes:
    """Body of POST embed-v2 (one item; metadata for multi_input on 3.5 as the SDK types it)."""
    vector = sync_vector(request, media_words)
    body: dict[str, Any] = {"data": [{"embedding": vector, "embedding_option": None,
                                      "embedding_scope": None, "start_sec": None, "end_sec": None}]}
    if request.model == "marengo3.5":
        body["metadata"] = {"input_type": "multi_input", "embedding_dimension": request.dimension}
        body["usage"] = usage(request)
    return dumps(body)


def usage(request: SyncRequest) -> dict[str, Any]:
    """The ``usage`` object Marengo 3.5 answers: tokens per content type, truncation."""
    tokens: dict[str, int] = {}
    if request.text:
        tokens["text"] = min(request.tokens, len(request.text.split()))
    if request.urls:
        tokens["image"] = 256 * len(request.urls)
    out: dict[str, Any] = {"input_tokens": tokens, "truncated": request.truncated}
    if request.truncated:
        out["truncation_reason"] = "model_context_window"
    return out


def v2_sync_video(task: Task) -> bytes:
    """Body of POST embed-v2 for a video (Marengo 3.0): one item per segment and option, as a task's
    (the same vectors a task of the same source and range gets)."""
    body = {"data": [
        {"embedding": vec, "embedding_option": o, "embedding_scope": s, "start_sec": a, "end_sec": b}
        for o, s, a, b, vec in items(task, task.spec.options)
    ]}
    return dumps(body)


def v1_sync(request: SyncRequest) -> bytes:
    """Body of POST embed (v1): text, image or audio embeddings."""
    body: dict[str, Any] = {"model_name": request.model}
    if request.text:
        text_only = SyncRequest(request.model, request.dimension, "v1", request.text, ())
        body["text_embedding"] = {"segments": [{"float": sync_vector(text_only)}]}
    for url, name in zip(request.urls, ("image_embedding", "audio_embedding"), strict=False):
        if not url:
            continue
        media_only = SyncRequest(request.model, request.dimension, "v1", "", (url,))
        body[name] = {"segments": [{"float": sync_vector(media_only)}]}
    return dumps(body)
