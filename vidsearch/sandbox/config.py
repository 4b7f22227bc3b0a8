"""Every sandbox option in one dataclass, the argparse options that fill it, and runtime updates.

``build_parser(parser)`` adds the options to any ``argparse.ArgumentParser`` (the sandbox's own
``python -m vidsearch.sandbox`` and the ``vidsearch sandbox`` subcommand share it); ``from_args(ns)`` turns
the parsed namespace into a ``SandboxConfig``. ``SandboxConfig.update(mapping)`` applies the JSON
subset posted to ``POST /_sandbox/config``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_PORT = 8300

# Options that cannot change while the server runs (they shape the process, not its behaviour).
STARTUP_ONLY = frozenset({"host", "port", "catalog", "log_requests", "media_dir"})


@dataclass
class SandboxConfig:
    """Behaviour of one sandbox process. Rates are probabilities in [0, 1]; times are seconds."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    api_keys: list[str] = field(default_factory=list)
    speed: float = 1.0
    base_s: float = 5.0
    factor: float = 0.1
    min_duration_s: float = 20.0
    max_duration_s: float = 180.0
    catalog: str | None = None
    media_dir: str | None = None
    seed: int = 0
    create_rpm: int = 0
    embed_rpm: int = 0
    retry_after_s: float = 0.0
    requests_per_minute: int = 0
    requests_per_day: int = 0
    media_minutes_per_hour: float = 0.0
    media_window_s: float = 3600.0
    media_minutes_per_day: float = 0.0
    tokens_per_minute: int = 0
    tokens_per_day: int = 0
    no_retry_after: bool = False
    retention_days: float = 7.0
    rate_429: float = 0.0
    rate_5xx: float = 0.0
    slow_rate: float = 0.0
    slow_s: float = 2.0
    drop_after_create_rate: float = 0.0
    fail_rate: float = 0.0
    stuck_rate: float = 0.0
    error_style: str = "flat"
    log_requests: bool = False

    def processing_s(self, duration_s: float) -> float:
        """Seconds a task over ``duration_s`` of media stays ``processing``."""
        return (self.base_s + self.factor * duration_s) / max(self.speed, 1e-9)

    def public(self) -> dict[str, Any]:
        """The configuration as JSON (API keys masked)."""
        data = dataclasses.asdict(self)
        data["api_keys"] = [f"...{key[-4:]}" if len(key) > 4 else "..." for key in self.api_keys]
        return data

    def update(self, changes: Mapping[str, Any]) -> list[str]:
        """Apply ``changes`` (option name -> value); returns the names changed.

        Raises ``ValueError`` for an unknown or startup-only name or a value of the wrong type.
        """
        known = {f.name: f for f in dataclasses.fields(self)}
        staged: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known or name in STARTUP_ONLY:
                raise ValueError(f"option {name!r} cannot be set at run time")
            staged[name] = _coerce(name, getattr(self, name), value)
        for name, value in staged.items():
            setattr(self, name, value)
        _check(self)
        return sorted(staged)


def _coerce(name: str, current: Any, value: Any) -> Any:
    """``value`` converted to the type of ``current``; ``ValueError`` if it does not fit."""
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name} takes true or false")
        return value
    if isinstance(current, list):
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ValueError(f"{name} takes a list of non-empty strings")
        return list(value)
    if isinstance(current, str):
        if not isinstance(value, str):
            raise ValueError(f"{name} takes a string")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} takes a number")
    return type(current)(value)


def _check(config: SandboxConfig) -> None:
    """Reject values no sandbox can run with."""
    for name in ("rate_429", "rate_5xx", "slow_rate", "drop_after_create_rate", "fail_rate",
                 "stuck_rate"):
        if not 0.0 <= getattr(config, name) <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1")
    if config.speed <= 0:
        raise ValueError("speed must be positive")
    if not 0 < config.min_duration_s <= config.max_duration_s:
        raise ValueError("need 0 < min_duration_s <= max_duration_s")
    limits = ("create_rpm", "embed_rpm", "requests_per_minute", "requests_per_day",
              "media_minutes_per_hour", "media_minutes_per_day", "tokens_per_minute", "tokens_per_day")
    if any(getattr(config, name) < 0 for name in limits):
        raise ValueError("rate limits must be >= 0")
    if config.media_window_s <= 0 or config.retention_days <= 0:
        raise ValueError("media_window_s and retention_days must be positive")
    if config.error_style not in ("flat", "nested"):
        raise ValueError("error_style is flat or nested")


def build_parser(parser: argparse.ArgumentParser) -> None:
    """Add every sandbox option, with its default and help, to ``parser``."""
    _add_server_options(parser)
    _add_lifecycle_options(parser)
    _add_quota_options(parser)
    _add_fault_options(parser)


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("server")
    group.add_argument("--host", default="127.0.0.1", help="interface to listen on (default %(default)s)")
    group.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (default %(default)s)")
    group.add_argument(
        "--api-key", dest="api_keys", action="append", default=[], metavar="KEY",
        help="an accepted x-api-key; repeat for several. Without it any non-empty key is accepted",
    )
    group.add_argument(
        "--error-style", choices=("flat", "nested"), default="flat",
        help="error body shape: flat {code, message} as the live API and the 401 schema use "
        "(default), or nested {error: {code, message}} as the OpenAPI file shows for embed-v2",
    )
    group.add_argument("--log-requests", action="store_true", help="log one line per request")


def _add_lifecycle_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("task lifecycle and content")
    group.add_argument(
        "--speed", type=float, default=1.0,
        help="divides every processing time (50 makes tests finish in seconds; default %(default)s)",
    )
    group.add_argument("--base-s", type=float, default=5.0,
                       help="fixed processing seconds per task (default %(default)s)")
    group.add_argument("--factor", type=float, default=0.1,
                       help="processing seconds per second of video (default %(default)s)")
    group.add_argument("--min-duration-s", type=float, default=20.0,
                       help="shortest duration a URL hashes to (default %(default)s)")
    group.add_argument("--max-duration-s", type=float, default=180.0,
                       help="longest duration a URL hashes to (default %(default)s)")
    group.add_argument(
        "--catalog", metavar="FILE", default=None,
        help="JSON or YAML file: url -> {duration, title, scenes: [{start, end, words}], error}",
    )
    group.add_argument(
        "--media-dir", metavar="DIR", default=None,
        help="where the catalog's video files are rendered and kept (default: "
        "{tmp}/vidsearch-sandbox-media)",
    )
    group.add_argument("--seed", type=int, default=0,
                       help="seed of every fault roll and task id (default %(default)s)")


def _add_quota_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("quotas")
    group.add_argument("--create-rpm", type=int, default=0,
                       help="task creations per minute, a global token bucket (0 = unlimited)")
    group.add_argument("--embed-rpm", type=int, default=0,
                       help="sync embeds (POST embed-v2, POST embed) per minute (0 = unlimited)")
    group.add_argument(
        "--retry-after-s", type=float, default=0.0,
        help="Retry-After sent with a 429 (0 = time until the next token; injected 429s use 1)",
    )
    _add_org_limit_options(parser)


def _add_org_limit_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "organisation limits (one counter shared by every embedding endpoint, v1 and v2, sync and "
        "async; 0 = unlimited)")
    group.add_argument("--requests-per-minute", type=int, default=0, help="embedding requests per minute")
    group.add_argument("--requests-per-day", type=int, default=0, help="embedding requests per UTC day")
    group.add_argument("--tokens-per-minute", type=int, default=0,
                       help="Marengo 3.5 input tokens per minute (organisation)")
    group.add_argument("--tokens-per-day", type=int, default=0,
                       help="Marengo 3.5 input tokens per UTC day (organisation)")
    group.add_argument("--media-minutes-per-hour", type=float, default=0.0,
                       help="minutes of video/audio per --media-window-s")
    group.add_argument("--media-window-s", type=float, default=3600.0,
                       help="the media-minutes window (default %(default)s: an hour, as documented; "
                       "shorter for benchmarks)")
    group.add_argument("--media-minutes-per-day", type=float, default=0.0,
                       help="minutes of video/audio per UTC day")
    group.add_argument("--no-retry-after", action="store_true",
                       help="answer an organisation-limit 429 without Retry-After (X-Ratelimit-Reset only)")
    group.add_argument("--retention-days", type=float, default=7.0,
                       help="days a task's results are kept, and the task list's default window "
                       "(default %(default)s)")


def _add_fault_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("injected faults (probabilities 0..1, rolled from --seed)")
    group.add_argument("--rate-429", type=float, default=0.0,
                       help="share of API requests answered 429 before any work")
    group.add_argument("--rate-5xx", type=float, default=0.0,
                       help="share of API requests answered 500/502/503/504 before any work")
    group.add_argument("--slow-rate", type=float, default=0.0,
                       help="share of API requests delayed by --slow-s")
    group.add_argument("--slow-s", type=float, default=2.0,
                       help="delay of a slow response in seconds (default %(default)s)")
    group.add_argument(
        "--drop-after-create-rate", type=float, default=0.0,
        help="share of task creations whose connection is dropped after the task was created",
    )
    group.add_argument("--fail-rate", type=float, default=0.0,
                       help="share of tasks that end failed")
    group.add_argument("--stuck-rate", type=float, default=0.0,
                       help="share of tasks that stay processing forever")


def from_args(ns: argparse.Namespace) -> SandboxConfig:
    """A checked ``SandboxConfig`` from a namespace that ``build_parser`` filled."""
    names = {f.name for f in dataclasses.fields(SandboxConfig)}
    values = {name: getattr(ns, name) for name in names if hasattr(ns, name)}
    values["api_keys"] = list(values.get("api_keys") or [])
    config = SandboxConfig(**values)
    _check(config)
    return config
