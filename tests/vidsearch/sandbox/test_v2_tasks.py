"""Embed API v2 through the real SDK: create, retrieve, list, sync embeds, segments, dimensions."""

from __future__ import annotations

import itertools
import math

import pytest
from twelvelabs import TwelveLabs
from twelvelabs.errors import NotFoundError
from twelvelabs.types import (
    AsyncTemporalSegmentation,
    AsyncVideoInputRequest,
    MediaSource,
    MultiInputRequest,
    TemporalSegmentation_Fixed,
    TemporalSegmentationFixedFixed,
    TextInputRequest,
    VideoSegmentation_Dynamic,
    VideoSegmentation_Fixed,
    VideoSegmentationDynamicDynamic,
    VideoSegmentationFixedFixed,
)

from tests.vidsearch.sandbox.conftest import http, v2_body, video_url, wait_done


def create(client: TwelveLabs, url: str, model: str = "marengo3.0", **kwargs):
    video_keys = {"segmentation", "embedding_option", "embedding_scope", "start_sec", "end_sec"}
    video = {k: kwargs.pop(k) for k in list(kwargs) if k in video_keys}
    return client.embed.v_2.tasks.create(
        input_type="video", model_name=model,
        video=AsyncVideoInputRequest(media_source=MediaSource(url=url), **video), **kwargs,
    )


def ready(client: TwelveLabs, task_id: str):
    result = wait_done(lambda: client.embed.v_2.tasks.retrieve(task_id))
    assert result.status == "ready", result
    return result


def fixed(seconds: int) -> VideoSegmentation_Fixed:
    return VideoSegmentation_Fixed(fixed=VideoSegmentationFixedFixed(duration_sec=seconds))


def test_create_answers_202_processing_then_ready_with_data_and_metadata(client: TwelveLabs, base: str):
    raw = http("POST", f"{base}/v1.3/embed-v2/tasks", v2_body(video_url("dog")))
    assert raw.status == 202
    assert raw.body["status"] == "processing" and raw.body["data"] is None
    assert raw.headers["location"].endswith(f"/v1.3/embed-v2/tasks/{raw.body['_id']}")
    first = client.embed.v_2.tasks.retrieve(raw.body["_id"])
    assert first.status == "processing" and first.data is None
    done = ready(client, raw.body["_id"])
    meta = done.metadata
    assert meta.input_type == "video" and meta.duration > 0
    assert meta.embedding_options == ["visual", "audio", "transcription"]
    assert meta.embedding_scopes == ["clip", "asset"]
    assert done.created_at is not None and done.updated_at >= done.created_at


def test_marengo30_defaults_are_dynamic_min_4_three_options_clip_and_asset(client: TwelveLabs):
    done = ready(client, create(client, video_url("park")).id)
    clips = [d for d in done.data if d.embedding_scope == "clip" and d.embedding_option == "visual"]
    lengths = [d.end_sec - d.start_sec for d in clips]
    assert all(n >= 4 - 1e-6 for n in lengths), lengths
    assert len({round(n, 1) for n in lengths}) > 1, "dynamic segments vary in length"
    assets = [d for d in done.data if d.embedding_scope == "asset"]
    assert sorted(d.embedding_option for d in assets) == ["audio", "transcription", "visual"]
    assert len(done.data) == 3 * len(clips) + 3
    assert {len(d.embedding) for d in done.data} == {512}


def test_fixed_clips_are_contiguous_cover_start_to_end_and_last_may_be_shorter(client: TwelveLabs):
    task = create(client, video_url("river"), segmentation=fixed(5), start_sec=3, end_sec=15,
                  embedding_option=["visual"], embedding_scope=["clip"])
    done = ready(client, task.id)
    spans = [(d.start_sec, d.end_sec) for d in done.data]
    assert spans == [(3, 8), (8, 13), (13, 15)]
    assert {d.embedding_scope for d in done.data} == {"clip"}
    assert done.metadata.clip_length == 5


def test_dynamic_segments_respect_the_minimum_and_cover_the_range(client: TwelveLabs):
    seg = VideoSegmentation_Dynamic(dynamic=VideoSegmentationDynamicDynamic(min_duration_sec=3))
    done = ready(client, create(client, video_url("lake"), segmentation=seg,
                                embedding_option=["audio"], embedding_scope=["clip"]).id)
    spans = [(d.start_sec, d.end_sec) for d in done.data]
    assert spans[0][0] == 0 and math.isclose(spans[-1][1], done.metadata.duration)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert all(end - start >= 3 - 1e-6 for start, end in spans)


def test_marengo35_defaults_to_512_dims_visual_audio_and_temporal_dynamic_min_2(client: TwelveLabs):
    done = ready(client, create(client, video_url("forest"), model="marengo3.5").id)
    assert {len(d.embedding) for d in done.data} == {512}
    assert done.metadata.embedding_options == ["visual", "audio"]
    clips = [d for d in done.data if d.embedding_scope == "clip"]
    assert min(d.end_sec - d.start_sec for d in clips) >= 2 - 1e-6
    assert done.metadata.embedding_dimension == 512


@pytest.mark.parametrize("dim", [128, 256])
def test_marengo35_dimension_is_a_renormalized_prefix_of_the_512_vector(client: TwelveLabs, dim: int):
    url = video_url("mountain", "bike")
    seg = AsyncTemporalSegmentation(
        temporal=TemporalSegmentation_Fixed(fixed=TemporalSegmentationFixedFixed(duration_sec=10)))
    full = ready(client, create(client, url, model="marengo3.5", segmentation=seg).id)
    short_task = create(client, url, model="marengo3.5", segmentation=seg, embedding_dimension=dim)
    assert short_task.metadata.embedding_dimension == dim
    short = ready(client, short_task.id)
    assert short.metadata.embedding_dimension == dim
    assert full.data and {len(a.embedding) for a in full.data} == {512}
    for a, b in zip(full.data, short.data, strict=True):
        assert len(b.embedding) == dim
        head = a.embedding[:dim]
        norm = math.sqrt(sum(x * x for x in head))
        assert all(math.isclose(x / norm, y, abs_tol=1e-6) for x, y in zip(head, b.embedding, strict=True))
        assert math.isclose(sum(y * y for y in b.embedding), 1.0, rel_tol=1e-5)


def test_the_same_input_gives_the_same_vectors(client: TwelveLabs):
    url = video_url("same", "input")
    one = ready(client, create(client, url, segmentation=fixed(6)).id)
    two = ready(client, create(client, url, segmentation=fixed(6)).id)
    assert [d.embedding for d in one.data] == [d.embedding for d in two.data]
    query = client.embed.v_2.create(input_type="text", model_name="marengo3.0",
                                    text=TextInputRequest(input_text="red kite"))
    again = client.embed.v_2.create(input_type="text", model_name="marengo3.0",
                                    text=TextInputRequest(input_text="red kite"))
    assert query.data[0].embedding == again.data[0].embedding


def test_every_vector_is_unit_norm(client: TwelveLabs):
    done = ready(client, create(client, video_url("norms")).id)
    assert all(math.isclose(sum(x * x for x in d.embedding), 1.0, rel_tol=1e-5) for d in done.data)


def test_unknown_task_id_is_404_not_found(client: TwelveLabs):
    with pytest.raises(NotFoundError) as err:
        client.embed.v_2.tasks.retrieve("000000000000000000000000")
    assert err.value.status_code == 404
    assert err.value.body["code"] == "resource_not_exist"


def test_web_page_url_is_accepted_then_fails_with_a_reason(client: TwelveLabs):
    task = create(client, "https://www.youtube.com/watch?v=dQw4w9WgXcQ")
    assert task.status == "processing"
    done = wait_done(lambda: client.embed.v_2.tasks.retrieve(task.id))
    assert done.status == "failed" and done.data is None
    assert "failed to fetch or materialize source media" in done.error.message
    assert "not a media file" in done.error.message
    page_id = create(client, "https://example.com/about/index.html").id
    page = wait_done(lambda: client.embed.v_2.tasks.retrieve(page_id))
    assert page.status == "failed"


def test_list_is_newest_first_and_the_pager_ends(client: TwelveLabs):
    ids = [create(client, video_url("lister", str(i))).id for i in range(3)]
    seen = [t.id for t in client.embed.v_2.tasks.list(page_limit=2)]
    assert seen[:3] == ids[::-1]
    assert len(seen) == len(set(seen))


def test_a_page_past_the_end_is_empty_and_page_limit_over_50_is_400(base: str):
    raw = http("GET", f"{base}/v1.3/embed-v2/tasks?page=100000&page_limit=50")
    assert raw.status == 200 and raw.body["data"] == []
    assert raw.body["page_info"]["page"] == 100000
    assert http("GET", f"{base}/v1.3/embed-v2/tasks?page_limit=51").status == 400


def test_list_items_carry_the_input_url_for_reconciliation(client: TwelveLabs):
    url = video_url("reconcile", "me")
    task_id = create(client, url).id
    found = [t for t in client.embed.v_2.tasks.list(page_limit=50)  # audio tasks have no video_embedding
             if t.video_embedding and t.video_embedding.metadata.input_url == url]
    assert [t.id for t in found] == [task_id]
    assert found[0].model_name == "marengo3.0" and found[0].created_at is not None


def test_list_filters_by_status(client: TwelveLabs):
    task_id = create(client, "https://example.com/notes.txt").id
    wait_done(lambda: client.embed.v_2.tasks.retrieve(task_id))
    failed = client.embed.v_2.tasks.list(status="failed", page_limit=50)
    statuses = {t.status for t in failed}
    assert statuses == {"failed"}
    assert task_id in {t.id for t in failed}


def test_routes_answer_both_under_v13_and_bare(base: str):
    created = http("POST", f"{base}/embed-v2/tasks", v2_body(video_url("bare")))
    assert created.status == 202
    task_id = created.body["_id"]
    assert http("GET", f"{base}/embed-v2/tasks/{task_id}").status == 200
    assert http("GET", f"{base}/v1.3/embed-v2/tasks/{task_id}").status == 200
    assert http("GET", f"{base}/embed-v2/tasks?page=1").status == 200


def test_sync_text_embedding_on_30_and_multi_input_on_35(client: TwelveLabs):
    q30 = client.embed.v_2.create(input_type="text", model_name="marengo3.0",
                                  text=TextInputRequest(input_text="a dog"))
    assert len(q30.data) == 1 and len(q30.data[0].embedding) == 512
    q35 = client.embed.v_2.create(input_type="multi_input", model_name="marengo3.5",
                                  multi_input=MultiInputRequest(input_text="a dog"),
                                  embedding_dimension=128)
    assert len(q35.data[0].embedding) == 128
    assert q35.metadata.embedding_dimension == 128
