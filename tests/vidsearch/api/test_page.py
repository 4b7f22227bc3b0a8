"""The web page in headless Chromium (Debian's ``chromium``, driven by Playwright) against a real
server on the real stack: search, cards playing each hit at its moment (``#t=start,end``), "more
like this", a manifest submitted from the jobs view until its job is done, and the analytics view
(cluster map, trends plot and lists)."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.vidsearch.api.conftest import Server, video_url

pytestmark = [pytest.mark.integration, pytest.mark.slow]
FRAGMENT = re.compile(r"^https://cdn\.example\.com/.+\.mp4#t=\d+(\.\d+)?,\d+(\.\d+)?$")
SURF = video_url("animals", "surfing-dog-at-the-beach")
SCREENSHOT_ENV = "VIDSEARCH_PAGE_SCREENSHOT"
"""Where to keep the results page screenshot (docs/page-results.png is made this way)."""
ANALYTICS_SCREENSHOT_ENV = "VIDSEARCH_ANALYTICS_SCREENSHOT"
"""Where to keep the analytics view screenshot (the one in docs/page-analytics.png is of the demo's 66
videos, taken in Chromium with `vidsearch demo --keep` running)."""


def _install_chromium() -> None:
    """Debian's chromium, installed the way the README's test command needs it on a fresh machine
    (as root with apt-get; a browser download does not work here)."""
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.fail("Debian's chromium is missing and cannot be installed here: "
                    "install it (apt-get install -y chromium) and run the tests again")
    with Path("/tmp/vidsearch-chromium-install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # test processes (pytest-xdist) install it once
        if shutil.which("chromium") is not None:
            return
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=900)


def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        _install_chromium()
        path = shutil.which("chromium") or "/usr/bin/chromium"
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, open_server: Server) -> Iterator[Page]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(60_000)
    page.route(re.compile(r"^https://cdn\.example\.com/"), lambda route: route.abort())
    page.goto(open_server.url + "/")
    expect(page.locator("body[data-ready='1']")).to_have_count(1)
    yield page
    page.close()


def test_a_query_shows_cards_that_play_each_video_at_its_moment(page: Page, tmp_path: Path) -> None:
    page.fill("#q", "surfing dog")
    page.press("#q", "Enter")
    cards = page.locator("#results .card")
    expect(cards.first).to_be_visible()
    expect(page.locator("#search-status")).to_contain_text("result(s)")
    sources = [v.get_attribute("src") or "" for v in cards.locator("video").all()]
    assert sources and all(FRAGMENT.match(s) for s in sources), sources
    assert sources[0].startswith(SURF + "#t=")
    start, end = map(float, sources[0].split("#t=")[1].split(","))
    assert end > start
    expect(cards.first.locator(".time")).to_contain_text(":")
    expect(cards.first.locator(".score")).to_contain_text("score")
    shot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "results.png")
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_the_category_filter_restricts_the_cards(page: Page) -> None:
    page.click("#more-options summary")
    page.fill("#category", "sports")
    page.fill("#q", "surfing dog")
    page.click("#search-button")
    categories = page.locator("#results .card .category")
    expect(categories.first).to_be_visible()
    assert set(categories.all_inner_texts()) == {"sports"}


def test_more_like_this_shows_other_videos(page: Page) -> None:
    page.fill("#q", "surfing dog")
    page.press("#q", "Enter")
    first = page.locator("#results .card").first
    expect(first).to_have_attribute("data-url", SURF)
    first.locator("button.more").click()
    expect(page.locator("#search-status")).to_contain_text("more like surfing-dog-at-the-beach.mp4")
    urls = [c.get_attribute("data-url") for c in page.locator("#results .card").all()]
    assert urls and SURF not in urls


def test_a_manifest_submitted_from_the_jobs_view_reaches_done(page: Page, tmp_path: Path) -> None:
    manifest = tmp_path / "browser-upload.csv"
    manifest.write_text("url,category,title\n"
                        "https://cdn.example.com/music/violin-on-a-rooftop.mp4,music,Violin\n"
                        "https://cdn.example.com/music/drum-circle-at-night.mp4,music,Drums\n"
                        "not a url,music,Broken\n", encoding="utf-8")
    page.click("#tab-jobs")
    page.set_input_files("#manifest", str(manifest))
    page.click("#submit-job")
    expect(page.locator("#jobs-status")).to_contain_text("2 queued, 1 rejected")
    job_id = page.locator("#jobs-status").inner_text().split(":")[0].removeprefix("job ")
    row = page.locator(f"#jobs tr[data-job='{job_id}']")
    expect(row).to_have_attribute("data-status", "done", timeout=240_000)
    expect(row.locator("td.progress")).to_contain_text("100%")
    assert row.locator("progress").get_attribute("value") == "100"
    assert row.locator("td.rate").inner_text().endswith("/s")
    assert row.locator("td.rejected").inner_text() == "1"
    row.click()
    expect(page.locator("#job-detail .failures")).to_contain_text("browser-upload.csv:4")


def test_the_analytics_view_shows_the_cluster_map_the_trends_plot_and_the_lists(
    page: Page, tmp_path: Path
) -> None:
    page.click("#tab-analytics")
    status = page.locator("#analytics-status")
    expect(status).to_contain_text("videos, k = ", timeout=180_000)
    expect(page.locator("body[data-analytics='1']")).to_have_count(1)
    for image in ("#cluster-map", "#trends-plot"):
        width = page.eval_on_selector(image, "img => img.complete ? img.naturalWidth : 0")
        assert width > 0, (image, status.inner_text())
        assert (page.get_attribute(image, "src") or "").startswith("blob:")
    clusters = page.locator("#clusters-list li")
    assert clusters.count() >= 2
    expect(clusters.first).to_contain_text("video(s), cohesion")
    expect(page.locator("#duplicates-list li").first).to_be_visible()
    page.fill("#an-k", "3")
    page.click("#analytics-button")
    expect(status).to_contain_text("k = 3 (given)")
    expect(page.locator("#clusters-list li")).to_have_count(3)
    shot = Path(os.environ.get(ANALYTICS_SCREENSHOT_ENV) or tmp_path / "analytics.png")
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_a_bad_analytics_parameter_shows_the_problem(page: Page) -> None:
    page.click("#tab-analytics")
    expect(page.locator("body[data-analytics='1']")).to_have_count(1, timeout=180_000)
    page.fill("#an-k", "999")
    page.click("#analytics-button")
    expect(page.locator("#analytics-status.error")).to_contain_text("k must be between 1")
