"""Probes and metrics: ``/healthz`` (the process answers), ``/readyz`` (Redis and Milvus answer,
the collection is loaded), ``/metrics`` (Prometheus: the fleet's counters read from Redis, as
``vidsearch metrics`` serves them, plus this server's requests by route and status)."""

from __future__ import annotations

from typing import Annotated, Any

import redis
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pipeline.errors import StoreError
from vidsearch.api.context import ApiContext
from vidsearch.api.keys import ApiKey
from vidsearch.api.problems import ProblemError
from vidsearch.api.schemas import Health, Ready
from vidsearch.api.security import read_access

router = APIRouter(tags=["operations"])
METRICS_BODY: dict[int | str, dict[str, Any]] = {200: {
    "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
    "description": "Prometheus text exposition"}}


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


def _live_collection(ctx: ApiContext) -> str:
    """The live model version's collection (the settings' model before versions exist)."""
    try:
        live = ctx.clients.versions.live()
    except redis.RedisError:
        live = None
    if live is not None:
        return live.collection
    return ctx.clients.store.collection_for(ctx.settings.model, ctx.settings.dimension)


def readiness(ctx: ApiContext) -> dict[str, str]:
    """Each dependency's state; raises nothing."""
    checks = {"redis": "ok", "milvus": "ok", "collection": "loaded"}
    try:
        ctx.clients.redis.ping()
    except redis.RedisError as exc:
        checks["redis"] = f"unreachable: {type(exc).__name__}"
    store = ctx.clients.store
    name = _live_collection(ctx)
    try:
        store.ping()
        if not store.is_loaded(name):
            checks["collection"] = f"{name} not loaded (nothing ingested yet?)"
    except StoreError as exc:
        checks["milvus"] = f"unreachable: {type(exc).__name__}"
        checks["collection"] = "unknown"
    return checks


@router.get("/readyz", response_model=Ready, summary="Redis and Milvus answer, the collection is loaded")
def readyz(request: Request) -> Ready:
    checks = readiness(request.app.state.ctx)
    if checks != {"redis": "ok", "milvus": "ok", "collection": "loaded"}:
        failing = ", ".join(f"{k}: {v}" for k, v in checks.items() if v not in ("ok", "loaded"))
        raise ProblemError(503, "not-ready", "Not ready", failing, checks=checks)
    return Ready(status="ready", checks=checks)


@router.get("/metrics", responses=METRICS_BODY, response_class=Response,
            summary="Prometheus metrics (fleet and this server)")
def metrics(request: Request, _key: Annotated[ApiKey, Depends(read_access)]) -> Response:
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
