"""Embed API v1 (deprecated, still in the SDK) through the real SDK."""

from __future__ import annotations

import pytest
from twelvelabs import TwelveLabs
from twelvelabs.errors import BadRequestError

from tests.vidsearch.sandbox.conftest import video_url, video_url_lasting, wait_done


def v1_done(client: TwelveLabs, task_id: str):
    status = wait_done(lambda: client.embed.tasks.status(task_id))
    assert status.status == "ready", status
    return status


def test_v1_marengo27_task_gives_1024_dims_and_drops_a_last_clip_under_2s(client: TwelveLabs):
    task = client.embed.tasks.create(model_name="Marengo-retrieval-2.7",
                                     video_url=video_url_lasting(31, "owl"), video_start_offset_sec=0,
                                     video_end_offset_sec=31,
                                     video_clip_length=6, video_embedding_scope=["clip", "video"])
    status = v1_done(client, task.id)
    assert status.model_name == "Marengo-retrieval-2.7"
    assert status.video_embedding.metadata.video_embedding_scope == ["clip", "video"]
    result = client.embed.tasks.retrieve(task.id, embedding_option=["visual-text"])
    segments = result.video_embedding.segments
    clips = [s for s in segments if s.embedding_scope == "clip"]
    assert [(s.start_offset_sec, s.end_offset_sec) for s in clips][-1] == (24, 30)
    assert {len(s.float_) for s in segments} == {1024}
    assert {s.embedding_option for s in segments} == {"visual-text"}
    assert [s.embedding_scope for s in segments].count("video") == 1


def test_v1_marengo30_task_gives_512_dims(client: TwelveLabs):
    task = client.embed.tasks.create(model_name="marengo3.0", video_url=video_url("fox"))
    v1_done(client, task.id)
    segments = client.embed.tasks.retrieve(task.id).video_embedding.segments
    assert segments and {len(s.float_) for s in segments} == {512}
    assert {s.embedding_scope for s in segments} == {"clip"}


def test_v1_text_embedding_dimension_follows_the_model(client: TwelveLabs):
    e27 = client.embed.create(model_name="Marengo-retrieval-2.7", text="a dog")
    e30 = client.embed.create(model_name="marengo3.0", text="a dog")
    assert len(e27.text_embedding.segments[0].float_) == 1024
    assert len(e30.text_embedding.segments[0].float_) == 512


def test_v1_list_and_wait_for_done_work(client: TwelveLabs):
    task = client.embed.tasks.create(model_name="marengo3.0", video_url=video_url("heron"))
    done = client.embed.tasks.wait_for_done(task.id, sleep_interval=0.1)
    assert done.status == "ready"
    assert task.id in [t.id for t in client.embed.tasks.list(page_limit=50)]


def test_v1_bad_clip_length_and_unknown_model_are_400(client: TwelveLabs):
    with pytest.raises(BadRequestError):
        client.embed.tasks.create(model_name="marengo3.0", video_url=video_url("x"), video_clip_length=11)
    with pytest.raises(BadRequestError):
        client.embed.tasks.create(model_name="Marengo-retrieval-9", video_url=video_url("x"))
