"""The OpenAPI document: every route is in it, every error answer is declared as problem JSON,
the docs pages are served; the document is valid and whole (every ``$ref`` resolves), states this
server's limits, and a request built from it at a documented bound is accepted while one just
outside it is refused with a problem (no rule a client cannot read in it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from tests.stack import Stack
from tests.vidsearch.api.conftest import Api, Server, api_for, key_entries, start_server, video_url

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BOUNDS_KEY = "vsk_test-bounds-key-0123456789abcdefghijklmnopqrs"
TOP_K_CAP, TEXT_CAP = 7, 30
SURF = video_url("animals", "surfing-dog-at-the-beach")
CLIP = "https://cdn.example.com/clips/dog-on-a-surfboard.mp4"
# A valid request of each route, and what a field needs beside it to be used at all.
BASE: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/v1/search"): {"text": "surfing dog"},
    ("post", "/v1/search"): {"text": "surfing dog"},
    ("get", "/v1/videos/similar"): {"url": SURF},
}
NEEDS: dict[str, dict[str, Any]] = {
    "max_moments": {"moments": True}, "clip_start_s": {"clip_url": CLIP},
    "clip_end_s": {"clip_url": CLIP}, "like_at_s": {"like_url": SURF, "text": None},
}
ROUTES = {
    ("get", "/v1/search"), ("post", "/v1/search"), ("get", "/v1/videos/similar"), ("get", "/v1/posters"),
    ("post", "/v1/jobs"), ("get", "/v1/jobs"), ("get", "/v1/jobs/{job_id}"),
    ("get", "/v1/jobs/{job_id}/failures"), ("get", "/v1/jobs/{job_id}/rejects"),
    ("post", "/v1/jobs/{job_id}/retry"), ("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics"),
    ("get", "/v1/analytics/clusters"), ("get", "/v1/analytics/clusters/map.{fmt}"),
    ("get", "/v1/analytics/outliers"), ("get", "/v1/analytics/duplicates"),
    ("get", "/v1/analytics/trends"), ("get", "/v1/analytics/trends/plot.{fmt}"),
}


def test_the_document_lists_every_route_with_problem_json_errors(open_server: Server) -> None:
    doc = httpx.get(f"{open_server.url}/openapi.json", timeout=30).json()
    assert doc["openapi"].startswith("3.")
    found = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert found == ROUTES
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            errors = {s: r for s, r in op["responses"].items() if s[0] in "45"}
            assert {"401", "422", "429", "500"} <= set(errors), (method, path)
            for response in errors.values():
                assert list(response["content"]) == ["application/problem+json"]
    assert "Problem" in doc["components"]["schemas"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_the_docs_pages_are_served(open_server: Server) -> None:
    for page in ("/docs", "/redoc"):
        response = httpx.get(f"{open_server.url}{page}", timeout=30)
        assert response.status_code == 200 and "openapi.json" in response.text


def test_an_unknown_path_is_a_problem_too(open_server: Server) -> None:
    response = httpx.get(f"{open_server.url}/v1/nope", timeout=30)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "about:blank"


# --- the document is whole -------------------------------------------------------------------------
def served(server: Server) -> dict[str, Any]:
    doc: dict[str, Any] = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    return doc


def refs(node: Any, where: str = "#") -> Iterator[tuple[str, str]]:
    """(where, target) of every ``$ref`` in ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield where, value
            else:
                yield from refs(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from refs(value, f"{where}/{i}")


def resolve(doc: dict[str, Any], ref: str) -> Any:
    """The node a local JSON pointer names (KeyError when it names nothing)."""
    assert ref.startswith("#/"), f"{ref} is not a reference inside the document"
    node: Any = doc
    for raw in ref[2:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def test_the_served_document_is_valid_openapi_and_every_ref_resolves(open_server: Server) -> None:
    doc = served(open_server)
    validate(doc)  # openapi-spec-validator: the document is valid OpenAPI 3.1
    found = list(refs(doc))
    unresolved = []
    for where, ref in found:
        try:
            resolve(doc, ref)
        except (KeyError, IndexError, ValueError):
            unresolved.append(f"{where} -> {ref}")
    assert not unresolved
    body = doc["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert resolve(doc, body["$ref"])["required"] == ["path"]
    assert len(found) > 50


def test_resolve_refuses_a_reference_to_nothing() -> None:
    doc = {"components": {"schemas": {"A": {}}}}
    assert resolve(doc, "#/components/schemas/A") == {}
    with pytest.raises(KeyError):
        resolve(doc, "#/components/schemas/ServerManifest")


# --- the document states the rules ---------------------------------------------------------------
@pytest.fixture(scope="module")
def bounded(stack: Stack) -> Iterator[Server]:
    """Small caps (so they differ from the defaults) and a key of its own with a generous rate."""
    server = start_server(stack, "bounds", VIDSEARCH_API_MAX_TOP_K=str(TOP_K_CAP),
                          VIDSEARCH_API_MAX_QUERY_CHARS=str(TEXT_CAP), VIDSEARCH_API_RATE_BURST="1000",
                          VIDSEARCH_API_KEYS=key_entries(bounds=("read", BOUNDS_KEY)))
    yield server
    server.stop()


def fields(doc: dict[str, Any], method: str, path: str) -> dict[str, dict[str, Any]]:
    """Name -> schema of an operation's query parameters, or of its JSON body's properties."""
    op = doc["paths"][path][method]
    if "requestBody" in op:
        body = resolve(doc, op["requestBody"]["content"]["application/json"]["schema"]["$ref"])
        return dict(body["properties"])
    return {p["name"]: p["schema"] for p in op["parameters"] if p["in"] == "query"}


def flat(schema: dict[str, Any]) -> dict[str, Any]:
    """A field's schema with its one non-null ``anyOf`` branch merged in (optional fields)."""
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
    return {**schema, **branches[0]} if len(branches) == 1 else schema


def edge_values(schema: dict[str, Any]) -> Iterator[tuple[Any, bool]]:
    """(value, accepted?) at and just outside each bound the schema states."""
    kind = int if schema.get("type") == "integer" else float
    step = kind(1 if kind is int else 0.5)
    if "minimum" in schema:
        low = kind(schema["minimum"])
        yield from ((low, True), (low - step, False))
    if "maximum" in schema:
        high = kind(schema["maximum"])
        yield from ((high, True), (high + step, False))
    if "exclusiveMinimum" in schema:
        low = kind(schema["exclusiveMinimum"])
        yield from ((low + step, True), (low, False))
    if "maxLength" in schema:
        words = "surfing dog " * schema["maxLength"]
        yield from ((words[: schema["maxLength"]], True), (words[: schema["maxLength"] + 1], False))
    for value in schema.get("enum", []):
        yield value, True
    if "enum" in schema:
        yield "none-of-" + "-".join(schema["enum"]), False
    if "pattern" in schema:
        yield "ftp://cdn.example.com/x.mp4", False


def cases(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], bool]]:
    """(method, path, request, accepted?): each route's base request (every default applied),
    then every documented bound of its fields."""
    for (method, path), base in BASE.items():
        yield method, path, base, True
        for name, schema in fields(doc, method, path).items():
            for value, accepted in edge_values(flat(schema)):
                request = {**base, **NEEDS.get(name, {}), name: value}
                yield method, path, {k: v for k, v in request.items() if v is not None}, accepted


# Rules only the descriptions state (which fields need or exclude each other), each way.
COMBINATIONS: list[tuple[str, str, dict[str, Any], bool]] = [
    ("get", "/v1/search", {"text": "dog", "moments": True, "segments": True}, False),
    ("get", "/v1/search", {"text": "dog", "option": "visual", "modality_weights": "audio=1"}, False),
    ("get", "/v1/search", {"text": "dog", "modality_weights": "visual=0,audio=1"}, True),
    ("get", "/v1/search", {"text": "dog", "modality_weights": "visual=0"}, False),
    ("get", "/v1/search", {"text": "dog", "weights": "text=0.5"}, True),
    ("get", "/v1/search", {"text": "dog", "weights": "clip=1"}, False),
    ("get", "/v1/search", {"text": "dog", "text_image": True}, False),
    ("get", "/v1/search", {"clip_start_s": 1}, False),
    ("post", "/v1/search", {"like_url": SURF, "like_at_s": 0}, True),
    ("post", "/v1/search", {"like_url": SURF, "text": "dog"}, False),
    ("post", "/v1/search", {"text": "dog", "like_at_s": 0}, False),
    ("post", "/v1/search", {"text": "dog", "weights": {"text": 2}}, True),
    ("post", "/v1/search", {"text": "dog", "weights": {"text": -1}}, False),
    ("post", "/v1/search", {"text": "dog", "modality_weights": {"smell": 1}}, False),
    ("post", "/v1/search", {"text": "dog", "colour": "red"}, False),
    ("get", "/v1/search", {"text": "dog", "colour": "red"}, False),
]


def send(api: Api, method: str, path: str, request: dict[str, Any]) -> httpx.Response:
    if method == "post":
        return api.post(path, json=request)
    return api.get(path, params={k: str(v).lower() if isinstance(v, bool) else v
                                 for k, v in request.items()})


def unexpected(api: Api, method: str, path: str, request: dict[str, Any], accepted: bool) -> str | None:
    """Why the answer is not what the document promises, or None."""
    response = send(api, method, path, request)
    problem = response.headers.get("content-type") == "application/problem+json"
    if accepted and response.status_code == 200:
        return None
    if not accepted and 400 <= response.status_code < 500 and response.status_code != 429 and problem:
        return None
    want = "200" if accepted else "a 4xx problem"
    return f"{method.upper()} {path} {request}: {response.status_code} (want {want}) {response.text[:200]}"


def test_the_document_states_this_servers_caps(bounded: Server) -> None:
    doc = served(bounded)
    for method, path in BASE:
        schemas = {n: flat(s) for n, s in fields(doc, method, path).items()}
        assert schemas["top_k"]["maximum"] == TOP_K_CAP, (method, path)
        assert "text" not in schemas or schemas["text"]["maxLength"] == TEXT_CAP
    assert flat(fields(doc, "get", "/v1/search")["max_moments"])["maximum"] == 20
    assert flat(fields(doc, "get", "/v1/search")["option"])["enum"] == ["visual", "audio", "transcription"]
    for method, path in (("get", "/v1/search"), ("post", "/v1/search")):
        assert "exclude each other" in doc["paths"][path][method]["description"]


def test_requests_at_the_documented_bounds_are_accepted_and_just_outside_refused(bounded: Server) -> None:
    api = api_for(bounded, BOUNDS_KEY)
    built = list(cases(served(bounded)))
    assert len(built) >= 40 and {a for *_, a in built} == {True, False}
    wrong = [why for c in [*built, *COMBINATIONS] if (why := unexpected(api, *c)) is not None]
    assert not wrong, "\n".join(wrong)
