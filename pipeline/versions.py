"""Model versions: re-embed a collection into a new model, switch search over atomically, roll back.

A version is an embedding spec (model, dimension, options, segmentation) and owns one collection.
Records live in Redis (``{prefix}:versions``, a hash of id -> JSON) with three pointers:
``live`` (what search uses), ``previous`` (what ``rollback`` returns to) and ``building`` (a
re-embed in progress: new ingests are embedded for it too). Search goes through aliases, never a
collection name: each version has its own alias ``<prefix>_v_<id>`` (the searcher reads the live
pointer and uses that version's alias, model and dimension together, so it never mixes a query of
one model with the vectors of another), and ``<prefix>_live`` follows the live version for other
readers. A promotion alters ``<prefix>_live`` (atomic in Milvus), then moves the pointers in one
Redis transaction.

Without versions nothing changes: the first ``versions``/``reembed`` adopts the settings' spec
and its existing collection (``MilvusStore.collection_for``) as the first version. Item keys
include the spec, so an item embedded for two versions is two items: one paid task each.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from hashlib import blake2b
from typing import TYPE_CHECKING, Any, get_args

import redis

from pipeline.errors import BadInputError
from pipeline.ledger.records import Item
from pipeline.ledger.store import Admission, JobStore, SubmitMode, job_item_keys, read_items
from pipeline.milvus.filters import equals, one_of
from pipeline.settings import EmbeddingOption, ModelName, Settings
from pipeline.spec import EmbeddingSpec, collection_name, item_key
from pipeline.state.keys import Keys

if TYPE_CHECKING:
    from pipeline.milvus.store import MilvusStore

    Redis = redis.Redis[bytes]
else:
    Redis = redis.Redis

MODELS: tuple[str, ...] = get_args(ModelName)
DIMENSIONS = {"marengo3.0": (512,), "marengo3.5": (128, 256, 512)}
OPTIONS = {"marengo3.0": get_args(EmbeddingOption), "marengo3.5": ("visual", "audio")}
SUBMIT_BATCH = 1000
_UNSAFE = re.compile(r"[^0-9A-Za-z_]")


@dataclass(frozen=True, slots=True)
class Version:
    """One model version and its collection."""

    id: str
    spec: EmbeddingSpec
    collection: str
    alias: str
    created_at: float
    origin: str = "reembed"
    """``adopted`` (the collection that existed before versions) or ``reembed``."""

    @property
    def dimension(self) -> int:
        return self.spec.dimension or 512

    def to_json(self) -> str:
        return json.dumps({"id": self.id, "spec": self.spec.to_json(), "collection": self.collection,
                           "alias": self.alias, "created_at": self.created_at,
                           "origin": self.origin}, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Version:
        d = json.loads(raw)
        return cls(id=d["id"], spec=EmbeddingSpec.from_json(d["spec"]), collection=d["collection"],
                   alias=d["alias"], created_at=float(d["created_at"]), origin=d.get("origin", ""))

    def settings_for(self, settings: Settings) -> Settings:
        """``settings`` with this version's model, dimension and options (the query side)."""
        return settings.model_copy(update={
            "model": self.spec.model, "embedding_dimension": self.spec.dimension,
            "embedding_options": list(self.spec.options),
        })


@dataclass(frozen=True, slots=True)
class Progress:
    """A version's items in the ledger."""

    items: int = 0
    done: int = 0
    failed: int = 0


def live_alias(settings: Settings) -> str:
    return f"{settings.collection_prefix}_live"


def _sanitize(text: str) -> str:
    return _UNSAFE.sub("_", text)


def version_for(spec: EmbeddingSpec, settings: Settings) -> Version:
    """The version of ``spec``: id ``<model>-<dimension>`` (plus a digest of the options and
    segmentation when they differ from the settings'), its collection and alias."""
    dimension = spec.dimension or 512
    base = EmbeddingSpec.from_settings(settings)
    plain = replace(spec, model=base.model, dimension=base.dimension).canonical() == base.canonical()
    suffix = "" if plain else "-" + blake2b(spec.canonical().encode(), digest_size=3).hexdigest()
    version_id = f"{spec.model}-{dimension}{suffix}"
    collection = collection_name(settings.collection_prefix, spec.model, dimension)
    if suffix:
        collection = f"{collection}_{suffix[1:]}"
    alias = f"{settings.collection_prefix}_v_{_sanitize(version_id)}"
    return Version(version_id, spec, collection, alias, time.time())


def plan_spec(base: EmbeddingSpec, model: str, dimension: int | None,
              options: Sequence[str] | None) -> EmbeddingSpec:
    """The spec of a re-embed from ``base``; ``BadInputError`` names what is not possible."""
    if model not in MODELS:
        raise BadInputError(f"unknown model {model!r}: use one of {', '.join(MODELS)}")
    dims = DIMENSIONS[model]
    if dimension is not None and dimension not in dims:
        raise BadInputError(f"{model} embeds at dimension {' or '.join(map(str, dims))}, "
                            f"not {dimension}")
    chosen = tuple(dict.fromkeys(options)) if options else base.options
    wrong = [o for o in chosen if o not in OPTIONS[model]]
    if wrong:
        raise BadInputError(f"{model} has no embedding option {', '.join(wrong)} (it has "
                            f"{', '.join(OPTIONS[model])}); pass --options")
    spec_dimension = dimension if model == "marengo3.5" else None
    return replace(base, model=model, dimension=spec_dimension, options=chosen)


class Versions:
    """Version records, pointers and the ledger reads behind them (Redis only)."""

    def __init__(self, client: Redis, keys: Keys, settings: Settings) -> None:
        self.r = client
        self.keys = keys
        self.settings = settings

    # --- records ---------------------------------------------------------------------------------
    def get(self, version_id: str) -> Version | None:
        raw = self.r.hget(self.keys.versions, version_id)
        return Version.from_json(raw) if raw else None

    def require(self, version_id: str) -> Version:
        found = self.get(version_id)
        if found is None:
            known = ", ".join(v.id for v in self.all()) or "none yet"
            raise BadInputError(f"no such version {version_id!r} (versions: {known})")
        return found

    def all(self) -> list[Version]:
        found = [Version.from_json(raw) for raw in self.r.hvals(self.keys.versions)]
        return sorted(found, key=lambda v: v.created_at)

    def save(self, version: Version) -> None:
        self.r.hset(self.keys.versions, version.id, version.to_json())

    def pointer(self, name: str) -> str | None:
        raw = self.r.get(self.keys.version_pointer(name))
        return raw.decode() if raw else None

    def live(self) -> Version | None:
        """The live version, or None before any version exists (search uses the settings)."""
        live_id = self.pointer("live")
        return self.get(live_id) if live_id else None

    def building(self) -> Version | None:
        building_id = self.pointer("building")
        return self.get(building_id) if building_id else None

    def add_job(self, version_id: str, job_id: str) -> None:
        self.r.rpush(self.keys.version_jobs(version_id), job_id)

    def job_ids(self, version_id: str) -> list[str]:
        return [j.decode() for j in self.r.lrange(self.keys.version_jobs(version_id), 0, -1)]

    # --- the ledger ---------------------------------------------------------------------------
    def jobs_of(self, version: Version) -> list[str]:
        """Every job whose spec is the version's (jobs from before versions existed included)."""
        canonical = version.spec.canonical()
        found: list[str] = []
        for raw in self.r.zrange(self.keys.jobs, 0, -1):
            job_id = raw.decode()
            spec = self.r.hget(self.keys.job(job_id), "spec")
            if spec and EmbeddingSpec.from_json(spec).canonical() == canonical:
                found.append(job_id)
        return found

    def items(self, version: Version, store: MilvusStore | None = None) -> Iterator[Item]:
        """The version's admitted items, each once, read from its jobs' item indexes.

        A done item's ledger record keeps no URL, title or metadata (``ledger/records.py``): with
        ``store`` they are read from the item's rows in the version's collection (an item done
        with no rows then has no URL); without, such items come with an empty URL."""
        seen: set[str] = set()
        for job_id in self.jobs_of(version):
            for batch in job_item_keys(self.r, self.keys, job_id):
                fresh = [k for k in dict.fromkeys(batch) if k not in seen]
                seen.update(fresh)
                yield from self._read_items(fresh, version, store)

    def _read_items(
        self, keys: Sequence[str], version: Version, store: MilvusStore | None
    ) -> Iterator[Item]:
        for start in range(0, len(keys), SUBMIT_BATCH):
            items = [i for i in read_items(self.r, self.keys, keys[start:start + SUBMIT_BATCH]) if i]
            bare = [i.key for i in items if not i.url]
            found = item_details(store, version.collection, bare) if store and bare else {}
            yield from (_with_details(i, found.get(i.key)) for i in items)

    def progress(self, version: Version) -> Progress:
        states = [item.state for item in self.items(version)]
        return Progress(len(states), states.count("done"), states.count("failed"))

    def coverage(
        self, live: Version, target: Version, store: MilvusStore | None = None
    ) -> tuple[int, int]:
        """(videos done in both, videos done in ``live``): how complete ``target`` is."""
        wanted = {i.url for i in self.items(live, store) if i.state == "done" and i.url}
        have = {i.url for i in self.items(target, store) if i.state == "done" and i.url}
        return len(wanted & have), len(wanted)

    # --- pointers ------------------------------------------------------------------------------
    def switch(self, live_id: str, previous_id: str | None, *, clear_building: bool) -> None:
        """Move the pointers in one transaction."""
        pipe = self.r.pipeline(transaction=True)
        pipe.set(self.keys.version_pointer("live"), live_id)
        if previous_id:
            pipe.set(self.keys.version_pointer("previous"), previous_id)
        if clear_building:
            pipe.delete(self.keys.version_pointer("building"))
        pipe.execute()


# --- operations (Redis and Milvus) ------------------------------------------------------------------
DETAIL_FIELDS = ("item_key", "url", "category", "title", "metadata")
DETAIL_CHUNK = 200
"""Item keys per Milvus filter when done items' details are read from their rows."""


def _with_details(item: Item, details: Item | None) -> Item:
    """``item`` with the URL, category, title and metadata of ``details`` when it lacks them."""
    if item.url or details is None:
        return item
    return replace(item, url=details.url, category=item.category or details.category,
                   title=details.title, metadata=details.metadata)


def item_details(store: MilvusStore, collection: str, keys: Sequence[str]) -> dict[str, Item]:
    """Done items of ``keys`` with the URL, category, title and metadata of their rows in
    ``collection`` (one row each is enough; items without rows are left out)."""
    found: dict[str, Item] = {}
    if not store.has_collection(collection):
        return found
    for start in range(0, len(keys), DETAIL_CHUNK):
        where = one_of("item_key", keys[start:start + DETAIL_CHUNK])
        for row in store.iter_rows(collection, where, DETAIL_FIELDS):
            key = str(row["item_key"])
            if key not in found:
                found[key] = Item(
                    key=key, state="done", job_id="", url=str(row["url"]),
                    category=str(row["category"]), title=str(row.get("title") or ""),
                    metadata=json.dumps(row.get("metadata") or {}, ensure_ascii=False),
                    task_id=None, attempts=0, reason=None, submitted_at=None, polls=0,
                    create_attempted_at=None,
                )
    return found


def _adoptable(settings: Settings) -> Version:
    """The first version: the settings' spec and the collection it always had."""
    spec = EmbeddingSpec.from_settings(settings)
    collection = collection_name(settings.collection_prefix, settings.model, settings.dimension)
    return replace(version_for(spec, settings), origin="adopted", collection=collection)


def ensure_initial(versions: Versions, store: MilvusStore) -> Version:
    """The live version; the first call adopts the settings' spec and its existing collection."""
    live = versions.live()
    if live is not None:
        return live
    settings = versions.settings
    version = _adoptable(settings)
    store.ensure_collection(settings.model, settings.dimension)
    _point(store, version.alias, version.collection)
    _point(store, live_alias(settings), version.collection)
    versions.save(version)
    for job_id in versions.jobs_of(version):
        versions.add_job(version.id, job_id)
    versions.r.set(versions.keys.version_pointer("live"), version.id)
    return version


def _point(store: MilvusStore, alias: str, collection: str) -> None:
    """Create ``alias`` on ``collection``, or switch it there atomically when it exists."""
    store.point_alias(alias, collection, exists=store.has_alias(alias))


@dataclass(frozen=True, slots=True)
class ReembedPlan:
    """What a re-embed does and costs."""

    source: Version
    target: Version
    items: list[Item]
    media_s: float
    quota_s: float
    """Seconds the quota (``rate_limit_per_min`` creates a minute) needs for the tasks."""

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.source.id, "to": self.target.id, "collection": self.target.collection,
                "items": len(self.items), "tasks": len(self.items),
                "media_minutes": round(self.media_s / 60, 1), "quota_s": round(self.quota_s, 1)}


def plan_reembed(versions: Versions, store: MilvusStore, model: str, dimension: int | None,
                 options: Sequence[str] | None) -> ReembedPlan:
    """Check the request and count what it would pay for (nothing is created)."""
    live = versions.live() or _adoptable(versions.settings)
    spec = plan_spec(live.spec, model, dimension, options)
    target = version_for(spec, versions.settings)
    if target.id == live.id:
        raise BadInputError(f"version {target.id} is the live version: nothing to re-embed")
    if versions.get(target.id) is not None:
        raise BadInputError(f"version {target.id} exists already (live: {live.id}); "
                            f"promote it, or drop it first: vidsearch versions drop {target.id}")
    building = versions.building()
    if building is not None:
        raise BadInputError(f"a re-embed into {building.id} is running; promote or drop it first")
    wanted = [i for i in versions.items(live, store) if i.state != "failed" and i.url]
    media_s = _media_seconds(store, live)
    quota_s = 60.0 * len(wanted) / versions.settings.rate_limit_per_min
    return ReembedPlan(live, target, wanted, media_s, quota_s)


def _media_seconds(store: MilvusStore, version: Version) -> float:
    """Seconds of video behind the version's rows (the end of each video's last clip)."""
    ends: dict[str, float] = {}
    if not store.has_collection(version.collection):
        return 0.0
    for row in store.iter_rows(version.collection, equals("scope", "clip"), ["url", "end_s"]):
        url = str(row["url"])
        ends[url] = max(ends.get(url, 0.0), float(row["end_s"]))
    return sum(ends.values())


def start_reembed(versions: Versions, store: MilvusStore, jobs: JobStore, plan: ReembedPlan,
                  mode: SubmitMode) -> str:
    """Create the version's collection and alias, and one job over the live version's items."""
    target = plan.target
    ensure_initial(versions, store)
    store.ensure_named(target.collection, target.dimension)
    _point(store, target.alias, target.collection)
    versions.save(target)
    versions.r.set(versions.keys.version_pointer("building"), target.id)
    job_id = jobs.create_job([f"reembed:{plan.source.id}"], target.spec,
                             name=f"reembed {plan.source.id} -> {target.id}",
                             collection=target.collection)
    versions.add_job(target.id, job_id)
    batch = [Admission(item_key(i.url, target.spec), i.category, i.url, i.title, i.metadata)
             for i in plan.items]
    for start in range(0, len(batch), SUBMIT_BATCH):
        part = batch[start:start + SUBMIT_BATCH]
        jobs.submit_batch(job_id, part, mode)
        jobs.add_counts(job_id, lines=len(part))
    jobs.seal(job_id)
    return job_id


def promote(versions: Versions, store: MilvusStore, version_id: str,
            allow_partial_pct: float | None = None) -> Version:
    """Switch search to ``version_id`` after checking it is complete (or complete enough)."""
    live = ensure_initial(versions, store)
    target = versions.require(version_id)
    if target.id == live.id:
        raise BadInputError(f"version {target.id} is live already")
    have, wanted = versions.coverage(live, target, store)
    pct = 100.0 * have / wanted if wanted else 100.0
    needed = 100.0 if allow_partial_pct is None else allow_partial_pct
    if pct < needed:
        raise BadInputError(
            f"version {target.id} is incomplete: {have} of {wanted} videos of {live.id} "
            f"({pct:.1f}%); wait for its re-embed or pass --allow-partial {int(pct)}")
    _point(store, live_alias(versions.settings), target.collection)
    versions.switch(target.id, live.id, clear_building=versions.pointer("building") == target.id)
    return target


def rollback(versions: Versions, store: MilvusStore) -> Version:
    """Switch search back to the version live before the last promotion."""
    live = ensure_initial(versions, store)
    previous_id = versions.pointer("previous")
    previous = versions.get(previous_id) if previous_id else None
    if previous is None:
        raise BadInputError("nothing to roll back to: no earlier live version")
    _point(store, live_alias(versions.settings), previous.collection)
    versions.switch(previous.id, live.id, clear_building=False)
    return previous


def drop(versions: Versions, store: MilvusStore, jobs: JobStore, version_id: str) -> Version:
    """Remove a version that is not live: its alias, its collection and its record."""
    version = versions.require(version_id)
    if version.id == versions.pointer("live"):
        raise BadInputError(f"version {version.id} is live: promote another one before dropping it")
    running = [j for j in versions.job_ids(version.id)
               if (job := jobs.get_job(j)) is not None and not job.finished]
    if running:
        raise BadInputError(f"version {version.id} still has running jobs ({', '.join(running)}); "
                            "wait for them to finish")
    store.drop_alias(version.alias)
    if store.has_collection(version.collection):
        store.drop(version.collection)
    pipe = versions.r.pipeline(transaction=True)
    pipe.hdel(versions.keys.versions, version.id)
    pipe.delete(versions.keys.version_jobs(version.id))
    pipe.execute()
    for pointer in ("previous", "building"):
        if versions.pointer(pointer) == version.id:
            versions.r.delete(versions.keys.version_pointer(pointer))
    return version


def ingest_targets(versions: Versions) -> list[Version]:
    """The versions a new ingest embeds for: none before versions exist (the settings' spec),
    else the live one and, while a re-embed runs, the one being built."""
    live = versions.live()
    if live is None:
        return []
    building = versions.building()
    return [live] + ([building] if building and building.id != live.id else [])
