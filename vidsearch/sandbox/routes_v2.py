"""Embed API v2 handlers: create / retrieve / list async tasks, sync embeddings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from aiohttp import web

from vidsearch.sandbox import render, validation
from vidsearch.sandbox.errors import invalid, not_found
from vidsearch.sandbox.limits import DAY_S
from vidsearch.sandbox.state import SANDBOX, Sandbox
from vidsearch.sandbox.tasks import Task

JSON = "application/json"
STATUSES = ("processing", "ready", "failed")


def _sandbox(request: web.Request) -> Sandbox:
    return request.app[SANDBOX]


async def json_body(request: web.Request) -> Any:
    """The parsed JSON body, or a 400."""
    try:
        return await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise invalid("The request body is not valid JSON.") from exc


def maybe_drop(request: web.Request, box: Sandbox) -> bool:
    """Roll "dropped after create": abort the connection without an answer."""
    if not box.dice.roll("drop", box.config.drop_after_create_rate):
        return False
    box.stats.dropped_after_create += 1
    if request.transport is not None:
        request.transport.abort()
    return True


async def create_task(request: web.Request) -> web.StreamResponse:
    """POST embed-v2/tasks -> 202 ``{_id, status: processing, data: null}``."""
    box = _sandbox(request)
    headers = box.charge("create")
    spec = validation.v2_task(await json_body(request))
    covered = box.covered_s(spec)
    tokens = sum(validation.task_tokens(spec, covered).values()) if spec.model == "marengo3.5" else 0
    headers.update(box.limit(covered, tokens))
    task = box.create_task(spec)
    if maybe_drop(request, box):
        raise web.HTTPServiceUnavailable  # never sent: the connection is gone
    headers["Location"] = f"{request.url.origin()}/v1.3/embed-v2/tasks/{task.id}"
    return web.Response(body=render.v2_created(task), status=202, content_type=JSON, headers=headers)


async def retrieve_task(request: web.Request) -> web.Response:
    """GET embed-v2/tasks/{task_id}."""
    box = _sandbox(request)
    box.stats.status_polls += 1
    task_id = request.match_info["task_id"]
    task = box.store.get(task_id, "v2")
    if task is None:
        raise not_found(task_id)
    if box.expired(task):
        return web.Response(body=render.v2_expired(task), content_type=JSON)
    return web.Response(body=render.v2_task(task, box.status(task)), content_type=JSON)


def _time_arg(query: Any, name: str) -> float | None:
    raw = query.get(name)
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise invalid(f"{name} must be an RFC 3339 date-time, got {raw!r}.") from exc


def filtered(box: Sandbox, api: str, query: Any) -> Iterator[tuple[Task, str]]:
    """(task, status) newest first, filtered by ``status``, ``started_at`` and ``ended_at``
    (neither: the tasks of the last ``retention_days``)."""
    wanted = query.get("status")
    if wanted is not None and wanted not in STATUSES:
        raise invalid(f"status must be one of {', '.join(STATUSES)}.")
    after, before = _time_arg(query, "started_at"), _time_arg(query, "ended_at")
    if after is None and before is None:  # no dates: the retention period, as the API lists
        after = box.clock.now() - box.config.retention_days * DAY_S
    for task in box.store.newest_first(api):
        status = box.status(task)
        if wanted and status != wanted:
            continue
        if (after is not None and task.created_epoch < after) or (
            before is not None and task.created_epoch > before
        ):
            continue
        yield task, status


def page_of(box: Sandbox, api: str, request: web.Request) -> web.Response:
    """One page of a task list: ``{data, page_info}``; ``data: []`` past the end."""
    page, limit = validation.page_args(request.query)
    matches = list(filtered(box, api, request.query))
    chosen = matches[(page - 1) * limit : page * limit]
    body = {
        "data": [render.list_item(task, status) for task, status in chosen],
        "page_info": {"limit_per_page": limit, "page": page,
                      "total_page": max(1, -(-len(matches) // limit)),
                      "total_results": len(matches)},
    }
    return web.Response(body=render.dumps(body), content_type=JSON)


async def list_tasks(request: web.Request) -> web.Response:
    """GET embed-v2/tasks."""
    return page_of(_sandbox(request), "v2", request)


async def sync_embed(request: web.Request) -> web.Response:
    """POST embed-v2 -> 200 ``{data: [{embedding, ...}]}``: text, image, text_image, multi_input
    (one item) or video (Marengo 3.0: one item per segment and option, up to 600 s; 3.5 takes a
    video only as a multi_input source of up to 30 s)."""
    box = _sandbox(request)
    headers = box.charge("embed")
    query = validation.v2_sync(await json_body(request))
    if query.video is not None:
        task = box.sync_video(query.video)
        headers.update(box.limit(task.end - task.start))
        body = render.v2_sync_video(task)
    else:
        seconds = [box.media(source, source).duration for source in query.video_urls]
        for duration in seconds:
            box.check_sync_duration(query.model, duration)
        tokens = sum(render.usage(query)["input_tokens"].values()) if query.model == "marengo3.5" else 0
        headers.update(box.limit(sum(seconds), tokens))
        body = render.v2_sync(query, box.media_words)
    return web.Response(body=body, content_type=JSON, headers=headers)


def routes() -> list[tuple[str, str, Any]]:
    """(method, path, handler) of the v2 API, without the version prefix."""
    return [
        ("POST", "/embed-v2/tasks", create_task),
        ("GET", "/embed-v2/tasks", list_tasks),
        ("GET", "/embed-v2/tasks/{task_id}", retrieve_task),
        ("POST", "/embed-v2", sync_embed),
    ]
