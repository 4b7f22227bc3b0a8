"""``vidsearch serve``: the HTTP API and the web page, an ASGI app (FastAPI on uvicorn).

FastAPI rather than bare Starlette: the request and response models are pydantic (already the
settings' library), so the OpenAPI document at ``/openapi.json`` is generated from the very models
that validate requests and shape answers, and cannot drift from them; the tests validate every
response against it. FastAPI runs plain ``def`` handlers and dependencies in a thread pool, which
keeps every blocking Redis and Milvus call off the event loop. Handlers hold no logic: they parse,
call one domain object of ``pipeline/`` and shape the answer.

Modules: ``app`` (factory), ``context`` (clients built once), ``security`` (API keys, per-key
rate), ``limits`` (body size), ``problems`` (RFC 9457 answers), ``schemas`` (pydantic models),
``routes_*`` (handlers), ``openapi`` (the document), ``serve`` (uvicorn), ``static/`` (the page).
"""
