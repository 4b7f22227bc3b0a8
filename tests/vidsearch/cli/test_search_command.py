"""``vidsearch search`` as a process: every bad query is one clear line and exit 2; --json prints
video hits (with moments), --like finds neighbours, against the real stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.settings import Settings, env_name
from tests.search_library import library

LIB = "https://media.example.org/cli"
SURF = f"{LIB}/surf.mp4"
DOG = f"{LIB}/dog.mp4"
CITY = f"{LIB}/city.mp4"
CATALOG = {
    SURF: {"duration": 42, "title": "Holiday", "scenes": [
        {"start": 0, "end": 9, "words": "city traffic"},
        {"start": 9, "end": 27, "words": "surfing dog wave"},
        {"start": 27, "end": 42, "words": "sunset picnic"}]},
    DOG: {"duration": 24, "scenes": [{"start": 0, "end": 24, "words": "surfing dog beach"}]},
    CITY: {"duration": 24, "scenes": [{"start": 0, "end": 24, "words": "city traffic night"}]},
}
CLIP = "https://media.example.org/q/example.mp4"


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VIDSEARCH_", "TWELVE"))}
    return subprocess.run([sys.executable, "-m", "vidsearch", "search", *args],
                          env={**base, **env}, capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.mark.parametrize(("args", "message"), [
    ((), "nothing to search for"),
    (("   ",), "nothing to search for"),
    (("dog", "--weights", "text=abc"), "weight text must be a number"),
    (("dog", "--weights", "text=-1"), "must be a finite number >= 0"),
    (("dog", "--weights", "text"), "name=weight pairs"),
    (("dog", "--weights", "clip=1"), "weights given for clip"),
    (("dog", "--modality-weights", "visual=1,smell=2"), "unknown modality weights smell"),
    (("dog", "--modality-weights", "audio=x"), "weight audio must be a number"),
    (("--clip", CLIP, "--clip-start", "10", "--clip-end", "10"), "clip range is empty"),
    (("--clip", CLIP, "--clip-start", "5", "--clip-end", "2"), "clip range is empty"),
    (("--clip", CLIP, "--clip-end", "700"), "longer than the 600 s"),
    (("--clip", CLIP, "--clip-start", "abc"), "clip_start must be a number"),
    (("--clip", "file:///tmp/clip.mp4"), "clip must be an http(s) URL"),
    (("--image", "ftp://example.org/dog.jpg"), "image must be an http(s) URL"),
    (("--like", "example.org/dog.mp4"), "like must be an http(s) URL"),
    (("dog", "--clip-end", "5"), "a clip range needs a clip URL"),
    (("dog", "--at", "5"), "--at needs --like"),
    (("dog", "--like", SURF), "--like cannot be combined"),
    (("dog", "--top-k", "0"), "top_k must be between"),
    (("dog", "--moments", "--segments"), "exclude each other"),
    (("dog", "--option", "smell"), "unknown option"),
])
def test_a_bad_query_is_one_clear_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    proc = run(*args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, redis_url: str, milvus_uri: str
        ) -> Iterator[dict[str, str]]:
    root: Path = tmp_path_factory.mktemp("cli-search")
    videos = {SURF: "sports", DOG: "pets", CITY: "news"}
    settings, sandbox = library(root, redis_url, milvus_uri, CATALOG, videos)
    yield _env(settings)
    sandbox.stop()


def _env(settings: Settings) -> dict[str, str]:
    names = ("redis_url", "milvus_uri", "twelvelabs_base_url", "collection_prefix", "redis_prefix")
    return {env_name(n): str(getattr(settings, n)) for n in names}


def test_json_lists_video_hits_with_their_moments(env: dict[str, str]) -> None:
    proc = run("surfing dog wave", "--moments", "--json", **env)
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    assert [h["url"] for h in hits][:2] == [SURF, DOG]
    top = hits[0]
    assert {"url", "title", "category", "score", "start_s", "end_s", "moments"} <= set(top)
    assert (top["start_s"], top["end_s"]) == (6, 30), "the scene 9-27 s, stitched from segments"
    assert top["moments"][0] == {"start_s": 6, "end_s": 30, "score": top["score"]}


def test_json_without_moments_gives_the_best_segment(env: dict[str, str]) -> None:
    hits = json.loads(run("surfing dog wave", "--json", "--category", "sports", **env).stdout)
    assert [h["url"] for h in hits] == [SURF]
    assert hits[0]["end_s"] - hits[0]["start_s"] == 6 and hits[0]["moments"] == []


def test_like_finds_the_neighbours_and_never_the_video_itself(env: dict[str, str]) -> None:
    proc = run("--like", SURF, "--at", "15", "--json", **env)
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    assert hits[0]["url"] == DOG and SURF not in {h["url"] for h in hits}


def test_like_of_a_video_that_is_not_ingested_is_exit_2(env: dict[str, str]) -> None:
    proc = run("--like", f"{LIB}/never-ingested.mp4", **env)
    assert proc.returncode == 2
    assert "not ingested" in proc.stderr and "Traceback" not in proc.stderr


def test_the_table_shows_hits_and_a_clip_query_works(env: dict[str, str]) -> None:
    proc = run("--clip", DOG, "--clip-start", "0", "--clip-end", "12", "--top-k", "2", **env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:2] == ["score", "time"]
    assert DOG in lines[1]


def test_the_floor_hides_unrelated_videos_says_so_on_stderr_and_can_be_lifted(env: dict[str, str]) -> None:
    floored = run("surfing dog wave", "--json", "--category", "news", **env)
    assert floored.returncode == 0, floored.stderr
    assert json.loads(floored.stdout) == []
    assert "1 hit(s) scored below the floor 0.25 not shown" in floored.stderr
    assert "nothing cleared the floor" in floored.stderr and CITY in floored.stderr
    lifted = json.loads(run("surfing dog wave", "--json", "--category", "news", "--min-score", "-1",
                            **env).stdout)
    assert [h["url"] for h in lifted] == [CITY] and lifted[0]["score"] < 0.25


def test_a_floor_out_of_range_is_exit_2(env: dict[str, str]) -> None:
    proc = run("dog", "--min-score", "1.5", **env)
    assert proc.returncode == 2 and "min_score must be between -1 and 1" in proc.stderr
