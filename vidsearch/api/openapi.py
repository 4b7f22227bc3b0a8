"""The OpenAPI document: FastAPI's, with every error answer declared as problem JSON.

Each operation gets the problem answers it can give (401/403/429 where keys apply, 400/413/422
for input, 404 for unknown jobs, 503 when a dependency fails), all ``application/problem+json``
with the ``Problem`` schema, replacing FastAPI's default 422 model.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from vidsearch.api.problems import PROBLEM_MEDIA_TYPE, Problem

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
COMMON = {"401": "Missing or invalid API key", "422": "Request does not match the API",
          "429": "Rate limit of the key exceeded", "500": "Server error",
          "503": "Redis, Milvus or Twelve Labs cannot be reached"}
BY_TAG = {
    "search": {"400": "Invalid query or over a limit", "413": "Body too large",
               "503": "A backing service failed"},
    "jobs": {"400": "Unusable manifest", "403": "Needs an admin key, or path not allowed",
             "404": "No such job or manifest", "413": "Manifest too large"},
    "operations": {"503": "Not ready, or Redis cannot be reached"},
    "analytics": {"400": "Analytics cannot run on this input (no collection or videos, k over the "
                  "videos, unknown or one-video category)", "503": "Milvus failed"},
}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}}


def _operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for path in doc.get("paths", {}).values() for op in path.values() if isinstance(op, dict)]


def build(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema()
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for op in _operations(doc):
        responses = op.setdefault("responses", {})
        wanted = dict(COMMON)
        for tag in op.get("tags", []):
            wanted.update(BY_TAG.get(tag, {}))
        for status, description in wanted.items():
            responses[status] = _problem(description)
    return doc


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
