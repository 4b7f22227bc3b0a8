"""Embeddings carry meaning: concept queries rank the matching video (and scene) first."""

from __future__ import annotations

import json
import uuid

import numpy as np
from twelvelabs import TwelveLabs

from tests.vidsearch.sandbox.conftest import embed_video, sdk, text_query, wait_done


def best_score(query: np.ndarray, data) -> float:
    return max(float(query @ np.array(d.embedding)) for d in data)


def test_concept_query_ranks_the_matching_video_first(client: TwelveLabs):
    tag = uuid.uuid4().hex[:6]
    urls = {
        "dog": f"https://cdn.example.com/{tag}/surfing-dog-at-the-beach.mp4",
        "city": f"https://cdn.example.com/{tag}/city_traffic_at_night.mp4",
        "food": f"https://cdn.example.com/{tag}/cooking.pasta.in-a-kitchen.mp4",
    }
    for model in ("marengo3.0", "marengo3.5"):
        videos = {name: embed_video(client, url, model) for name, url in urls.items()}
        query = text_query(client, "surfing dog", model)
        scores = {name: best_score(query, data) for name, data in videos.items()}
        assert max(scores, key=lambda k: scores[k]) == "dog", scores
        assert scores["dog"] > 0.5 > max(scores["city"], scores["food"]) + 0.3


def test_models_live_in_unrelated_spaces(client: TwelveLabs):
    q30 = text_query(client, "surfing dog", "marengo3.0")
    q35 = text_query(client, "surfing dog", "marengo3.5")
    assert abs(float(q30 @ q35)) < 0.3


def test_with_a_catalog_the_scene_holding_the_words_ranks_above_other_segments(own_sandbox, tmp_path):
    url = "https://media.example.org/library/clip-0001.mp4"
    catalog = {url: {"duration": 60, "title": "Summer holiday",
                     "scenes": [{"start": 0, "end": 20, "words": ["city", "traffic"]},
                                {"start": 20, "end": 40, "words": "surfing dog waves"},
                                {"start": 40, "end": 60, "words": ["sunset", "picnic"]}]}}
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog))
    service = own_sandbox("--speed", "50", "--catalog", str(path))
    client = sdk(service)
    data = embed_video(client, url)
    assert [(d.start_sec, d.end_sec) for d in data][-1] == (50, 60), "catalog duration wins"
    query = text_query(client, "surfing dog")
    ranked = sorted(data, key=lambda d: -float(query @ np.array(d.embedding)))
    assert {(d.start_sec, d.end_sec) for d in ranked[:2]} == {(20, 30), (30, 40)}


def test_yaml_catalog_error_makes_the_task_fail_with_its_message(own_sandbox, tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text("https://media.example.org/broken.mp4:\n  duration: 30\n"
                    "  error: 'File size (33.6 MB) exceeds maximum limit of 32 MB'\n")
    client = sdk(own_sandbox("--speed", "50", "--catalog", str(path)))
    task = client.embed.v_2.tasks.create(
        input_type="video", model_name="marengo3.0",
        video={"media_source": {"url": "https://media.example.org/broken.mp4"}})
    done = wait_done(lambda: client.embed.v_2.tasks.retrieve(task.id))
    assert done.status == "failed" and "32 MB" in done.error.message
