"""Model versions: ids, collections, spec checks, the ledger reads, the ingest targets and the query
embedding cache per version (Redis, the sandbox)."""

from __future__ import annotations

import uuid
from functools import partial

import pytest
import redis

from pipeline.errors import BadInputError
from pipeline.ingest.writer import assemble_batches
from pipeline.ledger.store import Admission, JobStore, SubmitMode
from pipeline.milvus.store import MilvusStore
from pipeline.search.searcher import Searcher
from pipeline.segments import Segment
from pipeline.settings import Settings
from pipeline.spec import EmbeddingSpec, item_key
from pipeline.state.keys import Keys
from pipeline.twelvelabs import TwelveLabsGateway
from pipeline.versions import Versions, ingest_targets, plan_spec, version_for
from tests.stack import Service, sandbox_stats

BASE = Settings(_env_file=None)  # type: ignore[call-arg]
SPEC = EmbeddingSpec.from_settings(BASE)


def test_a_version_is_named_by_model_and_dimension_with_its_own_collection_and_alias() -> None:
    spec = plan_spec(SPEC, "marengo3.5", 256, None)
    version = version_for(spec, BASE)
    assert version.id == "marengo3.5-256"
    assert version.collection == "vidsearch_marengo3_5_d256"
    assert version.alias == "vidsearch_v_marengo3_5_256"
    assert (spec.model, spec.dimension, spec.options) == ("marengo3.5", 256, SPEC.options)


def test_the_settings_spec_keeps_the_collection_it_always_had() -> None:
    version = version_for(SPEC, BASE)
    assert version.id == "marengo3.0-512"
    assert version.collection == "vidsearch_marengo3_0_d512"


def test_other_options_are_another_version_and_another_collection() -> None:
    plain = version_for(plan_spec(SPEC, "marengo3.5", 256, None), BASE)
    visual = version_for(plan_spec(SPEC, "marengo3.5", 256, ["visual"]), BASE)
    assert visual.id.startswith("marengo3.5-256-") and visual.id != plain.id
    assert visual.collection != plain.collection


@pytest.mark.parametrize(("model", "dimension", "options", "says"), [
    ("marengo9", None, None, "unknown model"),
    ("marengo3.5", 300, None, "dimension"),
    ("marengo3.0", 256, None, "dimension"),
    ("marengo3.5", 256, ["transcription"], "transcription"),
])
def test_an_impossible_spec_is_bad_input_naming_the_problem(
    model: str, dimension: int | None, options: list[str] | None, says: str
) -> None:
    with pytest.raises(BadInputError, match=says):
        plan_spec(SPEC, model, dimension, options)


def test_the_query_cache_key_without_a_version_keeps_its_form() -> None:
    assert Keys("vs").qcache("marengo3.0", 512, "d") == "vs:qcache:marengo3.0:512:d"


def _segment(collection: str) -> Segment:
    return Segment(pk="p", item_key="k", job_id="j", url="u", category="c", title="t",
                   metadata="{}", model="marengo3.5", option="visual", scope="clip",
                   start_s=0.0, end_s=6.0, vector=b"\0" * 1024, collection=collection)


def test_a_segment_carries_its_version_collection_through_the_stream() -> None:
    with_collection = _segment("vidsearch_marengo3_5_d256")
    assert Segment.from_fields(with_collection.to_fields()).collection == "vidsearch_marengo3_5_d256"
    plain = _segment("")
    assert b"cl" not in plain.to_fields()
    assert Segment.from_fields(plain.to_fields()).collection == ""


def test_batches_never_mix_collections() -> None:
    a, b = _segment("col_a"), _segment("col_b")
    b.pk = "q"
    batches = assemble_batches([("1-0", a), ("2-0", b)], max_rows=100, max_bytes=10**9)
    assert sorted(batch.collection for batch in batches) == ["col_a", "col_b"]


# --- Redis ------------------------------------------------------------------------------------------
def _ingested(jobs: JobStore, spec: EmbeddingSpec, urls: list[str], done: int) -> str:
    """A job of ``spec`` whose items were admitted; the first ``done`` of them are done."""
    job_id = jobs.create_job(["m.csv"], spec)
    batch = [Admission(item_key(u, spec), "news", u, u.rsplit("/", 1)[-1]) for u in urls]
    jobs.submit_batch(job_id, batch, SubmitMode())
    jobs.seal(job_id)
    admitted = jobs.admit(len(urls), 1e12)
    for key in admitted[:done]:
        jobs.r.hset(jobs.keys.item(key), "s", "done")
    return job_id


@pytest.fixture
def versions(redis_client: redis.Redis) -> Versions:
    return Versions(redis_client, Keys(f"t{uuid.uuid4().hex[:6]}"), BASE)


def test_a_versions_items_come_from_the_ledger_of_its_jobs(versions: Versions) -> None:
    jobs = JobStore(versions.r, versions.keys)
    urls = [f"https://cdn.example.com/v{i}.mp4" for i in range(5)]
    _ingested(jobs, SPEC, urls[:3], done=3)
    _ingested(jobs, SPEC, urls[2:], done=1)  # v2 again (skipped): counted once; v4 not done
    other = plan_spec(SPEC, "marengo3.5", 256, None)
    _ingested(jobs, other, urls[:1], done=1)
    live = version_for(SPEC, BASE)
    assert sorted(i.url for i in versions.items(live)) == urls
    progress = versions.progress(live)
    assert (progress.items, progress.done) == (5, 4)
    target = version_for(other, BASE)
    assert versions.coverage(live, target) == (1, 4)


def test_ingests_go_to_the_live_version_and_the_one_being_built(versions: Versions) -> None:
    assert ingest_targets(versions) == []
    live = version_for(SPEC, BASE)
    target = version_for(plan_spec(SPEC, "marengo3.5", 256, None), BASE)
    for version in (live, target):
        versions.save(version)
    versions.r.set(versions.keys.version_pointer("live"), live.id)
    assert [v.id for v in ingest_targets(versions)] == [live.id]
    versions.r.set(versions.keys.version_pointer("building"), target.id)
    assert [v.id for v in ingest_targets(versions)] == [live.id, target.id]
    versions.switch(target.id, live.id, clear_building=True)
    assert [v.id for v in ingest_targets(versions)] == [target.id]
    assert versions.pointer("previous") == live.id


def _sync_embeds(sandbox: Service) -> int:
    """Sync embeds the sandbox answered (``POST /embed-v2``, status 200)."""
    return int(sandbox_stats(sandbox)["requests"].get("POST /embed-v2", {}).get("200", 0))


def test_query_embeddings_are_cached_per_version(
    redis_client: redis.Redis, redis_url: str, sandbox_service: Service
) -> None:
    settings = Settings(_env_file=None, redis_url=redis_url,  # type: ignore[call-arg]
                        redis_prefix=f"t{uuid.uuid4().hex[:6]}",
                        twelvelabs_base_url=f"{sandbox_service.url}/v1.3")
    gateway, store = TwelveLabsGateway(settings), MilvusStore(settings)
    spec_a = plan_spec(SPEC, "marengo3.5", 256, None)
    spec_b = plan_spec(SPEC, "marengo3.5", 256, ["visual"])  # same model and dimension, another version

    def searcher(spec: EmbeddingSpec) -> Searcher:
        embed = partial(gateway.embed_part, spec=spec)
        return Searcher(settings, redis_client, store, embed, version_for(spec, settings))

    before = _sync_embeds(sandbox_service)
    first = searcher(spec_a).embed_query("red kite")
    assert _sync_embeds(sandbox_service) == before + 1
    again = searcher(spec_a).embed_query("red kite")  # a new searcher: served from Redis (float32)
    assert again == pytest.approx(first, abs=1e-6)
    assert _sync_embeds(sandbox_service) == before + 1
    searcher(spec_b).embed_query("red kite")  # not from version A's entry
    assert _sync_embeds(sandbox_service) == before + 2
    searcher(spec_b).embed_query("red kite")
    assert _sync_embeds(sandbox_service) == before + 2


def test_an_unknown_version_is_bad_input_listing_the_known_ones(versions: Versions) -> None:
    versions.save(version_for(SPEC, BASE))
    with pytest.raises(BadInputError, match=r"marengo3\.0-512"):
        versions.require("marengo3.5-128")
