"""The OpenAPI document: FastAPI's, with every error answer declared as problem JSON.

Each operation gets the problem answers it can give (401/403/429 where keys apply, 400/413/422
for input, 404 for unknown jobs or videos, 503 when a dependency fails), all ``application/problem+json``
with the ``Problem`` schema, replacing FastAPI's default 422 model.

The document is whole (every ``$ref`` resolves: models only a hand-written request body names,
such as ``ServerManifest``, are added to the components) and states the request rules: bounds and
enums come from the models (``schemas.py``, from ``Query``'s constants); bounds set per server
(``x-setting``) get this server's value; what a schema cannot say (which fields need or exclude
each other, body sizes) is in the operation's description.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from pipeline.search.query import SYNC_VIDEO_MAX_S
from pipeline.settings import Settings
from vidsearch.api.problems import PROBLEM_MEDIA_TYPE, Problem
from vidsearch.api.routes_jobs import JSONL_TYPES, KNOWN_SUFFIXES
from vidsearch.api.schemas import SETTING, ServerManifest

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
REF_TEMPLATE = "#/components/schemas/{model}"
COMPONENTS: tuple[type[BaseModel], ...] = (Problem, ServerManifest)
"""Models the generated document does not define itself (named by hand-written parts)."""
COMMON = {"401": "Missing or invalid API key", "422": "Request does not match the API",
          "429": "Rate limit of the key exceeded", "500": "Server error",
          "503": "Redis, Milvus or Twelve Labs cannot be reached"}
BY_TAG = {
    "search": {"400": "Invalid query or over a limit", "413": "Body too large",
               "503": "A backing service failed"},
    "jobs": {"400": "Unusable manifest", "403": "Needs an admin key, or path not allowed",
             "404": "No such job or manifest", "413": "Manifest too large"},
    "operations": {"503": "Not ready, or Redis cannot be reached"},
    "posters": {"400": "URL refused by the manifests' address rule (poster-url-refused)",
                "404": "Not an ingested video (not-ingested)"},
    "analytics": {"400": "Analytics cannot run on this input (no collection or videos, k over the "
                  "videos, unknown or one-video category)", "503": "Milvus failed"},
}


def _search_rules(settings: Settings, *, like: bool) -> str:
    parts = "text, clip_url, image_url or like_url" if like else "text, clip_url or image_url"
    rules = [
        f"Give at least one of {parts}.",
        "like_url stands alone (no text, clip_url or image_url); like_at_s needs like_url." if like
        else "",
        "text_image needs text and image_url.",
        "clip_start_s and clip_end_s need clip_url; clip_end_s is after clip_start_s (default 0) "
        f"by at most {SYNC_VIDEO_MAX_S:g} s.",
        "weights name only the query's parts; weights and modality_weights are not all zero.",
        "moments and segments exclude each other; option and modality_weights exclude each other.",
        f"A JSON body is at most {settings.api_max_body_bytes} bytes (413 body-too-large)." if like
        else "Unknown parameters are refused (422 invalid-request).",
        "A rule above that the schema cannot state is checked by the query itself: "
        "400 invalid-query naming the field.",
    ]
    return " ".join(filter(None, rules))


def _descriptions(settings: Settings) -> dict[tuple[str, str], str]:
    """Rules a schema cannot state, by (method, path)."""
    return {
        ("get", "/v1/search"): _search_rules(settings, like=False),
        ("post", "/v1/search"): _search_rules(settings, like=True),
        ("get", "/v1/videos/similar"): (
            "The like search of POST /v1/search: url is an ingested video's http(s) URL "
            "(400 invalid-query otherwise), left out of the hits; at_s picks its segment at that time."),
        ("post", "/v1/jobs"): (
            "Admin keys only. Either upload a manifest of at most "
            f"{settings.api_max_manifest_bytes} bytes (413 body-too-large): CSV (text/csv) or JSON "
            f"Lines ({', '.join(sorted(JSONL_TYPES))}); with another Content-Type the filename's "
            f"extension ({', '.join(KNOWN_SUFFIXES)}) or else the content tells the format; the "
            "query parameters filename, category, force and name apply to it. Or send "
            "application/json, a ServerManifest naming a file under the server's "
            "api_manifest_dir: then the query parameters are ignored and the body's category, "
            "force and name apply."),
    }


def _components(schemas: dict[str, Any]) -> None:
    for model in COMPONENTS:
        schema = model.model_json_schema(ref_template=REF_TEMPLATE)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema


def _server_limits(node: Any, settings: Settings) -> None:
    """Write this server's value beside every ``x-setting`` marker (``{bound: setting}``); a
    default over a maximum becomes the maximum (the route applies the same)."""
    if isinstance(node, dict):
        for bound, setting in node.get(SETTING, {}).items():
            node[bound] = getattr(settings, setting)
        default, maximum = node.get("default"), node.get("maximum")
        if isinstance(default, int | float) and isinstance(maximum, int | float) and default > maximum:
            node["default"] = maximum
        for value in node.values():
            _server_limits(value, settings)
    elif isinstance(node, list):
        for value in node:
            _server_limits(value, settings)


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}}


def _operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for path in doc.get("paths", {}).values() for op in path.values() if isinstance(op, dict)]


def build(app: FastAPI, settings: Settings) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    _components(schemas)
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    _server_limits(doc, settings)
    for (method, path), description in _descriptions(settings).items():
        doc["paths"][path][method]["description"] = description
    for op in _operations(doc):
        responses = op.setdefault("responses", {})
        wanted = dict(COMMON)
        for tag in op.get("tags", []):
            wanted.update(BY_TAG.get(tag, {}))
        for status, description in wanted.items():
            responses[status] = _problem(description)
    return doc


def install(app: FastAPI) -> None:
    """Serve ``build(app, settings)`` (the settings of ``app.state.ctx``), built on first request."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app, app.state.ctx.settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
