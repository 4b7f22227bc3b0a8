"""vidsearch's exceptions: one root, transient and permanent kept apart.

    VidsearchError                  root of everything vidsearch raises on purpose
    +-- ConfigError                 settings that cannot work (bad file, bad value)
    +-- ManifestError               a manifest that cannot be read at all (missing, no url column)
    +-- BadInputError               a request that cannot be served as given (CLI exit 2)
    |   +-- QueryError              (query.py) a search query that is malformed or names nothing
    +-- TransientError              worth retrying: 429, 5xx, timeouts, dropped connections
    |   +-- RateLimitedError        429, carries the server's Retry-After in seconds
    |   +-- OutcomeUnknownError     (twelvelabs.py) the request may have reached Twelve Labs
    +-- PermanentError              retrying cannot help
    |   +-- ApiRejectedError        Twelve Labs 4xx, carries the API's code and message
    +-- StoreError                  Milvus refused or is unreachable
    |   +-- SchemaMismatchError     a collection differs from what the settings ask for
    |   +-- StoreUnavailableError   (store.py; also Transient) Milvus cannot be reached
    |   +-- StoreRejectedError      (store.py) Milvus refused a request
    |   +-- InvalidSegmentError     (store.py; also Permanent) a row Milvus can never take
    |       +-- DimensionMismatchError  a vector of the wrong dimension (dead-lettered)
    +-- ServiceError                (vidsearch/stack/services.py) an embedded server did not start
    +-- LeaseLostError              a lock's lease ran out and another holder owns it now
    +-- AnalyticsError              corpus analytics on bad input (no videos, k or threshold out of range)

A task that ends ``failed`` or outlives its deadline is not an exception: the poller records it as
the item's failure reason (``JobStore.fail``). Vendor exceptions (twelvelabs, pymilvus, redis) are
translated at the module that calls the vendor and never travel further up.
"""

from __future__ import annotations


class VidsearchError(Exception):
    """Root of vidsearch's own exceptions."""


class ConfigError(VidsearchError):
    """Settings that cannot work."""


class ManifestError(VidsearchError):
    """A manifest that cannot be read at all."""


class BadInputError(VidsearchError):
    """A request that cannot be served as given; the message says what to change."""


class TransientError(VidsearchError):
    """A failure that a later attempt may not meet."""


class RateLimitedError(TransientError):
    """Twelve Labs answered 429."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentError(VidsearchError):
    """A failure that retrying cannot fix."""


class ApiRejectedError(PermanentError):
    """Twelve Labs rejected a request (4xx other than 429)."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(f"Twelve Labs {status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code
        self.api_message = message


class LeaseLostError(VidsearchError):
    """This process's lock expired (it was paused or too slow) and another holder took it over."""


class StoreError(VidsearchError):
    """Milvus refused a request or could not be reached."""


class SchemaMismatchError(StoreError):
    """An existing collection does not match the settings."""


class AnalyticsError(VidsearchError):
    """Corpus analytics cannot run on this input (no videos, k or a threshold out of range)."""
