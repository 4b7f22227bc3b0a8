"""Sync embeds of clips, images and text_image carry the catalog's meaning; scenes carry words per
modality; the sync limits answer 400 (the SDK's BadRequestError)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from twelvelabs import TwelveLabs
from twelvelabs.errors import BadRequestError
from twelvelabs.types import (
    ImageInputRequest,
    MediaSource,
    MultiInputMediaSource,
    MultiInputRequest,
    TextImageInputRequest,
    VideoInputRequest,
)

from tests.vidsearch.sandbox.conftest import embed_video, sdk, text_query

TARGET = "https://media.example.org/library/target-0001.mp4"
EXAMPLE = "https://media.example.org/queries/example-7.mp4"
PHOTO = "https://media.example.org/photos/IMG_2041.jpg"
CATALOG = {
    TARGET: {"duration": 60, "title": "Summer holiday",
             "scenes": [{"start": 0, "end": 20, "words": ["city", "traffic"]},
                        {"start": 20, "end": 40, "words": "surfing dog waves"},
                        {"start": 40, "end": 60, "words": ["stadium"], "audio": ["cheering"],
                         "speech": "what a goal"}]},
    EXAMPLE: {"duration": 30, "scenes": [{"start": 0, "end": 10, "words": "picnic"},
                                         {"start": 10, "end": 30, "words": "surfing dog"}]},
    PHOTO: {"title": "surfing dog waves"},
}


@pytest.fixture(scope="module")
def catalog_sdk(tmp_path_factory: pytest.TempPathFactory) -> TwelveLabs:
    from vidsearch.stack.services import start_sandbox

    root: Path = tmp_path_factory.mktemp("sync-media")
    path = root / "catalog.json"
    path.write_text(json.dumps(CATALOG))
    service = start_sandbox(root, args=["--speed", "50", "--catalog", str(path)])
    yield sdk(service)
    service.stop()


def clip_vectors(client: TwelveLabs, url: str, start: float | None, end: float | None):
    return client.embed.v_2.create(
        input_type="video", model_name="marengo3.0",
        video=VideoInputRequest(media_source=MediaSource(url=url), start_sec=start, end_sec=end,
                                embedding_option=["visual", "audio"], embedding_scope=["clip"]),
    ).data


def unit(vectors: list[np.ndarray]) -> np.ndarray:
    mean = np.mean(vectors, axis=0)
    return mean / np.linalg.norm(mean)


def ranked_ranges(query: np.ndarray, data) -> list[tuple[float, float]]:
    best: dict[tuple[float, float], float] = {}
    for d in data:
        key = (d.start_sec, d.end_sec)
        best[key] = max(best.get(key, -1.0), float(query @ np.array(d.embedding)))
    return sorted(best, key=lambda k: -best[k])


def test_a_sync_clip_answers_one_item_per_segment_and_option_of_its_range(catalog_sdk) -> None:
    data = clip_vectors(catalog_sdk, EXAMPLE, 10, 30)
    assert {(d.embedding_option, d.embedding_scope) for d in data} == {("visual", "clip"),
                                                                       ("audio", "clip")}
    assert min(d.start_sec for d in data) == 10 and max(d.end_sec for d in data) == 30


def test_a_clip_of_another_video_finds_the_scene_sharing_its_words(catalog_sdk) -> None:
    query = unit([np.array(d.embedding) for d in clip_vectors(catalog_sdk, EXAMPLE, 10, 30)])
    target = embed_video(catalog_sdk, TARGET)
    assert set(ranked_ranges(query, target)[:2]) == {(20, 30), (30, 40)}
    picnic = unit([np.array(d.embedding) for d in clip_vectors(catalog_sdk, EXAMPLE, 0, 10)])
    assert float(picnic @ query) < 0.5


def test_a_clip_outside_the_catalog_means_its_file_name(catalog_sdk) -> None:
    data = clip_vectors(catalog_sdk, "https://cdn.example.com/x/surfing-dog.mp4", 0, 12)
    query = unit([np.array(d.embedding) for d in data])
    assert float(query @ text_query(catalog_sdk, "surfing dog")) > 0.6
    assert float(query @ text_query(catalog_sdk, "city traffic")) < 0.2


def test_an_image_means_its_catalog_entry_or_its_file_name(catalog_sdk) -> None:
    def image(url: str) -> np.ndarray:
        result = catalog_sdk.embed.v_2.create(
            input_type="image", model_name="marengo3.0",
            image=ImageInputRequest(media_source=MediaSource(url=url)))
        return np.array(result.data[0].embedding)

    surfing = text_query(catalog_sdk, "surfing dog waves")
    assert float(image(PHOTO) @ surfing) > 0.9  # IMG_2041 says nothing; its entry does
    assert float(image("https://cdn.example.com/p/red-tractor.png") @
                 text_query(catalog_sdk, "red tractor")) > 0.9


def test_text_image_means_the_text_and_the_image_together(catalog_sdk) -> None:
    result = catalog_sdk.embed.v_2.create(
        input_type="text_image", model_name="marengo3.0",
        text_image=TextImageInputRequest(input_text="sunset",
                                         media_source=MediaSource(url=PHOTO)))
    vector = np.array(result.data[0].embedding)
    assert float(vector @ text_query(catalog_sdk, "sunset surfing dog waves")) > 0.9


def test_scene_words_of_one_modality_reach_only_that_option(catalog_sdk) -> None:
    data = [d for d in embed_video(catalog_sdk, TARGET, options=["visual", "audio"])
            if d.start_sec >= 40]
    cheering = text_query(catalog_sdk, "cheering")
    by_option = {d.embedding_option: float(cheering @ np.array(d.embedding)) for d in data}
    assert by_option["audio"] > by_option["visual"] + 0.3
    stadium = text_query(catalog_sdk, "stadium")
    scores = [float(stadium @ np.array(d.embedding)) for d in data]
    assert min(scores) > 0.4, "words keep working for every option"


def test_a_sync_clip_longer_than_ten_minutes_is_a_400(catalog_sdk) -> None:
    with pytest.raises(BadRequestError, match="exceeds maximum limit of 600"):
        clip_vectors(catalog_sdk, "https://cdn.example.com/x/long.mp4", 0, 601)


def test_a_sync_clip_of_a_web_page_is_a_400(catalog_sdk) -> None:
    with pytest.raises(BadRequestError, match="not a media file"):
        clip_vectors(catalog_sdk, "https://cdn.example.com/x/about.html", 0, 10)


def test_a_35_video_source_over_30_seconds_is_a_400(catalog_sdk) -> None:
    source = MultiInputMediaSource(name="q", media_type="video", url=TARGET)  # 60 s
    with pytest.raises(BadRequestError, match="maximum limit of 30"):
        catalog_sdk.embed.v_2.create(input_type="multi_input", model_name="marengo3.5",
                                     multi_input=MultiInputRequest(media_sources=[source]))
