"""``vidsearch demo``: the bundled sample, the self-check of its searches, and one real run."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from pipeline.ingest.manifest import LineRules, ManifestLine, read_manifest
from pipeline.search.query import Query
from pipeline.search.results import SearchResult, VideoHit
from pipeline.settings import load_settings
from tests.stack import wait_for
from tests.vidsearch.api.test_page import chromium_path
from vidsearch.cli.demo import CATALOG, MANIFEST, SEARCHES, DemoSearch, _search
from vidsearch.sandbox.catalog import load
from vidsearch.stack.services import port_open

SAMPLE_URL = re.compile(r"^https://media\.example\.com/(?P<category>[a-z]+)/[a-z0-9]+(-[a-z0-9]+)+\.mp4$")
TIME_RANGE = re.compile(r"\d+\.\d-\s*\d+\.\d")
DEMO_SCREENSHOT_ENV = "VIDSEARCH_DEMO_SCREENSHOT"
"""Where to keep the demo page's screenshot (docs/page-results.png is made this way)."""
NEAR_SCREENSHOT_ENV = "VIDSEARCH_NEAR_SCREENSHOT"
"""Where to keep the near-misses screenshot (docs/page-near-misses.png)."""


def test_the_sample_manifest_is_60_plus_good_videos_in_5_plus_categories_all_in_the_catalog() -> None:
    records = list(read_manifest(MANIFEST, LineRules.from_settings(load_settings())))
    assert all(isinstance(r, ManifestLine) for r in records)
    lines = [r for r in records if isinstance(r, ManifestLine)]
    assert len(lines) >= 60
    assert len({line.url for line in lines}) == len(lines)
    assert len({line.category for line in lines}) >= 5
    for line in lines:
        match = SAMPLE_URL.match(line.url)
        assert match and match["category"] == line.category, line.url
    catalog = load(CATALOG)
    assert {line.url for line in lines} == set(catalog)
    assert all(len(entry.scenes) >= 2 and entry.duration for entry in catalog.values())


def test_each_demo_search_expects_exactly_one_sample_video() -> None:
    with MANIFEST.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for example in SEARCHES:
        matching = [row for row in rows if example.expect in row["url"]]
        assert len(matching) == 1, example
        if example.category:
            assert matching[0]["category"] == example.category
    assert any(example.category for example in SEARCHES)


class FakeSearcher:
    def __init__(self, hits: list[VideoHit]) -> None:
        self.hits = hits

    def search(self, query: Query) -> SearchResult:
        return SearchResult(self.hits)


def _hit(url: str, category: str) -> VideoHit:
    return VideoHit(url=url, title="", category=category, start_s=6.0, end_s=12.0, score=0.5)


def test_a_demo_search_fails_when_the_first_hit_is_wrong_or_leaves_the_category(
    capsys: pytest.CaptureFixture[str],
) -> None:
    example = DemoSearch("sunrise", "dj-set-at-sunrise", category="music")
    right = _hit("https://media.example.com/music/dj-set-at-sunrise.mp4", "music")
    wrong = _hit("https://media.example.com/travel/machu-picchu-sunrise-hike.mp4", "travel")
    other = _hit("https://media.example.com/music/opera-aria-on-stage.mp4", "music")
    assert _search(FakeSearcher([right, other]), example)
    assert not _search(FakeSearcher([other, right]), example)
    assert not _search(FakeSearcher([right, wrong]), example)
    assert not _search(FakeSearcher([]), example)
    assert "UNEXPECTED" in capsys.readouterr().err


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("engine", ["lite", "server"])
def test_the_demo_ingests_the_sample_searches_with_time_ranges_and_tears_everything_down(
    tmp_path: Path, engine: str
) -> None:
    data_dir = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDSEARCH_", "TWELVE", "FLOWER_"))}
    env["TWELVE_LABS_API_KEY"] = "a-real-key-the-demo-must-not-use"
    argv = [sys.executable, "-m", "vidsearch", "demo", "--data-dir", str(data_dir), "--milvus", engine]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=280, check=False)
    out = result.stdout
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = sum(1 for _ in MANIFEST.open()) - 1
    assert f"{lines} done, 0 failed" in out
    assert out.count("$ vidsearch search") == 3
    assert len(TIME_RANGE.findall(out)) >= 3
    assert "UNEXPECTED" not in result.stderr
    assert f"Logs: {data_dir / 'logs'}" in out
    assert (data_dir / "logs" / "worker.log").stat().st_size > 0
    assert f"({engine})" in out
    assert (data_dir / {"lite": "milvus", "server": "milvus-server"}[engine]).is_dir()
    assert re.search(r"Web page \(search, jobs; open it while the demo runs\): http://127\.0\.0\.1:\d+/", out)
    ports = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", out)]
    assert len(set(ports)) == 5
    assert [p for p in ports if port_open("127.0.0.1", p)] == []
    assert not _processes_mentioning(str(data_dir))


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_with_keep_the_demo_stays_up_serving_its_page_until_sigint(tmp_path: Path) -> None:
    """Started with SIGINT ignored, as a shell's background job is: SIGINT still stops it. While it
    is up, its page in Chromium finds the surfing dog alone, shows its poster, and plays it from
    the moment found."""
    data_dir = tmp_path / "kept"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDSEARCH_", "TWELVE", "FLOWER_"))}
    out_path = tmp_path / "demo.out"
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited through exec by the demo
    try:
        with out_path.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "vidsearch", "demo", "--keep", "--data-dir",
                                     str(data_dir)], env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        wait_for(lambda: "--keep: the stack stays up" in out_path.read_text(), 280, "the demo to finish")
        page = re.search(r"search and watch jobs at (http://127\.0\.0\.1:\d+/)", out_path.read_text())
        assert page, out_path.read_text()[-3000:]
        with urllib.request.urlopen(page[1], timeout=30) as response:
            assert b'id="search-form"' in response.read()
        query = urllib.parse.urlencode({"text": "a dog surfing on a wave", "top_k": 3})
        with urllib.request.urlopen(f"{page[1]}v1/search?{query}", timeout=60) as response:
            assert "surfing-dog-at-the-beach" in json.loads(response.read())[0]["url"]
        _the_page_plays_the_moment(page[1], tmp_path)
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        assert proc.wait(150) == 0
        port = urllib.parse.urlsplit(page[1]).port
        assert port is not None and not port_open("127.0.0.1", port)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        for pid in _processes_mentioning(str(data_dir)):  # a killed demo's services run on
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _the_page_plays_the_moment(base: str, tmp_path: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(60_000)
            page.goto(f"{base}?{urllib.parse.urlencode({'q': 'surfing dog'})}")
            cards = page.locator("#results .card")
            expect(cards.first).to_have_attribute("data-url", re.compile("surfing-dog-at-the-beach"))
            # the floor hid the noise: what is left scores like a match (other surfing videos)
            expect(page.locator("#search-status")).to_contain_text("below the relevance floor 0.25")
            scores = [float(t.split()[1]) for t in cards.locator(".score").all_inner_texts()]
            assert scores[0] > 0.7 and min(scores) >= 0.25 and len(scores) < 12, scores
            for card in cards.all():
                expect(card).to_have_attribute("data-poster", "frame")
            video = cards.first.locator("video")
            start, end = map(float, (video.get_attribute("src") or "").split("#t=")[1].split(","))
            assert (video.get_attribute("src") or "").startswith("http://127.0.0.1:")
            video.evaluate("v => v.play()")
            page.wait_for_function("([v, s]) => !v.paused && v.currentTime > s + 0.5",
                                   arg=[video.element_handle(), start])
            at = float(video.evaluate("v => v.currentTime"))
            assert start <= at <= end + 0.5, (start, at, end)
            page.screenshot(path=os.environ.get(DEMO_SCREENSHOT_ENV) or str(tmp_path / "demo.png"))
            page.goto(f"{base}?{urllib.parse.urlencode({'q': 'a red tractor ploughing a field'})}")
            expect(page.locator("#near-misses .card")).to_have_count(3)
            expect(page.locator("#near-misses .card").first).to_have_attribute("data-poster", "frame")
            page.screenshot(path=os.environ.get(NEAR_SCREENSHOT_ENV) or str(tmp_path / "near.png"))
        finally:
            browser.close()


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            try:
                cwd = os.readlink(entry / "cwd")  # the Milvus server runs in its data directory
            except OSError:
                cwd = ""
            if text in cmdline or cwd.startswith(text):
                found.append(int(entry.name))
    return found
