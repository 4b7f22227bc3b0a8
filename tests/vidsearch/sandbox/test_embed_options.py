"""Embed API v2 options beyond separate video embeddings, through the real SDK over HTTP: audio
input, fused embeddings with time-based metadata, uncertainty vectors, ``usage`` on Marengo 3.5
task results, and the v1 API served as the real one is (deprecated in the docs only)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from twelvelabs import TwelveLabs
from twelvelabs.errors import BadRequestError

from tests.vidsearch.sandbox.conftest import http, text_query, video_url, wait_done
from vidsearch.sandbox.media import hashed_duration
from vidsearch.sandbox.validation import FUSED_NEEDS_METADATA

CLIP_10 = {"temporal": {"strategy": "fixed", "fixed": {"duration_sec": 10}}}


def ready(client: TwelveLabs, **create: Any) -> Any:
    task = client.embed.v_2.tasks.create(**create)
    done = wait_done(lambda: client.embed.v_2.tasks.retrieve(task.id))
    assert done.status == "ready", done
    return done


def refused(client: TwelveLabs, **create: Any) -> str:
    with pytest.raises(BadRequestError) as err:
        client.embed.v_2.tasks.create(**create)
    assert err.value.status_code == 400
    return str(err.value.body["message"])


def duration(url: str) -> float:
    return hashed_duration(url, 20.0, 180.0)


def test_audio_input_is_embedded_in_fixed_six_second_audio_segments_on_marengo30(client: TwelveLabs):
    url = video_url("radio", "interview")
    done = ready(client, input_type="audio", model_name="marengo3.0", audio={"media_source": {"url": url}})
    assert done.metadata.input_type == "audio" and done.metadata.duration == duration(url)
    clips = [d for d in done.data if d.embedding_scope == "clip"]
    assert {d.embedding_option for d in done.data} == {"audio", "transcription"}
    assert sorted({(d.start_sec, d.end_sec) for d in clips})[:2] == [(0.0, 6.0), (6.0, 12.0)]
    whole = {d.embedding_option for d in done.data if d.embedding_scope == "asset"}
    assert whole == {"audio", "transcription"}
    listed = next(t for t in client.embed.v_2.tasks.list(page_limit=50) if t.id == done.id)
    assert listed.audio_embedding is not None and listed.video_embedding is None
    assert listed.audio_embedding.metadata.audio_embedding_option == ["audio", "transcription"]


def test_audio_input_follows_each_models_rules(client: TwelveLabs):
    audio = {"media_source": {"url": video_url("podcast")}}
    done = ready(client, input_type="audio", model_name="marengo3.5", audio=audio)
    assert {d.embedding_option for d in done.data} == {"audio"}  # 3.5's default: audio only
    assert "transcription" in refused(client, input_type="audio", model_name="marengo3.5",
                                      audio={**audio, "embedding_option": ["transcription"]})
    dynamic = {"strategy": "dynamic", "dynamic": {"min_duration_sec": 3}}
    assert "fixed only" in refused(client, input_type="audio", model_name="marengo3.0",
                                   audio={**audio, "segmentation": dynamic})


def test_fused_embedding_on_marengo35_without_time_based_metadata_is_a_400(client: TwelveLabs):
    video = {"media_source": {"url": video_url("match")}, "embedding_option": ["visual", "audio"],
             "embedding_type": ["fused_embedding"]}
    assert refused(client, input_type="video", model_name="marengo3.5", video=video) == FUSED_NEEDS_METADATA


def test_time_based_metadata_folds_into_the_fused_embedding_of_the_segments_it_overlaps(client: TwelveLabs):
    url = video_url("football", "match")
    video = {"media_source": {"url": url}, "segmentation": CLIP_10, "embedding_scope": ["clip"],
             "embedding_option": ["visual", "audio"],
             "embedding_type": ["separate_embedding", "fused_embedding"],
             "time_based_metadata": [{"start": 12.0, "end": 12.0, "text": "penalty goal scored"}]}
    done = ready(client, input_type="video", model_name="marengo3.5", video=video)
    assert {d.embedding_option for d in done.data} == {"visual", "audio", "fused"}
    fused = {d.start_sec: np.array(d.embedding) for d in done.data if d.embedding_option == "fused"}
    query = text_query(client, "penalty goal scored", "marengo3.5")
    scores = {start: float(vec @ query) for start, vec in fused.items()}
    assert max(scores, key=scores.__getitem__) == 10.0  # the segment holding second 12
    assert scores[10.0] > 0.3 > max(s for start, s in scores.items() if start != 10.0)


def test_fused_embedding_alone_on_marengo30_needs_no_metadata(client: TwelveLabs):
    video = {"media_source": {"url": video_url("street")}, "embedding_option": ["visual", "audio"],
             "embedding_type": ["fused_embedding"], "embedding_scope": ["clip"]}
    done = ready(client, input_type="video", model_name="marengo3.0", video=video)
    assert {d.embedding_option for d in done.data} == {"fused"}


def test_time_based_metadata_needs_marengo35_and_fused_embedding(client: TwelveLabs):
    entries = [{"start": 0.0, "end": 5.0, "text": "kick off"}]
    base = {"media_source": {"url": video_url("game")}, "embedding_option": ["visual", "audio"],
            "time_based_metadata": entries}
    assert "only with marengo3.5" in refused(client, input_type="video", model_name="marengo3.0",
                                             video={**base, "embedding_type": ["fused_embedding"]})
    assert "requires the fused_embedding" in refused(client, input_type="video", model_name="marengo3.5",
                                                     video=base)


def test_embedding_uncertainty_gives_each_clip_a_vector_of_its_length_on_marengo35(client: TwelveLabs):
    video = {"media_source": {"url": video_url("lake")}, "segmentation": CLIP_10,
             "embedding_scope": ["clip"]}
    done = ready(client, input_type="video", model_name="marengo3.5", embedding_dimension=256,
                 embedding_uncertainty=True, video=video)
    for item in done.data:
        assert len(item.embedding) == len(item.embedding_uncertainty or []) == 256
        assert all(0 < u < 1 for u in item.embedding_uncertainty or [])


def test_embedding_uncertainty_is_refused_with_the_asset_scope_and_on_marengo30(client: TwelveLabs):
    video = {"media_source": {"url": video_url("lake")}}
    assert "asset" in refused(client, input_type="video", model_name="marengo3.5",
                              embedding_uncertainty=True, video=video)  # the default scopes hold asset
    assert "marengo3.5" in refused(client, input_type="video", model_name="marengo3.0",
                                   embedding_uncertainty=True, video={**video, "embedding_scope": ["clip"]})


def test_marengo35_task_results_carry_usage_and_marengo30_ones_do_not(client: TwelveLabs):
    url = video_url("harbour")
    done = ready(client, input_type="video", model_name="marengo3.5", video={"media_source": {"url": url}})
    assert done.usage is not None and done.usage.truncated is False
    assert done.usage.input_tokens == {"video": math.ceil(duration(url) * 10)}
    plain = ready(client, input_type="video", model_name="marengo3.0", video={"media_source": {"url": url}})
    assert plain.usage is None


def test_v1_is_deprecated_in_the_sdk_docs_and_served_without_a_wire_mark(client: TwelveLabs, base: str):
    for method in (client.embed.create, client.embed.tasks.create, client.embed.tasks.status,
                   client.embed.tasks.list):
        assert "will be deprecated in a future version" in (method.__doc__ or "")
    answer = http("GET", f"{base}/v1.3/embed/tasks?page=1")
    assert answer.status == 200
    assert not {"deprecation", "sunset", "warning"} & set(answer.headers)
    assert "deprecated" not in str(answer.body).lower()
