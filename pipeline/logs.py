"""structlog, configured once per process: JSON lines (or a console renderer on a terminal) on
stdout, optionally also JSON to a size-rotated file; secrets redacted from every event.

Task context (job, item, Twelve Labs task id) is bound with ``structlog.contextvars`` by the
Celery signal handlers in ``workers/``, so every line a task writes carries it.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from pipeline.settings import Settings

REDACTED = "***"
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Never print this value (API keys, tokens, passwords in URLs)."""
    if value and len(value) >= 4:
        _secrets.add(value)


def redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _redact_event(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if not _secrets:
        return event
    for key, value in list(event.items()):
        if isinstance(value, str):
            event[key] = redact(value)
        elif value is not None and not isinstance(value, int | float | bool):
            event[key] = redact(str(value))
    return event


def _secret_values(settings: Settings) -> list[str | None]:
    from urllib.parse import urlsplit  # noqa: PLC0415  (only needed here)

    values = [
        settings.twelve_labs_api_key.get_secret_value() if settings.twelve_labs_api_key else None,
        settings.milvus_token.get_secret_value() if settings.milvus_token else None,
    ]
    if settings.flower_basic_auth:
        pairs = settings.flower_basic_auth.get_secret_value().split(",")
        values += [pair.partition(":")[2] for pair in pairs]
    target = settings.redis_target
    values.append(target.password if target.is_sentinel else urlsplit(target.url).password)
    if settings.redis_sentinel_password:
        values.append(settings.redis_sentinel_password.get_secret_value())
    return values


def configure_logging(settings: Settings, *, stream: Any = None) -> None:
    """Configure structlog and the stdlib root logger for this process."""
    for value in _secret_values(settings):
        register_secret(value)
    stream = stream or sys.stdout
    console = settings.log_format == "console" or (
        settings.log_format == "auto" and hasattr(stream, "isatty") and stream.isatty()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _redact_event,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(settings.log_level)
    root.addHandler(_handler(logging.StreamHandler(stream), shared, console))
    if settings.log_file:
        settings.log_file.parent.mkdir(parents=True, exist_ok=True)
        rotating = logging.handlers.RotatingFileHandler(
            settings.log_file, maxBytes=settings.log_max_bytes,
            backupCount=settings.log_backup_count, encoding="utf-8",
        )
        root.addHandler(_handler(rotating, shared, console=False))


def _handler(handler: logging.Handler, shared: list[Any], console: bool) -> logging.Handler:
    renderer: Any = (
        structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer()
    )
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    ))
    return handler


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
