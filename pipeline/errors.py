"""vidsearch's exceptions: one root, transient and permanent kept apart.

Every exception vidsearch raises is defined here, except three that belong to another world:
``vidsearch.api.problems.ProblemError`` is an HTTP answer (a Starlette ``HTTPException`` that FastAPI
turns into problem JSON), so it stays with the API; ``vidsearch.sandbox`` (``CatalogError``,
``ApiFailure``) is a separate program, the Twelve Labs stand-in, that imports nothing of ours; and
``pipeline.ingest.urls.InvalidUrl`` is a ``ValueError`` that the manifest reader turns into a
rejected line and that never travels past it.

    VidsearchError                  root of everything vidsearch raises on purpose
    +-- ConfigError                 settings that cannot work (bad file, bad value)
    |   +-- StackLockedError        another ``vidsearch up`` holds the data directory
    |   +-- PortInUseError          a port the embedded stack needs is taken
    |   +-- UnsafeSettingsError     Redis or Celery set up to lose work (``redis_checks.py``)
    +-- ManifestError               a manifest that cannot be read at all (missing, no url column)
    +-- BadInputError               a request that cannot be served as given (CLI exit 2)
    |   +-- QueryError              a search query that is malformed or names nothing
    +-- TransientError              worth retrying: 429, 5xx, timeouts, dropped connections
    |   +-- RateLimitedError        429, carries the server's Retry-After in seconds
    |   +-- OutcomeUnknownError     the request may have reached Twelve Labs, no answer came back
    +-- PermanentError              retrying cannot help
    |   +-- ApiRejectedError        Twelve Labs 4xx, carries the API's code and message
    +-- StoreError                  Milvus refused or is unreachable
    |   +-- SchemaMismatchError     a collection differs from what the settings ask for
    |   +-- StoreUnavailableError   (also Transient) Milvus cannot be reached or a call ran out of time
    |   +-- StoreRejectedError      a reachable Milvus refused a request
    |   +-- InvalidSegmentError     (also Permanent) a row Milvus can never take (dead-lettered)
    |       +-- DimensionMismatchError  a vector of the wrong dimension
    +-- ArchiveError                the embedding archive cannot be read or written (a bad file, bad URL)
    |   +-- ArchiveUnavailableError (also Transient) its directory or object storage refused or is down
    +-- ServiceError                an embedded server did not start or answer in time
    +-- StopRequestedError          Ctrl-C or SIGTERM while the embedded stack was starting
    +-- LeaseLostError              a lock's lease ran out and another holder owns it now
    +-- NotReplicatedError          no Redis replica acknowledged a create mark in time (nothing sent)
    +-- AnalyticsError              corpus analytics on bad input (no videos, k or threshold out of range)
    +-- PosterError                 a poster frame cannot be had (unreachable, not a video, a limit hit)

A task that ends ``failed`` or outlives its deadline is not an exception: the poller records it as
the item's failure reason (``JobStore.fail``). Vendor exceptions (twelvelabs and httpx, pymilvus and
grpc, redis, pyarrow) are translated at the module that calls the vendor and never travel further up.
"""

from __future__ import annotations

from pathlib import Path


class VidsearchError(Exception):
    """Root of vidsearch's own exceptions."""


class ConfigError(VidsearchError):
    """Settings that cannot work."""


class UnsafeSettingsError(ConfigError):
    """A Redis or Celery setting that can lose keys or messages; the process refuses to start."""


class StackLockedError(ConfigError):
    """Another stack holds the data directory."""

    def __init__(self, data_dir: Path, pid: int | None, data_dir_env: str) -> None:
        who = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"another `vidsearch up` ({who}) is already running on {data_dir}; stop it first, or set "
            f"{data_dir_env} to another directory"
        )
        self.pid = pid


class PortInUseError(ConfigError):
    """A port the stack needs is taken by something else."""


class ManifestError(VidsearchError):
    """A manifest that cannot be read at all."""


class BadInputError(VidsearchError):
    """A request that cannot be served as given; the message says what to change."""


class QueryError(BadInputError):
    """A search query that is malformed or names nothing to search for."""


class TransientError(VidsearchError):
    """A failure that a later attempt may not meet."""


class RateLimitedError(TransientError):
    """Twelve Labs answered 429."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class OutcomeUnknownError(TransientError):
    """The request may have reached Twelve Labs, but no answer came back."""


class PermanentError(VidsearchError):
    """A failure that retrying cannot fix."""


class ApiRejectedError(PermanentError):
    """Twelve Labs rejected a request (4xx other than 429)."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(f"Twelve Labs {status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code
        self.api_message = message


class StoreError(VidsearchError):
    """Milvus refused a request or could not be reached."""


class SchemaMismatchError(StoreError):
    """An existing collection does not match the settings."""


class StoreUnavailableError(StoreError, TransientError):
    """Milvus could not be reached, or a call ran out of its time budget."""


class StoreRejectedError(StoreError):
    """A reachable Milvus refused the request."""


class InvalidSegmentError(StoreError, PermanentError):
    """A segment that can never be written to its collection (dead-letter it)."""


class DimensionMismatchError(InvalidSegmentError):
    """A segment's vector dimension differs from its collection's."""


class ArchiveError(VidsearchError):
    """The embedding archive cannot be read or written (``pipeline/archive``)."""


class ArchiveUnavailableError(ArchiveError, TransientError):
    """The archive's directory or object storage cannot be written or reached right now."""


class ServiceError(VidsearchError):
    """A server did not start or did not answer in time."""


class StopRequestedError(VidsearchError):
    """Ctrl-C or SIGTERM arrived while the stack was starting."""


class LeaseLostError(VidsearchError):
    """This process's lock expired (it was paused or too slow) and another holder took it over."""


class NotReplicatedError(VidsearchError):
    """Fewer Redis replicas than ``redis_wait_replicas`` acknowledged a create mark within
    ``redis_wait_timeout_ms``: a failover could lose it, so the paid create is not sent (yet)."""


class AnalyticsError(VidsearchError):
    """Corpus analytics cannot run on this input (no videos, k or a threshold out of range)."""


class PosterError(VidsearchError):
    """A poster frame cannot be had (unreachable, not a video, over a byte or time limit): the
    poster route answers its placeholder instead."""
