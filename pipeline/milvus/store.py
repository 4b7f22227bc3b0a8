"""Milvus access: the client (:class:`MilvusStore`) and the translation of pymilvus errors.

The only pymilvus importer besides :mod:`pipeline.milvus.columns` (the wire messages it sends). The
rest of Milvus administration is plain logic in its own module: :mod:`~pipeline.milvus.filters`
(filter expressions, the one place values are escaped), :mod:`~pipeline.milvus.schema` (fields,
index, search parameters), :mod:`~pipeline.milvus.rows` (segments to rows and columns, answers to
hits) and :mod:`~pipeline.milvus.capabilities` (what a server version supports, request limits).

One collection per model and dimension (name from ``spec.collection_name``), created on first
use with the schema of :mod:`~pipeline.milvus.schema` and the index from the settings, then loaded.
A collection is never dropped here. An existing collection whose vector dimension or fields differ
from what the code expects raises :class:`SchemaMismatchError` naming both sides.

Failure mapping at this boundary (nothing from pymilvus or grpc escapes):

* Milvus unreachable, a dropped connection or an exhausted call budget ->
  :class:`StoreUnavailableError` (a :class:`StoreError` and a :class:`TransientError`).
* A reachable Milvus that refuses a request -> :class:`StoreRejectedError` (a :class:`StoreError`).
* A segment that can never fit the collection (wrong vector dimension, malformed metadata, an
  over-long field) -> :class:`InvalidSegmentError` / :class:`DimensionMismatchError`
  (also :class:`PermanentError`), raised before anything is sent.

pymilvus retries failed RPCs internally for minutes unless a call carries ``timeout=``: every call
here passes ``timeout=timeout_s`` (default :data:`CALL_TIMEOUT_S`), which bounds one call
*including* pymilvus's own retries, so an outage surfaces as ``StoreUnavailableError``
within that bound.

Writes are upserts keyed by the primary key ``pk``: Milvus keeps one row per pk, so replays and
duplicates never add rows (no duplicate check is needed). On a server whose upsert misroutes
partition-key rows (before 2.3.10, :func:`~pipeline.milvus.capabilities.upsert_misroutes`; version
read once per connection) a write is a delete of the batch's pks followed by an insert, which
routes correctly; a crash between the two is repaired by the writer's replay.

``count`` and ``rows_by_item`` read with
``Strong`` consistency (read-after-write across processes). ``search`` uses the setting
``search_consistency``, ``Bounded`` by default: on a Milvus server a search then never waits for
in-flight writes and may miss the last few seconds of them (Milvus Lite shows every write at once).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import grpc
import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException
from pymilvus.grpc_gen import milvus_pb2

from pipeline.errors import (
    SchemaMismatchError,
    StoreError,
    StoreRejectedError,
    StoreUnavailableError,
)
from pipeline.milvus.capabilities import (
    MAX_SEARCH_LIMIT,
    Capabilities,
    capabilities_of,
    iterator_batch,
    upsert_misroutes,
)
from pipeline.milvus.columns import Columns, request
from pipeline.milvus.filters import Filter, equals, one_of
from pipeline.milvus.rows import SegmentHit, check_segment, hit_of, to_row
from pipeline.milvus.rows import prepare as prepare_columns
from pipeline.milvus.schema import (
    OUTPUT_FIELDS,
    fields,
    index_spec,
    schema_problems,
    search_params_for,
)
from pipeline.segments import Segment
from pipeline.settings import Settings
from pipeline.spec import collection_name

CALL_TIMEOUT_S = 30.0
"""Bound on one Milvus call, pymilvus's internal retries included."""

READ_CONSISTENCY = "Strong"
GRPC_OPTIONS = {"grpc.keepalive_time_ms": 600_000, "grpc.keepalive_timeout_ms": 20_000}
"""Keepalive pings every 10 min, not pymilvus's 10 s: a gRPC server at its defaults (Milvus Lite)
accepts one ping per 5 min without data and answers more with GOAWAY ``too_many_pings`` after
~30 s of idle, failing the call that meets it."""
SEARCH_CONSISTENCY_TUNE = "Bounded"
_UNREACHABLE_CODES = frozenset({2})  # legacy ErrorCode.ConnectFailed
_MISSING_COLLECTION = ("does not exist", "not found", "can't find collection")


_ANSWERING_CODES = (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.RESOURCE_EXHAUSTED)


def _unreachable(exc: Exception) -> bool:
    # An engine lacking a method, or refusing a message larger than its maximum, answers: it is
    # not down, and asking again gets the same answer.
    if isinstance(exc, grpc.RpcError):
        code = exc.code() if callable(getattr(exc, "code", None)) else None
        return code not in _ANSWERING_CODES
    if isinstance(exc, MilvusException):
        message = str(exc.message)
        return (
            exc.code in _UNREACHABLE_CODES or "Retry timeout" in message or "unavailable" in message
        )
    return isinstance(exc, (ConnectionError, TimeoutError))


def translate(exc: Exception, action: str) -> StoreError:
    """The vidsearch error for a pymilvus / grpc failure of ``action``."""
    message = getattr(exc, "message", None) or str(exc)
    if _unreachable(exc):
        return StoreUnavailableError(f"Milvus unavailable during {action}: {message}")
    return StoreRejectedError(f"Milvus refused {action}: {message}")


def _released(exc: StoreError) -> bool:
    """Whether Milvus refused because the collection is not loaded (e.g. after a restart)."""
    text = str(exc)
    return "released" in text or "not loaded" in text or "call load()" in text


def _plain(described: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Described fields with each type as its ``DataType`` name, as ``schema`` names types."""
    return [{**field, "type": DataType(field["type"]).name} for field in described]


class MilvusStore:
    """Collections, upserts, flushes, counts and searches on one Milvus (Lite server or not)."""

    def __init__(self, settings: Settings, timeout_s: float = CALL_TIMEOUT_S) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._client: MilvusClient | None = None
        self._dimensions: dict[str, int] = {}
        self._partitions: dict[str, int] = {}
        self._server_version: str | None = None
        self.calls = 0
        """Milvus requests made (one per attempted call, counted before it is sent)."""

    # --- connection ------------------------------------------------------------------------
    def _connect(self) -> MilvusClient:
        if self._client is None:
            kwargs: dict[str, Any] = {"uri": self._settings.milvus_uri, "timeout": self._timeout_s,
                                      "grpc_options": GRPC_OPTIONS}
            if self._settings.milvus_token is not None:
                kwargs["token"] = self._settings.milvus_token.get_secret_value()
            try:
                self._client = MilvusClient(**kwargs)
                self._server_version = None
            except (MilvusException, grpc.RpcError, OSError) as exc:
                raise StoreUnavailableError(
                    f"cannot connect to Milvus at {self._settings.milvus_uri}: "
                    f"{getattr(exc, 'message', exc)}"
                ) from exc
        return self._client

    def _call(self, action: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``method``; a collection found released (a restarted Milvus) is loaded, once."""
        try:
            return self._call_once(action, method, *args, **kwargs)
        except StoreRejectedError as exc:
            if not (args and isinstance(args[0], str) and _released(exc)):
                raise
            self._call_once(f"load_collection {args[0]}", "load_collection", args[0])
            return self._call_once(action, method, *args, **kwargs)

    def _call_once(self, action: str, method: str, *args: Any, **kwargs: Any) -> Any:
        client = self._connect()
        self.calls += 1
        try:
            return getattr(client, method)(*args, timeout=self._timeout_s, **kwargs)
        except (MilvusException, grpc.RpcError, OSError) as exc:
            error = translate(exc, action)
            if isinstance(error, StoreUnavailableError):
                self._forget()  # a restarted Milvus has released every collection
                self._server_version = None  # ... and may be another version
            raise error from exc

    def server_version(self) -> str:
        """The server's version string (read once per connection)."""
        if self._server_version is None:
            self._server_version = str(self._call("server version", "get_server_version"))
        return self._server_version

    def ping(self) -> None:
        """Raise StoreUnavailableError unless Milvus answers."""
        self._call("ping", "list_collections")

    def close(self) -> None:
        """Close the connection (a later call reconnects)."""
        if self._client is not None:
            with contextlib.suppress(MilvusException, grpc.RpcError, OSError):
                self._client.close()
            self._client = None

    # --- collections ---------------------------------------------------------------------------
    def collection_for(self, model: str, dimension: int) -> str:
        """The collection name of a model and dimension (nothing is created)."""
        return collection_name(self._settings.collection_prefix, model, dimension)

    def has_collection(self, name: str) -> bool:
        """Whether the collection exists."""
        return bool(self._call(f"has_collection {name}", "has_collection", name))

    def is_loaded(self, name: str) -> bool:
        """Whether the collection is loaded (searchable); False when it does not exist."""
        if not self.has_collection(name):
            return False
        state = self._call(f"get_load_state {name}", "get_load_state", name)
        return getattr(state.get("state"), "name", "") == "Loaded"

    def ensure_collection(self, model: str, dimension: int) -> str:
        """Create (if missing), check and load the collection of ``model`` at ``dimension``."""
        return self.ensure_named(self.collection_for(model, dimension), dimension)

    def ensure_named(self, name: str, dimension: int) -> str:
        """Create (if missing), check and load the collection ``name`` at ``dimension``."""
        if name in self._dimensions:
            return name
        if self.has_collection(name):
            self._check_schema(name, dimension)
        else:
            self._create(name, dimension)
        self._call(f"load_collection {name}", "load_collection", name)
        self._dimensions[name] = dimension
        return name

    def use_collection(self, name: str) -> str:
        """Load an existing collection (once per connection) for writing; returns ``name``."""
        if name not in self._dimensions:
            dimension = self.dimension_of(name)
            self._call(f"load_collection {name}", "load_collection", name)
            self._dimensions[name] = dimension
        return name

    def dimension_of(self, name: str) -> int:
        """The vector dimension of an existing collection."""
        if name not in self._dimensions:
            described = self._call(f"describe_collection {name}", "describe_collection", name)
            for field in described["fields"]:
                if field["name"] == "vector":
                    self._dimensions[name] = int(field["params"]["dim"])
                    break
            else:
                raise SchemaMismatchError(f"collection {name} has no field 'vector'")
        return self._dimensions[name]

    def _forget(self, name: str | None = None) -> None:
        """Drop what is known of collection ``name`` (of every collection when None)."""
        for known in (self._dimensions, self._partitions):
            if name is None:
                known.clear()
            else:
                known.pop(name, None)

    def partitions_of(self, name: str) -> int:
        """The partitions of an existing collection (partition-key partitions; 1 without)."""
        if name not in self._partitions:
            described = self._call(f"describe_collection {name}", "describe_collection", name)
            self._partitions[name] = int(described.get("num_partitions") or 1)
        return self._partitions[name]

    def _check_schema(self, name: str, dimension: int) -> None:
        described = self._call(f"describe_collection {name}", "describe_collection", name)
        problems = schema_problems(name, _plain(described["fields"]), dimension)
        if problems:
            raise SchemaMismatchError("; ".join(problems))

    def _schema(self, dimension: int) -> Any:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        for field in fields(dimension):
            schema.add_field(field.name, DataType[field.type], **field.params)
        return schema

    def _create(self, name: str, dimension: int, index_type: str | None = None,
                index_params: dict[str, Any] | None = None) -> None:
        settings = self._settings
        index = MilvusClient.prepare_index_params()
        index.add_index(**index_spec(settings, index_type, index_params))
        try:
            self._call(
                f"create_collection {name}",
                "create_collection",
                name,
                schema=self._schema(dimension),
                index_params=index,
                num_partitions=settings.num_partitions,
            )
        except StoreRejectedError:
            # Another process may have created it first: accept it if it matches.
            if not self.has_collection(name):
                raise
            self._check_schema(name, dimension)

    # --- writes ------------------------------------------------------------------------------
    def rows(self, collection: str, segments: Sequence[Segment]) -> list[dict[str, Any]]:
        """Milvus rows for ``segments``; raises InvalidSegmentError for the first bad one."""
        dimension = self.dimension_of(collection)
        now_ms = int(time.time() * 1000)
        return [to_row(s, dimension, collection, now_ms) for s in segments]

    def prepare(
        self, collection: str, segments: Sequence[Segment]
    ) -> tuple[list[int], Columns, list[tuple[int, str]]]:
        """Columns of the segments that fit ``collection``, and why the others never will.

        Returns ``(kept, columns, [(index, reason), ...])``: row ``j`` of ``columns`` is
        ``segments[kept[j]]`` (indexes into ``segments``).
        """
        now_ms = int(time.time() * 1000)
        return prepare_columns(segments, self.dimension_of(collection), collection, now_ms)

    def reject_reason(self, collection: str, segment: Segment) -> str | None:
        """Why ``segment`` can never be written to ``collection``, or None when it can."""
        rejects = self.prepare(collection, [segment])[2]
        return rejects[0][1] if rejects else None

    def upsert(self, collection: str, segments: Sequence[Segment]) -> None:
        """Upsert segments (one row per pk, the last kept); InvalidSegmentError for a bad one."""
        if not segments:
            return
        dimension = self.dimension_of(collection)
        for segment in segments:
            check_segment(segment, dimension, collection)  # raises the specific error
        self.upsert_columns(collection, self.prepare(collection, segments)[1].unique())

    def upsert_columns(self, collection: str, columns: Columns) -> None:
        """Upsert columns built by ``prepare`` (unique pks; never a partition name)."""
        if not len(columns):
            return
        if upsert_misroutes(self.server_version()):
            self._send(f"delete from {collection}", "Delete", self._delete_request(collection, columns))
            self._send(f"insert into {collection}", "Insert", request(collection, columns, upsert=False))
        else:
            self._send(f"upsert into {collection}", "Upsert", request(collection, columns, upsert=True))

    @staticmethod
    def _delete_request(collection: str, columns: Columns) -> Any:
        return milvus_pb2.DeleteRequest(collection_name=collection, expr=one_of("pk", columns.pks))

    def _send(self, action: str, rpc: str, message: Any) -> None:
        """One prepared request on the client's channel; a failed status raises like pymilvus.

        A collection missing at write time is transient (``vidsearch index rebuild`` swaps the
        name to its new collection): the writer keeps the rows pending and retries.
        """
        try:
            self._send_once(action, rpc, message)
        except StoreRejectedError as exc:
            if any(text in str(exc) for text in _MISSING_COLLECTION):
                self._forget()
                raise StoreUnavailableError(str(exc)) from exc
            raise

    def _send_once(self, action: str, rpc: str, message: Any) -> None:
        client = self._connect()
        try:
            stub = client._get_connection()._stub
            status = getattr(stub, rpc)(message, timeout=self._timeout_s).status
            if status.code or status.error_code:
                raise MilvusException(code=status.code or status.error_code, message=status.reason)
        except (MilvusException, grpc.RpcError, OSError) as exc:
            error = translate(exc, action)
            if isinstance(error, StoreUnavailableError):
                self._forget()
            raise error from exc

    def upsert_rows(self, collection: str, rows: Sequence[dict[str, Any]]) -> None:
        """Upsert row dicts through pymilvus (benchmarks' baseline; the writer uses columns)."""
        if not rows:
            return
        if upsert_misroutes(self.server_version()):
            self._delete_then_insert(collection, rows)
        else:
            self._call(f"upsert into {collection}", "upsert", collection, list(rows))

    def _delete_then_insert(self, collection: str, rows: Sequence[dict[str, Any]]) -> None:
        """An upsert on servers whose upsert misroutes partition-key rows (see the module doc)."""
        unique = list({row["pk"]: row for row in rows}.values())
        pks = one_of("pk", [str(row["pk"]) for row in unique])
        self._call(f"delete from {collection}", "delete", collection, filter=pks)
        self._call(f"insert into {collection}", "insert", collection, unique)

    def flush(self, collection: str) -> None:
        """Seal growing segments so searches use the index."""
        self._call(f"flush {collection}", "flush", collection)

    # --- reads ---------------------------------------------------------------------------------
    def count(self, collection: str, filter: str = "") -> int:
        """Rows matching ``filter`` (Strong consistency)."""
        result = self._call(
            f"count {collection}",
            "query",
            collection,
            filter=filter,
            output_fields=["count(*)"],
            consistency_level=READ_CONSISTENCY,
        )
        return int(result[0]["count(*)"]) if result else 0

    def rows_by_item(self, collection: str, item_keys: Sequence[str]) -> dict[str, int]:
        """Row count per item key (keys without rows map to 0)."""
        counts = dict.fromkeys(item_keys, 0)
        for key in counts:
            counts[key] = self.count(collection, equals("item_key", key))
        return counts

    # --- index ---------------------------------------------------------------------------------
    def collections(self) -> list[str]:
        """This deployment's collections by the names vidsearch uses (an alias instead of the
        collection it names, after ``vidsearch index rebuild``), prefix ``collection_prefix``."""
        prefix = f"{self._settings.collection_prefix}_"
        names: list[str] = []
        for name, aliases in self._aliases(prefix):
            names += aliases or [name]
        return sorted(names)

    def _aliases(self, prefix: str = "") -> Iterator[tuple[str, list[str]]]:
        """Each collection named ``prefix...`` with its aliases (listed per collection: asking
        Milvus to describe a missing alias makes pymilvus log a traceback)."""
        for name in self._call("list_collections", "list_collections"):
            if str(name).startswith(prefix):
                info = self._call(f"list_aliases {name}", "list_aliases", name)
                yield str(name), [str(a) for a in (info or {}).get("aliases", [])]

    def describe_vector_index(self, collection: str) -> dict[str, Any]:
        """The vector index: type, metric, build params and, where the engine reports them,
        ``indexed_rows`` / ``pending_index_rows`` / ``total_rows``."""
        info = self._call(f"describe_index {collection}", "describe_index", collection, "vector")
        return dict(info or {})

    def segment_rows(self, collection: str, *, served: bool = False) -> dict[int, int] | None:
        """Rows per sealed segment id: the persistent ones, or (``served``) the ones the query
        nodes have loaded and search. None when the engine does not list them.

        The two differ while a compaction's merged segments wait for their index and hand-off:
        searches then still read the older, smaller segments, and are slower."""
        method = "list_loaded_segments" if served else "list_persistent_segments"
        try:
            infos = self._call(f"list segments {collection}", method, collection)
        except StoreRejectedError:
            return None
        return {int(info.segment_id): int(info.num_rows) for info in infos}

    def create_indexed(self, name: str, dimension: int, index_type: str,
                       index_params: dict[str, Any]) -> None:
        """A new collection with the production schema and this index, loaded."""
        if self.has_collection(name):
            raise StoreRejectedError(f"Milvus refused create_collection {name}: it exists")
        self._create(name, dimension, index_type, index_params)
        self._call(f"load_collection {name}", "load_collection", name)

    def alias_target(self, name: str) -> str | None:
        """The collection an alias points to, or None when ``name`` is no alias."""
        try:
            info = self._call(f"describe_alias {name}", "describe_alias", name)
        except StoreRejectedError:
            return None
        target = str((info or {}).get("collection_name") or "")
        return target if target and target != name else None

    def point_alias(self, alias: str, collection: str, *, exists: bool) -> None:
        """Make ``alias`` name ``collection`` (atomically when the alias already exists)."""
        method = "alter_alias" if exists else "create_alias"
        self._call(f"{method} {alias} -> {collection}", method, collection, alias)
        self._forget(alias)

    def has_alias(self, alias: str) -> bool:
        """Whether ``alias`` exists."""
        return any(alias in aliases for _name, aliases in self._aliases())

    def drop_alias(self, alias: str) -> None:
        """Remove an alias (its collection stays); nothing when there is no such alias."""
        if self.has_alias(alias):
            self._call(f"drop_alias {alias}", "drop_alias", alias)
        self._forget(alias)

    def drop(self, name: str) -> None:
        """Drop a collection (only ``vidsearch index rebuild`` drops, and only what it replaced)."""
        self._call(f"drop_collection {name}", "drop_collection", name)
        self._forget(name)

    def sample_vectors(self, collection: str, n: int) -> np.ndarray:
        """Up to ``n`` stored vectors (the first the engine returns)."""
        rows = self._call(f"query {collection}", "query", collection, filter="", limit=n,
                          output_fields=["vector"], consistency_level=READ_CONSISTENCY)
        return np.asarray([r["vector"] for r in rows], dtype=np.float32).reshape(len(rows), -1)

    def search_pks(self, collection: str, vectors: np.ndarray, limit: int,
                   params: dict[str, Any]) -> list[list[str]]:
        """The pks of the ``limit`` nearest rows of each vector with these search params."""
        result = self._call(
            f"search {collection}", "search", collection, data=vectors.tolist(), limit=limit,
            search_params={"metric_type": self._settings.index_metric, "params": params},
            output_fields=["pk"], consistency_level=SEARCH_CONSISTENCY_TUNE,
        )
        return [[str(h.get("pk", h.get("id"))) for h in hits] for hits in result]

    def iter_rows(
        self, collection: str, filter: str, fields: Sequence[str], batch_size: int = 1000
    ) -> Iterator[dict[str, Any]]:
        """Every row matching ``filter`` with ``fields`` (a query iterator, Strong consistency),
        in batches of at most ``batch_size`` rows and ``QUERY_MESSAGE_BYTES`` per answer."""
        batch = iterator_batch(batch_size, self.dimension_of(collection),
                               self.partitions_of(collection), "vector" in fields)
        iterator = self._call(
            f"query {collection}", "query_iterator", collection, batch_size=batch,
            filter=filter, output_fields=list(fields), consistency_level=READ_CONSISTENCY,
        )
        try:
            while True:
                try:
                    batch = iterator.next()
                except (MilvusException, grpc.RpcError, OSError) as exc:
                    raise translate(exc, f"query {collection}") from exc
                if not batch:
                    return
                yield from batch
        finally:
            iterator.close()

    def collection_identity(self, name: str) -> str:
        """What names this incarnation of collection (or alias) ``name``: its collection id and
        creation time, ``"absent"`` when it does not exist. A collection dropped and created
        again, or lost with Milvus' data, has another identity (one describe call)."""
        if not self.has_collection(name):
            return "absent"
        described = self._call(f"describe_collection {name}", "describe_collection", name)
        return f"{described.get('collection_id', '')}@{described.get('created_timestamp', '')}"

    # --- bulk import (``vidsearch restore`` on a Milvus server) -----------------------------------
    def bulk_insert(self, collection: str, files: Sequence[str]) -> int:
        """Start a bulk import of ``files`` (paths the server's own storage reads) into
        ``collection`` (rows routed by the partition key); returns the import task id."""
        client = self._connect()
        self.calls += 1
        try:
            return int(client._get_connection().do_bulk_insert(
                collection, None, list(files), timeout=self._timeout_s))
        except (MilvusException, grpc.RpcError, OSError) as exc:
            raise translate(exc, f"bulk insert into {collection}") from exc

    def bulk_insert_state(self, task_id: int) -> tuple[str, int, str]:
        """``(state, rows, failed_reason)`` of an import task; state is one of ``pending``,
        ``running``, ``completed`` or ``failed``."""
        client = self._connect()
        self.calls += 1
        try:
            state = client._get_connection().get_bulk_insert_state(task_id, timeout=self._timeout_s)
        except (MilvusException, grpc.RpcError, OSError) as exc:
            raise translate(exc, f"bulk insert state {task_id}") from exc
        name = str(state.state_name)
        if state.failed_reason or name.startswith("Failed") or name == "Unknown":
            return "failed", int(state.row_count), str(state.failed_reason or name)
        kind = {"Completed": "completed", "Pending": "pending"}.get(name, "running")
        return kind, int(state.row_count), ""

    def bulk_insert_tasks(self, collection: str) -> dict[str, int]:
        """The import tasks the server remembers for ``collection``: file path -> task id (the
        latest one per file), so that a file is never imported twice."""
        client = self._connect()
        self.calls += 1
        try:
            tasks = client._get_connection().list_bulk_insert_tasks(
                0, collection, timeout=self._timeout_s)
        except (MilvusException, grpc.RpcError, OSError) as exc:
            raise translate(exc, f"list bulk inserts of {collection}") from exc
        found: dict[str, int] = {}
        for task in sorted(tasks, key=lambda t: int(t.task_id)):
            for path in str((task.infos or {}).get("files", "")).split(","):
                if path:
                    found[path.strip()] = int(task.task_id)
        return found

    def capabilities(self) -> Capabilities:
        """What this server can do for search, from its version (read once per connection)."""
        return capabilities_of(self.server_version())

    def _search_params(self, collection: str, limit: int, exact: bool = False) -> dict[str, Any]:
        params = search_params_for(self._settings, collection, limit)  # HNSW needs ef >= limit
        if exact and "ef" in params:
            params["ef"] = max(int(params["ef"]), self.capabilities().exact_ef)
        return {"metric_type": self._settings.index_metric, "params": params}

    def search(
        self,
        collection: str,
        vector: Sequence[float],
        *,
        categories: Sequence[str] = (),
        option: str | None = None,
        scope: str | None = "clip",
        limit: int,
    ) -> list[SegmentHit]:
        """The ``limit`` nearest segments, best first, restricted by category/option/scope."""
        where = Filter(categories, (option,) if option is not None else (), scope)
        return self.search_where(collection, vector, where, limit=limit)

    def search_where(
        self,
        collection: str,
        vector: Sequence[float],
        where: Filter,
        *,
        limit: int,
        group_by_url: int = 0,
        fields: Sequence[str] = OUTPUT_FIELDS,
        exact: bool = False,
    ) -> list[SegmentHit]:
        """The nearest rows matching ``where``, best first.

        ``group_by_url=N`` asks for ``limit`` videos with at most N rows each (grouping search;
        only where ``capabilities().grouping``). ``fields``: the output fields (fewer are faster;
        Milvus Lite spends about half a millisecond per returned row). ``exact``: every row the
        filter matches is a candidate, however selective the filter (on Milvus Lite an HNSW
        ``ef`` of ``capabilities().exact_ef``: the walk covers each segment, at that cost).
        """
        limit = max(1, min(limit, MAX_SEARCH_LIMIT))
        extra: dict[str, Any] = {}
        if group_by_url:
            extra = {"group_by_field": "url", "group_size": group_by_url, "strict_group_size": False}
        result = self._call(
            f"search {collection}",
            "search",
            collection,
            data=[np.asarray(vector, dtype=np.float32).tolist()],
            filter=where.expression(),
            limit=limit,
            output_fields=list(fields),
            search_params=self._search_params(collection, limit * max(1, group_by_url), exact),
            consistency_level=self._settings.search_consistency,
            **extra,
        )
        hits = result[0] if result else []
        return [self._hit(h) for h in hits]

    def hybrid_search(
        self,
        collection: str,
        vectors: Sequence[Sequence[float]],
        weights: Sequence[float],
        where: Filter,
        *,
        ranker: str,
        limit: int,
        fields: Sequence[str] = OUTPUT_FIELDS,
        exact: bool = False,
    ) -> list[SegmentHit]:
        """One multi-request search fused by Milvus (``ranker``: "weighted" or "rrf"); ``exact`` as
        in :meth:`search_where`."""
        from pymilvus import AnnSearchRequest, RRFRanker, WeightedRanker  # noqa: PLC0415

        limit = max(1, min(limit, MAX_SEARCH_LIMIT))
        expression = where.expression()
        requests = [
            AnnSearchRequest(data=[np.asarray(v, dtype=np.float32).tolist()], anns_field="vector",
                             param=self._search_params(collection, limit, exact), limit=limit,
                             expr=expression)
            for v in vectors
        ]
        fuser = WeightedRanker(*weights) if ranker == "weighted" else RRFRanker()
        result = self._call(
            f"hybrid_search {collection}", "hybrid_search", collection, requests, fuser,
            limit=limit, output_fields=list(fields),
            consistency_level=self._settings.search_consistency,
        )
        hits = result[0] if result else []
        return [self._hit(h, raw_score=True) for h in hits]

    def vectors_where(self, collection: str, where: Filter, limit: int = 16384) -> list[dict[str, Any]]:
        """Rows matching ``where`` with their vectors (``start_s``, ``end_s``, ``option``)."""
        return list(self._call(
            f"query {collection}", "query", collection, filter=where.expression(), limit=limit,
            output_fields=["vector", "start_s", "end_s", "option", "scope"],
            consistency_level=READ_CONSISTENCY,
        ))

    def _hit(self, raw: dict[str, Any], *, raw_score: bool = False) -> SegmentHit:
        return hit_of(raw, negate=self._settings.index_metric == "L2" and not raw_score)
