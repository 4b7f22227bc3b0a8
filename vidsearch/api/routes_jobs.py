"""``/v1/jobs``: submit a manifest (uploaded, or a server-side path), list, inspect, retry.

An uploaded manifest (CSV or JSON Lines; the format from ``Content-Type``, else the ``filename``
extension, else the content) is streamed to a temporary file as it arrives (never held in memory,
capped by ``api_max_manifest_bytes``), then handed to the same ``Producer`` as ``vidsearch submit``:
same validation, same line-numbered rejects, labelled with ``filename``. A JSON body names a
manifest on the server instead, allowed only under ``api_manifest_dir``. Admin keys only.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from pipeline.errors import ManifestError
from pipeline.ingest.manifest import LineRules
from pipeline.ingest.producer import SubmitSummary, submit_to_versions
from pipeline.ledger.records import Job
from pipeline.ledger.store import SubmitMode
from vidsearch.api.context import ApiContext
from vidsearch.api.problems import ProblemError
from vidsearch.api.schemas import (
    FailureOut,
    JobOut,
    RejectOut,
    RetryOut,
    ServerManifest,
    SubmitOut,
    job_out,
)
from vidsearch.api.security import admin_access
from vidsearch.cli.display import spending, status_dict, ticking

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[Depends(admin_access)])
JobId = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="job id")]
JSONL_TYPES = {"application/x-ndjson", "application/ndjson", "application/jsonl",
               "application/x-jsonlines", "application/jsonlines"}
KNOWN_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".json")
UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "text/csv": {"schema": {"type": "string"}},
    "application/x-ndjson": {"schema": {"type": "string"}},
    "application/json": {"schema": {"$ref": "#/components/schemas/ServerManifest"}},
}}}


def _ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def _submit(ctx: ApiContext, path: Path, label: str, options: ServerManifest) -> SubmitSummary:
    s = ctx.settings
    rules = LineRules.from_settings(s, default_category=options.category)
    mode = SubmitMode(force=options.force, retry_transient=s.resubmit_transient_failures)
    try:
        return submit_to_versions(ctx.clients.jobs, ctx.clients.versions, s, rules, [path], mode=mode,
                                  name=options.name, labels=[label])[0]
    except ManifestError as exc:
        raise ProblemError(400, "invalid-manifest", "Manifest unusable", str(exc)) from exc


def upload_label(filename: str, content_type: str) -> str:
    """A safe base name for an upload; its extension tells the reader the format."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(filename))[:120].lstrip(".") or "upload"
    if base.lower().endswith(KNOWN_SUFFIXES):
        return base
    if content_type in JSONL_TYPES:
        return f"{base}.jsonl"
    return f"{base}.csv" if content_type == "text/csv" else base


async def _spool(request: Request) -> Path:
    """The request body in a temporary file (the size cap is enforced by ``BodyLimit``)."""
    fd, name = tempfile.mkstemp(prefix="vidsearch-upload-")
    try:
        with os.fdopen(fd, "wb") as handle:
            async for chunk in request.stream():
                handle.write(chunk)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


def _server_path(ctx: ApiContext, given: str) -> Path:
    root = ctx.settings.api_manifest_dir
    if root is None:
        raise ProblemError(403, "server-paths-off", "Server-side manifests disabled",
                           "this server takes uploaded manifests only (api_manifest_dir is unset)")
    base = root.resolve()
    path = (base / given).resolve()
    if not path.is_relative_to(base):
        raise ProblemError(403, "path-outside-manifest-dir", "Path not allowed",
                           "the manifest path must lie under the server's manifest directory")
    if not path.is_file():
        raise ProblemError(404, "manifest-not-found", "Manifest not found",
                           f"no manifest {given!r} under the server's manifest directory")
    return path


async def _json_manifest(request: Request) -> ServerManifest:
    try:
        return ServerManifest.model_validate_json(await request.body())
    except ValidationError as exc:
        where = ", ".join(".".join(map(str, e["loc"])) or "body" for e in exc.errors()[:5])
        raise ProblemError(422, "invalid-request", "Invalid request",
                           f"the JSON body must be {{\"path\": ...}}: {where}") from exc


def _created(summary: SubmitSummary) -> JSONResponse:
    body = SubmitOut.model_validate(summary.to_dict()).model_dump()
    return JSONResponse(body, status_code=201, headers={"Location": f"/v1/jobs/{summary.job_id}"})


@router.post("", status_code=201, response_model=SubmitOut, openapi_extra=UPLOAD_BODY,
             summary="Submit a manifest (upload it, or name one on the server)")
async def submit(
    request: Request,
    filename: Annotated[str, Query(max_length=200, description="the upload's name")] = "upload",
    category: Annotated[str | None, Query(description="category for lines that have none")] = None,
    force: Annotated[bool, Query(description="re-embed items already ingested")] = False,
    name: Annotated[str, Query(max_length=200, description="a name for the job")] = "",
) -> JSONResponse:
    ctx = _ctx(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        body = await _json_manifest(request)
        path = _server_path(ctx, body.path)
        summary = await run_in_threadpool(_submit, ctx, path, body.path, body)
        return _created(summary)
    spooled = await _spool(request)
    try:
        label = upload_label(filename, content_type)
        options = ServerManifest(path=label, category=category, force=force, name=name)
        summary = await run_in_threadpool(_submit, ctx, spooled, label, options)
    finally:
        with contextlib.suppress(OSError):
            spooled.unlink()
    return _created(summary)


def _job(ctx: ApiContext, job_id: str) -> Job:
    job = ctx.clients.jobs.get_job(job_id)
    if job is None:
        raise ProblemError(404, "job-not-found", "No such job", f"there is no job {job_id!r}")
    return job


def _out(ctx: ApiContext, jobs: list[Job]) -> list[JobOut]:
    """Counters plus rate, ETA and the tick's state, as ``vidsearch status --json`` has them."""
    tick, now = ticking(ctx.clients), time.time()
    return [job_out(status_dict(job, tick, now, spending(ctx.clients, job))) for job in jobs]


@router.get("", response_model=list[JobOut], summary="Recent jobs, newest first")
def list_jobs(request: Request,
              limit: Annotated[int, Query(ge=1, le=200, description="how many")] = 20) -> list[JobOut]:
    ctx = _ctx(request)
    return _out(ctx, ctx.clients.jobs.list_jobs(limit))


@router.get("/{job_id}", response_model=JobOut, summary="A job's counters, progress, rate and ETA")
def get_job(request: Request, job_id: JobId) -> JobOut:
    ctx = _ctx(request)
    return _out(ctx, [_job(ctx, job_id)])[0]


@router.get("/{job_id}/failures", response_model=list[FailureOut], summary="A job's failed items")
def failures(request: Request, job_id: JobId) -> list[dict[str, Any]]:
    ctx = _ctx(request)
    job = _job(ctx, job_id)
    return [
        {"item": i.key, "url": i.url, "category": i.category, "reason": i.reason,
         "attempts": i.attempts, "task_id": i.task_id}
        for i in ctx.clients.jobs.failures(job.id)
    ]


@router.get("/{job_id}/rejects", response_model=list[RejectOut],
            summary="A job's rejected manifest lines")
def rejects(request: Request, job_id: JobId,
            limit: Annotated[int, Query(ge=1, le=100_000)] = 1000) -> list[dict[str, Any]]:
    ctx = _ctx(request)
    return ctx.clients.jobs.rejects(_job(ctx, job_id).id, limit - 1)


@router.post("/{job_id}/retry", response_model=RetryOut, summary="Re-drive a job's failed items")
def retry(request: Request, job_id: JobId) -> RetryOut:
    ctx = _ctx(request)
    job = _job(ctx, job_id)
    return RetryOut(job_id=job.id, requeued=ctx.clients.jobs.retry(job.id))
