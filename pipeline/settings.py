"""Every vidsearch setting, typed and validated, loaded once per process.

Precedence: environment variables > TOML file (``VIDSEARCH_CONFIG`` or ``--config``) > defaults.
Environment names are ``VIDSEARCH_<FIELD>`` except the two that belong to Twelve Labs:
``TWELVE_LABS_API_KEY`` and the SDK's own ``TWELVELABS_BASE_URL``.
Nothing else in vidsearch reads ``os.environ`` for configuration.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from pipeline.errors import ConfigError

ModelName = Literal["marengo3.0", "marengo3.5"]
EmbeddingOption = Literal["visual", "audio", "transcription"]
EmbeddingScope = Literal["clip", "asset"]

CONFIG_ENV = "VIDSEARCH_CONFIG"

SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_DEFAULT_PORT = 26379
SENTINEL_URL_SHAPE = "redis+sentinel://[:password@]host:port[,host:port...]/service_name[/db]"


@dataclass(frozen=True)
class RedisTarget:
    """``redis_url`` parsed: a plain ``redis://`` (``rediss://``, ``unix://``) URL that redis-py reads
    itself, or a Sentinel set: where the Sentinels listen, the service they watch, the database and
    the data password (the Sentinels' own password is ``redis_sentinel_password``)."""

    url: str
    sentinels: tuple[tuple[str, int], ...] = ()
    service_name: str = ""
    db: int = 0
    password: str | None = None

    @property
    def is_sentinel(self) -> bool:
        return bool(self.sentinels)

    @property
    def shown(self) -> str:
        """Where it points, without a password (for messages)."""
        if not self.is_sentinel:
            return _shown(self.url)
        hosts = ",".join(f"{host}:{port}" for host, port in self.sentinels)
        return f"{SENTINEL_SCHEME}://{hosts}/{self.service_name}/{self.db}"


def parse_redis_url(url: str) -> RedisTarget:
    """``redis_url`` as a ``RedisTarget``; ``ValueError`` names what is wrong with a malformed one."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"redis_url {_shown(url)!r} has no scheme: use redis://... or {SENTINEL_URL_SHAPE}")
    if scheme != SENTINEL_SCHEME:
        if scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"redis_url scheme {scheme!r} is not redis, rediss, unix or {SENTINEL_SCHEME}")
        return RedisTarget(url)
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    password = _sentinel_password(userinfo) if at else None
    parts = path.split("/") if path else []
    if not parts or not parts[0]:
        raise ValueError(f"redis_url names no Sentinel service: the shape is {SENTINEL_URL_SHAPE}")
    if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise ValueError(f"redis_url path {path!r} must be service_name or service_name/db (db a number)")
    db = int(parts[1]) if len(parts) == 2 else 0
    return RedisTarget(url, _sentinel_hosts(hosts), parts[0], db, password)


def _shown(url: str) -> str:
    """``url`` without its password, for error messages."""
    head, at, tail = url.rpartition("@")
    return f"{head.rpartition(':')[0]}:***@{tail}" if at else url


def _sentinel_password(userinfo: str) -> str | None:
    user, colon, password = userinfo.partition(":")
    if not colon or user:
        raise ValueError("redis_url: a Sentinel URL takes a password only, as ':password@'")
    return password or None


def _sentinel_hosts(hosts: str) -> tuple[tuple[str, int], ...]:
    if not hosts:
        raise ValueError(f"redis_url lists no Sentinel: the shape is {SENTINEL_URL_SHAPE}")
    found = []
    for entry in hosts.split(","):
        host, colon, port = entry.strip().rpartition(":")
        if not colon:
            host, port = port, str(SENTINEL_DEFAULT_PORT)
        if not host:
            raise ValueError(f"redis_url: Sentinel {entry!r} has no host")
        if not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"redis_url: Sentinel {entry!r} has no valid port (1-65535)")
        found.append((host.strip("[]"), int(port)))
    return tuple(found)

API_KEY_ENTRY = re.compile(r"^(?P<name>[A-Za-z0-9_.-]{1,64}):(?P<role>read|admin):(?P<digest>[0-9a-f]{64})$")
"""One ``api_keys`` entry: ``name:role:sha256-hex`` (the HTTP API's keys, ``vidsearch.api.keys``)."""
API_KEY_SHAPE = (
    "an api_keys entry must be 'name:role:sha256-hex' with role read or admin "
    "(make one with `vidsearch api-key`)"
)


def _api_key_name(entry: str) -> str:
    match = API_KEY_ENTRY.match(entry.strip())
    if match is None:
        raise ValueError(API_KEY_SHAPE)
    return match["name"]


class Settings(BaseSettings):
    """The one settings model. Units are in the names."""

    model_config = SettingsConfigDict(
        env_prefix="VIDSEARCH_", extra="forbid", validate_default=True, populate_by_name=True,
        hide_input_in_errors=True,  # a redis_url carries its password: errors never echo a value
    )

    # --- connections -------------------------------------------------------------------------
    redis_url: str = Field(
        "redis://127.0.0.1:6390/0", description="Redis: broker, state, buffer (6390: the embedded stack); "
        f"a Sentinel set: {SENTINEL_URL_SHAPE}"
    )
    redis_sentinel_password: SecretStr | None = Field(
        None, description="Password of the Sentinels themselves (their requirepass); the data password "
        "is the one in redis_url"
    )
    redis_wait_replicas: int = Field(
        1, ge=0, description="With a Sentinel redis_url: replicas that must acknowledge an item's create "
        "mark (WAIT) before its paid create is sent (0: do not wait; a plain redis_url never waits)"
    )
    redis_wait_timeout_ms: int = Field(
        1000, ge=1, description="Longest that WAIT blocks; fewer acknowledgements defer the create"
    )
    redis_prefix: str = Field("vs", description="Prefix of every Redis key vidsearch writes")
    milvus_uri: str = Field(
        "http://127.0.0.1:19530", description="Milvus URI (Lite server, standalone, Zilliz)"
    )
    milvus_token: SecretStr | None = Field(None, description="Milvus token (user:password or API key)")
    twelve_labs_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("TWELVE_LABS_API_KEY", "twelve_labs_api_key"),
        description="Twelve Labs API key; unset means the local sandbox",
    )
    twelvelabs_base_url: str | None = Field(
        None,
        validation_alias=AliasChoices("TWELVELABS_BASE_URL", "twelvelabs_base_url"),
        description="Twelve Labs base URL (the SDK's own variable); set it to use the sandbox",
    )
    data_dir: Path = Field(Path(".vidsearch"), description="Where the embedded stack keeps its data")
    milvus_engine: Literal["lite", "server"] = Field(
        "lite", description="Milvus the embedded stack runs: lite (Milvus Lite) or server (Milvus standalone)"
    )

    # --- embedding -----------------------------------------------------------------------------
    model: ModelName = Field("marengo3.0", description="Marengo model for videos and queries")
    embedding_dimension: int | None = Field(
        None, description="Matryoshka dimension (marengo3.5 only: 128, 256, 512)"
    )
    segmentation: Literal["fixed", "dynamic"] = Field("fixed", description="Segmentation strategy")
    segment_duration_s: int = Field(6, ge=2, le=10, description="Fixed segment length")
    min_segment_duration_s: int = Field(4, ge=2, le=5, description="Dynamic minimum segment length")
    embedding_options: list[EmbeddingOption] = Field(
        ["visual", "audio"], min_length=1, description="Embedding options to request"
    )
    embedding_scopes: list[EmbeddingScope] = Field(
        ["clip", "asset"], min_length=1, description="Embedding scopes to request"
    )
    asset_scope_max_duration_s: float = Field(
        30.0, ge=0, description="Request the asset scope (when embedding_scopes has it) only for "
        "videos whose manifest duration_s is at most this; a video without duration_s gets every "
        "scope; 0: every video. Not part of the item key (docs/search.md)",
    )

    # --- manifests -----------------------------------------------------------------------------
    category_pattern: str = Field(r"^[a-z0-9][a-z0-9_-]{0,63}$", description="Valid categories")
    max_url_length: int = Field(2048, ge=16, description="Longest URL accepted")
    allow_private_hosts: bool = Field(False, description="Accept loopback/private/link-local hosts")

    # --- quota and admission ---------------------------------------------------------------------
    rate_limit_per_min: float = Field(60.0, gt=0, description="Global Twelve Labs requests per minute")
    rate_burst: int = Field(10, ge=1, description="Token bucket capacity")
    rate_limit_per_day: int = Field(
        0, ge=0, description="Twelve Labs embedding requests per UTC day (the plan's; 0: none known)"
    )
    media_minutes_per_hour: float = Field(
        0.0, ge=0, description="Twelve Labs minutes of media per media_window_s (the plan's; 0: none known)"
    )
    media_window_s: float = Field(
        3600.0, gt=0, description="The media-minutes window (an hour; X-Ratelimit-Reset overrides its end)"
    )
    media_minutes_per_day: float = Field(
        0.0, ge=0, description="Twelve Labs minutes of media per UTC day (the plan's; 0: none known)"
    )
    daily_media_minutes_budget: float = Field(
        0.0, ge=0, description="Most minutes of media all jobs may send per UTC day (0: no budget)"
    )
    job_max_media_minutes: float = Field(
        0.0, ge=0, description="Default budget of one job in minutes of media (submit/backfill "
        "--max-minutes; 0: none)"
    )
    default_media_minutes: float = Field(
        5.0, gt=0, description="Media minutes assumed for a video with no duration_s column and no "
        "finished task to learn from"
    )
    price_per_media_minute: float = Field(
        0.0, ge=0, description="Price of one minute of media, for the spend status reports (0: not shown)"
    )
    max_in_flight: int = Field(50, ge=1, description="Cap on Twelve Labs tasks in flight")
    admit_batch: int = Field(200, ge=1, description="Most items admitted per tick")
    tick_interval_s: float = Field(1.0, gt=0, le=60, description="Scheduler tick period")
    tick_stall_intervals: int = Field(
        5, ge=2, description="Tick intervals without a tick before status and submit --wait warn"
    )

    # --- Twelve Labs calls ------------------------------------------------------------------------
    api_timeout_s: float = Field(30.0, gt=0, description="Timeout of one Twelve Labs HTTP call")
    retry_initial_s: float = Field(0.5, gt=0, description="First backoff of a retried call")
    retry_max_s: float = Field(10.0, gt=0, description="Cap on one backoff (Retry-After above it waits)")
    retry_total_s: float = Field(60.0, gt=0, description="Total bound on one call with its retries")
    create_lease_s: float = Field(120.0, gt=0, description="A create not finished by then is re-driven")
    max_item_attempts: int = Field(3, ge=1, description="Create attempts before an item fails")
    resubmit_transient_failures: bool = Field(
        True, description="A re-submit or backfill queues again items whose retries ran out"
    )

    # --- polling -----------------------------------------------------------------------------------
    poll_initial_s: float = Field(2.0, gt=0, description="First poll delay without history")
    poll_max_s: float = Field(30.0, gt=0, description="Cap on the poll interval")
    poll_factor: float = Field(1.6, ge=1.0, description="Growth of the poll interval")
    poll_lease_s: float = Field(60.0, gt=0, description="A claimed poll not answered by then is retried")
    task_deadline_s: float = Field(3 * 3600.0, gt=0, description="Fail a task processing longer")

    # --- writer ------------------------------------------------------------------------------------
    writer_batch_rows: int = Field(2000, ge=1, description="Most rows in one Milvus upsert")
    writer_batch_bytes: int = Field(32 * 2**20, ge=2**16, description="Most bytes in one upsert")
    writer_max_wait_s: float = Field(1.0, ge=0, description="Longest a segment waits for a batch")
    writer_claim_idle_s: float = Field(120.0, gt=0, description="Reclaim a dead writer's entries after")
    writer_max_deliveries: int = Field(5, ge=1, description="Deliveries before dead-lettering")
    dead_letter_max_entries: int = Field(
        10000, ge=1, description="Dead letters kept (the oldest beyond are dropped and counted)"
    )
    writer_flush_interval_s: float = Field(
        10.0, ge=0, description="During a long drain, flush at most this often (a drain flushes at its end)"
    )
    writer_drain_s: float = Field(20.0, gt=0, description="Longest one writing task drains")

    # --- embedding archive (docs/archive.md) -------------------------------------------------------
    archive_url: str | None = Field(
        None,
        description="Where the writer archives every segment as Parquet: a directory, file:///dir or "
        "s3://bucket/prefix; unset: data_dir/archive; empty: no archive",
    )
    archive_s3_endpoint: str | None = Field(
        None, description="S3-compatible endpoint of an s3:// archive, e.g. http://127.0.0.1:9000 "
        "(unset: AWS)"
    )
    archive_s3_region: str | None = Field(None, description="Region of an s3:// archive (unset: us-east-1)")
    archive_s3_access_key: str | None = Field(
        None, description="Access key id of an s3:// archive (unset: the AWS SDK's usual sources)"
    )
    archive_s3_secret_key: SecretStr | None = Field(None, description="Secret key of an s3:// archive")
    archive_timeout_s: float = Field(
        10.0, gt=0, description="Bound on one archive request to object storage (with its retries: 3x)"
    )

    # --- Milvus ------------------------------------------------------------------------------------
    collection_prefix: str = Field("vidsearch", description="Collection name prefix")
    num_partitions: int = Field(16, ge=1, le=1024, description="Partition-key partitions")
    index_type: str = Field("HNSW", description="Vector index type")
    index_metric: Literal["COSINE", "IP", "L2"] = Field("COSINE", description="Vector metric")
    index_params: dict[str, Any] = Field(
        {"M": 16, "efConstruction": 200}, description="Index build parameters"
    )
    search_params: dict[str, Any] = Field({"ef": 64}, description="Index search parameters")
    collection_search_params: dict[str, dict[str, Any]] = Field(
        {}, description="Search parameters per collection, over search_params (`vidsearch index tune`)"
    )
    search_consistency: Literal["Strong", "Bounded", "Session", "Eventually"] = Field(
        "Bounded", description="Search consistency (Bounded: may miss the last seconds of writes)"
    )

    # --- restore (``vidsearch restore``, ``vidsearch archive export``) ---------------------------
    restore_method: Literal["auto", "bulk", "upsert"] = Field(
        "auto", description="How restore loads a collection: Milvus bulk import (a Milvus server), "
        "batched upserts (any Milvus), or auto (bulk import on a server, upserts on Milvus Lite)"
    )
    restore_batch_rows: int = Field(
        2000, ge=1, description="Rows per upsert (and per archive read) of a restore or an export"
    )
    restore_import_rows: int = Field(
        200_000, ge=1, description="Rows per bulk-import file (one import task each)"
    )
    restore_import_dir: str = Field(
        "", description="Where restore writes bulk-import Parquet files, a directory the Milvus "
        "server reads at the same path (its local storage or a shared mount); empty: "
        "<data_dir>/restore-import (a server on this host)"
    )
    restore_import_timeout_s: float = Field(
        1800.0, gt=0, description="Longest one bulk-import task may take before restore gives up"
    )

    # --- search ------------------------------------------------------------------------------------
    query_cache_ttl_s: int = Field(7 * 86400, ge=0, description="Query embedding cache lifetime")
    result_cache_ttl_s: int = Field(3600, ge=0, description="Search result cache lifetime (0: off)")
    result_cache_max_entries: int = Field(10000, ge=0, description="Most cached search results")
    search_fusion: Literal["client", "weighted", "rrf"] = Field(
        "client", description="How query parts are fused: client-side, Milvus WeightedRanker or RRFRanker"
    )
    moment_tolerance: float = Field(
        0.5, ge=0, le=1, description="Share of a video's best-to-lowest segment score gap a moment may drop"
    )
    search_min_score: float = Field(
        0.25, ge=-1, le=1, description="Relevance floor: hits scored below it are not results "
        "(a request may lift it: --min-score, min_score; -1 shows every hit). Chosen from the "
        "score distributions of bench/quality.py (docs/search.md)"
    )
    moment_window_segments: int = Field(
        64, ge=1, le=100, description="A video's best segments that set its moment floor; "
        "the search reads that many rows per option of each candidate video, whatever its length"
    )
    search_collapse_duplicates: bool = Field(
        False, description="Search keeps only the best-ranked video of each duplicate group "
        "(a request may override it: --collapse-duplicates, collapse_duplicates)"
    )
    duplicate_threshold: float = Field(
        0.9, gt=0, le=1, description="Cosine similarity from which two videos are duplicates "
        "(`vidsearch analytics duplicates`, search collapsing)"
    )

    # --- HTTP API (`vidsearch serve`) -------------------------------------------------------------
    api_port: int = Field(8080, ge=1, le=65535, description="Port of `vidsearch serve` (and `vidsearch up`)")
    api_keys: list[str] = Field(
        [], description="API keys as 'name:role:sha256-hex' (role read or admin; `vidsearch api-key` "
        "makes one); none: loopback only"
    )
    api_max_body_bytes: int = Field(65536, ge=1024, description="Largest JSON request body")
    api_max_query_chars: int = Field(500, ge=1, description="Longest search text")
    api_max_top_k: int = Field(100, ge=1, le=1000, description="Largest top_k a request may ask for")
    api_max_manifest_bytes: int = Field(
        64 * 2**20, ge=1024, description="Largest manifest uploaded to POST /v1/jobs"
    )
    api_workers: int = Field(
        1, ge=1, le=64, description="Server processes of `vidsearch serve` (--workers overrides it)"
    )
    api_search_slots: int = Field(
        16, ge=1, le=256, description="Uncached searches one server process runs at once (the rest wait)"
    )
    api_queue_deadline_s: float = Field(
        10.0, gt=0, description="Longest a search waits for a slot; later it is refused (503, Retry-After)"
    )
    api_rate_per_min: float = Field(600.0, gt=0, description="Requests per minute per API key")
    api_rate_burst: int = Field(60, ge=1, description="Per-key token bucket capacity")
    api_manifest_dir: Path | None = Field(
        None, description="POST /v1/jobs may name server-side manifests under this directory (unset: off)"
    )
    poster_max_bytes: int = Field(
        32 * 2**20, ge=65536, description="Most bytes of a video one poster frame may read (GET /v1/posters)"
    )
    poster_timeout_s: float = Field(10.0, gt=0, description="Longest one poster frame may take")
    poster_concurrency: int = Field(2, ge=1, description="Poster fetches one server runs at once")

    # --- Celery ------------------------------------------------------------------------------------
    visibility_timeout_s: int = Field(
        3600, ge=60, description="Redis broker visibility timeout (must exceed every lease, poll "
        "interval, retry bound and drain: checked at start)"
    )
    worker_soft_shutdown_s: float = Field(
        30.0, gt=0, description="Celery's soft shutdown: seconds running tasks get to finish at a cold "
        "shutdown before their messages go back to the queue"
    )
    flower_port: int = Field(5555, ge=1, le=65535, description="Port of Flower, started by `vidsearch up`")
    flower_basic_auth: SecretStr | None = Field(
        None, description="Flower basic auth 'user:pass' (comma-separate several); unset: no auth, API off"
    )

    # --- logs and metrics ----------------------------------------------------------------------
    progress_interval_s: float = Field(
        10.0, gt=0, description="Seconds between progress lines of --wait when not on a terminal"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level")
    log_format: Literal["auto", "json", "console"] = Field("auto", description="Console in a tty")
    log_file: Path | None = Field(None, description="Also write JSON logs to this rotating file")
    log_max_bytes: int = Field(10 * 2**20, ge=1024, description="Rotate the log file at this size")
    log_backup_count: int = Field(5, ge=0, description="Rotated log files kept")
    metrics_port: int | None = Field(None, description="Prometheus metrics port (unset: off)")

    @field_validator("api_keys")
    @classmethod
    def _api_keys(cls, value: list[str]) -> list[str]:
        names = [_api_key_name(entry) for entry in value]
        if len(set(names)) != len(names):
            raise ValueError("api_keys names must be unique")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        parse_redis_url(value)
        return value

    @field_validator("embedding_options", "embedding_scopes")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.model == "marengo3.0" and self.embedding_dimension is not None:
            raise ValueError("embedding_dimension applies to marengo3.5 only")
        if self.model == "marengo3.5" and "transcription" in self.embedding_options:
            raise ValueError("the transcription option exists on marengo3.0 only")
        if self.poll_initial_s > self.poll_max_s:
            raise ValueError("poll_initial_s must not exceed poll_max_s")
        waits = self.redis_wait_replicas > 0 and self.redis_url.startswith("redis+sentinel:")
        if waits and self.redis_wait_timeout_ms >= self.create_lease_s * 1000 / 2:
            # a create is sent only if its mark's answer (WAIT included) came within half the lease
            raise ValueError("redis_wait_timeout_ms must stay under half of create_lease_s")
        return self

    @property
    def dimension(self) -> int:
        return self.embedding_dimension or 512

    @property
    def redis_target(self) -> RedisTarget:
        """``redis_url`` parsed (validated when the settings were built)."""
        return parse_redis_url(self.redis_url)

    @property
    def uses_sandbox(self) -> bool:
        return self.twelve_labs_api_key is None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"settings file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from exc
    section = data.get("vidsearch", data)
    if not isinstance(section, dict):
        raise ConfigError(f"settings file {path}: [vidsearch] must be a table")
    return section


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build settings: defaults, then the TOML file, then the environment, then overrides."""
    path = config_file or os.environ.get(CONFIG_ENV)
    file_values = _read_toml(Path(path)) if path else {}
    from_file = {k: v for k, v in file_values.items() if _env_name(k) not in os.environ}
    unknown = set(from_file) - set(Settings.model_fields)
    if unknown:
        raise ConfigError(f"unknown settings in {path}: {', '.join(sorted(unknown))}")
    try:
        return Settings(**from_file, **overrides)
    except ValueError as exc:
        raise ConfigError(f"invalid settings: {exc}") from exc


def _env_name(field: str) -> str:
    if field == "twelve_labs_api_key":
        return "TWELVE_LABS_API_KEY"
    if field == "twelvelabs_base_url":
        return "TWELVELABS_BASE_URL"
    return f"VIDSEARCH_{field.upper()}"


def env_name(field: str) -> str:
    """The environment variable that sets ``field`` (used by the settings table and the CLI)."""
    return _env_name(field)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, loaded once."""
    return load_settings()
