"""Embed-path responses of the sandbox parse, strictly, with the ``twelvelabs`` SDK's own models.

The SDK (1.3.6, Fern-generated) is what the pipeline runs against Twelve Labs, so its pydantic
models are the wire contract the sandbox stands in for; it comes from PyPI, nothing is read from
outside the repository. (TL's OpenAPI 1.3 file is not vendored: its repository,
twelvelabs-io/twelvelabs-developer-experience, carries no license, so it may not be redistributed.)

"Strictly" is more than the SDK checks when it parses:

- pydantic's strict JSON mode (no ``"1"`` for ``1``), after the SDK's own alias mapping (``_id``);
- required fields present (the models say which);
- a field the model does not define is flagged (the models allow extras and would keep them
  silently), except the few in ``NOT_IN_SDK``, each with its reason;
- an open enum (Fern's ``Literal[...] | Any``) is closed: a value outside the literal is flagged.

Error bodies: flat ``FlatErrorResponse`` ``{code, message}`` by default and always on list
endpoints and 401s; nested ``ErrorResponse`` ``{error: {code, message}}`` on embed-v2 create,
retrieve and sync with ``--error-style nested``. A body of one shape fails the other model.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterator
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import httpx
import pydantic
import pytest
from twelvelabs.core.serialization import convert_and_respect_annotation_metadata
from twelvelabs.embed.tasks.types import TasksCreateResponse as V1Created
from twelvelabs.embed.tasks.types import TasksListResponse as V1List
from twelvelabs.embed.tasks.types import TasksRetrieveResponse, TasksStatusResponse
from twelvelabs.embed.v_2.tasks.types import TasksCreateResponse as V2Created
from twelvelabs.embed.v_2.tasks.types import TasksListResponse as V2List
from twelvelabs.types import (
    EmbeddingResponse,
    EmbeddingSuccessResponse,
    EmbeddingTaskResponse,
    ErrorResponse,
    FlatErrorResponse,
)

from tests.vidsearch.sandbox.conftest import http, v2_body, video_url, wait_done
from vidsearch.stack.services import Service, start_sandbox

Model = TypeVar("Model", bound=pydantic.BaseModel)

# Fields the sandbox sends that the SDK model does not define (allowed, so the SDK keeps them).
NOT_IN_SDK: dict[str, frozenset[str]] = {
    # TL's documented error format and the OpenAPI genericError carry docs_url; the SDK models
    # only code and message.
    "FlatErrorResponse": frozenset({"docs_url"}),
    # The sandbox renders a v1 status like a list item; neither the SDK nor TL's example shows them.
    "TasksStatusResponse": frozenset({"created_at", "updated_at"}),
}


def _bare(annotation: Any) -> Any:
    """``annotation`` without ``Annotated`` and a lone ``Optional``."""
    while True:
        if get_origin(annotation) is typing.Annotated:
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation):
            rest = [a for a in get_args(annotation) if a is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def _open_enum(annotation: Any) -> set[Any] | None:
    """The values of Fern's open enum ``Literal[...] | Any``, or None for any other annotation."""
    args = get_args(annotation)
    if get_origin(annotation) not in (Union, types.UnionType) or Any not in args:
        return None
    return {v for a in args if get_origin(a) is Literal for v in get_args(a)} or None


def _model_problems(value: pydantic.BaseModel, path: str) -> Iterator[str]:
    allowed = NOT_IN_SDK.get(type(value).__name__, frozenset())
    for name in sorted(set(value.model_extra or {}) - allowed):
        yield f"{path}.{name}: not in the SDK's {type(value).__name__}"
    for name, field in type(value).model_fields.items():
        yield from problems(getattr(value, name), field.annotation, f"{path}.{name}")


def problems(value: Any, annotation: Any, path: str = "$") -> Iterator[str]:
    """What a parsed value holds beyond its model: extra fields and values outside open enums."""
    bare = _bare(annotation)
    items = get_args(bare)
    if isinstance(value, pydantic.BaseModel):
        yield from _model_problems(value, path)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from problems(item, items[0] if get_origin(bare) is list else Any, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from problems(item, items[1] if get_origin(bare) is dict else Any, f"{path}.{key}")
    elif value is not None or type(None) not in get_args(annotation):
        allowed = _open_enum(bare)
        if allowed is not None and value not in allowed:
            yield f"{path}: {value!r} is not one of {sorted(allowed)}"


def strict(model: type[Model], body: Any) -> Model:
    """``body`` parsed as the SDK parses it, in strict mode, with nothing beyond the model."""
    renamed = convert_and_respect_annotation_metadata(object_=body, annotation=model, direction="read")
    parsed = model.model_validate_json(json.dumps(renamed), strict=True)
    found = list(problems(parsed, model))
    assert not found, f"{model.__name__}: " + "; ".join(found)
    return parsed


@pytest.fixture(scope="module")
def nested(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_sandbox(tmp_path_factory.mktemp("nested"),
                            args=["--speed", "50", "--error-style", "nested"])
    yield service
    service.stop()


def done_v2(base: str, task_id: str) -> dict[str, Any]:
    return wait_done(lambda: _Status(http("GET", f"{base}/v1.3/embed-v2/tasks/{task_id}").body)).body


class Strictness(pydantic.BaseModel):
    """A model shaped like the SDK's (extras allowed, an open enum) for the checker's own test."""

    model_config = pydantic.ConfigDict(extra="allow")
    status: Union[Literal["ready", "failed"], Any]  # noqa: UP007  (Fern's spelling)
    note: str | None = None


def test_the_strict_parse_flags_extra_fields_missing_fields_unknown_enum_values_and_coercion():
    assert strict(Strictness, {"status": "ready"}).status == "ready"
    with pytest.raises(AssertionError, match=r"\$\.colour: not in the SDK's Strictness"):
        strict(Strictness, {"status": "ready", "colour": "red"})
    with pytest.raises(AssertionError, match=r"\$\.status: 'queued' is not one of"):
        strict(Strictness, {"status": "queued"})
    with pytest.raises(pydantic.ValidationError, match="status"):
        strict(Strictness, {"note": "no status"})
    with pytest.raises(pydantic.ValidationError, match="note"):
        strict(Strictness, {"status": "ready", "note": 5})


def test_v2_create_retrieve_and_ready_responses_parse_strictly(base: str):
    created = http("POST", f"{base}/v1.3/embed-v2/tasks", v2_body(video_url("oas", "ready")))
    assert created.status == 202
    task_id = strict(V2Created, created.body).id
    processing = http("GET", f"{base}/v1.3/embed-v2/tasks/{task_id}").body
    assert strict(EmbeddingTaskResponse, processing).status == "processing"
    ready = strict(EmbeddingTaskResponse, done_v2(base, task_id))
    assert ready.status == "ready" and ready.data


def test_v2_35_create_and_failed_task_parse_strictly_with_their_metadata_and_error(base: str):
    created = http("POST", f"{base}/v1.3/embed-v2/tasks",
                   v2_body(video_url("oas35"), model="marengo3.5", embedding_dimension=256))
    metadata = strict(V2Created, created.body).metadata
    assert metadata is not None and metadata.embedding_dimension == 256
    failed_id = http("POST", f"{base}/v1.3/embed-v2/tasks",
                     v2_body("https://example.com/page.html")).body["_id"]
    failed = strict(EmbeddingTaskResponse, done_v2(base, failed_id))
    assert failed.status == "failed" and failed.error is not None and failed.error.message


def test_audio_fused_uncertainty_and_usage_bodies_parse_strictly(base: str):
    audio = {"input_type": "audio", "model_name": "marengo3.0",
             "audio": {"media_source": {"url": video_url("oas", "audio")}}}
    audio_id = strict(V2Created, http("POST", f"{base}/v1.3/embed-v2/tasks", audio).body).id
    heard = strict(EmbeddingTaskResponse, done_v2(base, audio_id))
    assert heard.metadata is not None and heard.metadata.input_type == "audio"
    listed = strict(V2List, http("GET", f"{base}/v1.3/embed-v2/tasks?page=1&page_limit=50").body)
    assert any(t.id == audio_id and t.audio_embedding for t in listed.data or [])
    video = {"media_source": {"url": video_url("oas", "fused")}, "embedding_scope": ["clip"],
             "embedding_option": ["visual", "audio"], "embedding_type": ["fused_embedding"],
             "time_based_metadata": [{"start": 0, "end": 4, "text": "kick off"}]}
    body = {"input_type": "video", "model_name": "marengo3.5", "embedding_uncertainty": True, "video": video}
    fused_id = strict(V2Created, http("POST", f"{base}/v1.3/embed-v2/tasks", body).body).id
    fused = strict(EmbeddingTaskResponse, done_v2(base, fused_id))
    assert fused.data and all(d.embedding_option == "fused" and d.embedding_uncertainty for d in fused.data)
    assert fused.usage is not None and set(fused.usage.input_tokens) == {"video", "text"}


def test_v2_list_and_sync_responses_parse_strictly(base: str):
    listed = strict(V2List, http("GET", f"{base}/v1.3/embed-v2/tasks?page=1&page_limit=5").body)
    assert listed.data and listed.page_info is not None and listed.page_info.limit_per_page == 5
    sync = http("POST", f"{base}/v1.3/embed-v2", {"input_type": "text", "model_name": "marengo3.0",
                                                  "text": {"input_text": "dog"}})
    assert len(strict(EmbeddingSuccessResponse, sync.body).data[0].embedding) == 512
    sync35 = http("POST", f"{base}/v1.3/embed-v2", {"input_type": "multi_input",
                                                    "model_name": "marengo3.5",
                                                    "multi_input": {"input_text": "dog"}})
    parsed = strict(EmbeddingSuccessResponse, sync35.body)
    assert parsed.metadata is not None and parsed.metadata.input_type == "multi_input"


def test_errors_validate_flat_for_list_and_nested_for_embed_v2_with_nested_style(
    base: str, nested: Service
):
    for url in (base, nested.url):  # a list endpoint answers flat in either style
        bad_list = http("GET", f"{url}/v1.3/embed-v2/tasks?page_limit=99")
        assert bad_list.status == 400
        assert strict(FlatErrorResponse, bad_list.body).code == "parameter_invalid"
    bad_create = http("POST", f"{nested.url}/v1.3/embed-v2/tasks", {"model_name": "nope"})
    assert bad_create.status == 400
    assert strict(ErrorResponse, bad_create.body).error.code == "parameter_invalid"
    missing = http("GET", f"{nested.url}/v1.3/embed-v2/tasks/000000000000000000000000")
    assert missing.status == 404
    assert strict(ErrorResponse, missing.body).error.code == "resource_not_exist"
    bad_sync = http("POST", f"{nested.url}/v1.3/embed-v2", {"model_name": "nope"})
    assert bad_sync.status == 400
    assert strict(ErrorResponse, bad_sync.body).error.code == "parameter_invalid"
    flat_create = http("POST", f"{base}/v1.3/embed-v2/tasks", {"model_name": "nope"})
    assert flat_create.status == 400
    assert strict(FlatErrorResponse, flat_create.body).code == "parameter_invalid"
    with pytest.raises(pydantic.ValidationError):  # one shape is not the other
        strict(ErrorResponse, flat_create.body)
    with pytest.raises(pydantic.ValidationError):
        strict(FlatErrorResponse, bad_create.body)


def test_a_401_is_flat_in_either_style_as_the_sdk_types_it(base: str, nested: Service):
    for url in (base, nested.url):
        refused = http("POST", f"{url}/v1.3/embed-v2/tasks", v2_body(video_url("401")), key=None)
        assert refused.status == 401
        assert strict(FlatErrorResponse, refused.body).code == "api_key_invalid"


def test_v1_responses_parse_strictly(base: str):
    form = {"model_name": (None, "marengo3.0"), "video_url": (None, video_url("oas", "v1"))}
    with httpx.Client(base_url=f"{base}/v1.3", headers={"x-api-key": "k"}) as web:
        task_id = strict(V1Created, web.post("/embed/tasks", files=form).json()).id
        status = wait_done(lambda: _Status(web.get(f"/embed/tasks/{task_id}/status").json())).body
        retrieved = web.get(f"/embed/tasks/{task_id}").json()
        listed = web.get("/embed/tasks", params={"page": 1}).json()
        synced = web.post("/embed", files={"model_name": (None, "marengo3.0"), "text": (None, "dog")})
    assert strict(TasksStatusResponse, status).status == "ready"
    video = strict(TasksRetrieveResponse, retrieved).video_embedding
    assert video is not None and video.segments
    assert strict(V1List, listed).data
    text = strict(EmbeddingResponse, synced.json()).text_embedding
    assert text is not None and text.segments


class _Status:
    """Adapter so ``wait_done`` can poll raw JSON bodies."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.status = body["status"]
