"""Embed API v1 handlers (deprecated, still in the SDK): multipart create, status, retrieve, list,
and the multipart sync embed."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from vidsearch.sandbox import render, validation
from vidsearch.sandbox.errors import invalid, not_found
from vidsearch.sandbox.routes_v2 import JSON, maybe_drop, page_of
from vidsearch.sandbox.state import SANDBOX, Sandbox
from vidsearch.sandbox.tasks import Task


def _sandbox(request: web.Request) -> Sandbox:
    return request.app[SANDBOX]


async def _form(request: web.Request) -> Any:
    try:
        return await request.post()
    except ValueError as exc:
        raise invalid("The request body is not a valid form.") from exc


def _plain(form: Any) -> dict[str, Any]:
    """Form fields as a dict (the first value of each; file parts kept as objects)."""
    return {key: form.get(key) for key in form}


async def create_task(request: web.Request) -> web.StreamResponse:
    """POST embed/tasks -> 200 ``{_id}``."""
    box = _sandbox(request)
    headers = box.charge("create")
    form = await _form(request)
    spec = validation.v1_task(_plain(form), list(form.getall("video_embedding_scope", [])))
    headers.update(box.limit(box.covered_s(spec)))
    task = box.create_task(spec)
    if maybe_drop(request, box):
        raise web.HTTPServiceUnavailable  # never sent: the connection is gone
    return web.Response(body=render.dumps({"_id": task.id}), content_type=JSON, headers=headers)


def _task(request: web.Request) -> Task:
    box = _sandbox(request)
    box.stats.status_polls += 1
    task_id = request.match_info["task_id"]
    task = box.store.get(task_id, "v1")
    if task is None:
        raise not_found(task_id)
    return task


async def task_status(request: web.Request) -> web.Response:
    """GET embed/tasks/{task_id}/status."""
    task = _task(request)
    return web.Response(body=render.v1_status(task, _sandbox(request).status(task)), content_type=JSON)


async def retrieve_task(request: web.Request) -> web.Response:
    """GET embed/tasks/{task_id}[?embedding_option=...]."""
    task = _task(request)
    wanted = tuple(request.query.getall("embedding_option", [])) or task.spec.options
    bad = [o for o in wanted if o not in task.spec.options]
    if bad:
        raise invalid(f"embedding_option {bad} is not available for {task.spec.model}; "
                      f"allowed: {', '.join(task.spec.options)}.")
    return web.Response(body=render.v1_task(task, _sandbox(request).status(task), wanted), content_type=JSON)


async def list_tasks(request: web.Request) -> web.Response:
    """GET embed/tasks."""
    return page_of(_sandbox(request), "v1", request)


async def sync_embed(request: web.Request) -> web.Response:
    """POST embed -> ``{model_name, text_embedding | image_embedding | audio_embedding}``."""
    box = _sandbox(request)
    headers = box.charge("embed")
    query = validation.v1_sync(_plain(await _form(request)))
    headers.update(box.limit())
    return web.Response(body=render.v1_sync(query), content_type=JSON, headers=headers)


def routes() -> list[tuple[str, str, Any]]:
    """(method, path, handler) of the v1 API, without the version prefix."""
    return [
        ("POST", "/embed/tasks", create_task),
        ("GET", "/embed/tasks", list_tasks),
        ("GET", "/embed/tasks/{task_id}/status", task_status),
        ("GET", "/embed/tasks/{task_id}", retrieve_task),
        ("POST", "/embed", sync_embed),
    ]
