"""The web page in headless Chromium (Debian's ``chromium``, driven by Playwright) against a real
server on the real stack: search, cards playing each hit at its moment (``#t=start,end``), "more
like this", a manifest submitted from the jobs view until its job is done, the analytics view
(cluster map, trends plot and lists), and every view's state in the address (deep links, reloads,
back and forward)."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.vidsearch.api.conftest import VIDEOS, Server, video_url

pytestmark = [pytest.mark.integration, pytest.mark.slow]
expect.set_options(timeout=60_000)  # a loaded machine answers late; a wait is no timing assertion
FRAGMENT = re.compile(r"^https://cdn\.example\.com/.+\.mp4#t=\d+(\.\d+)?,\d+(\.\d+)?$")
SURF = video_url("animals", "surfing-dog-at-the-beach")
PASTA = video_url("cooking", "fresh-pasta-rolled-by-hand")
SCREENSHOT_ENV = "VIDSEARCH_PAGE_SCREENSHOT"
"""Where to keep the results page screenshot (of this catalogue; docs/page-results.png is the demo's,
made by tests/vidsearch/cli/test_demo.py)."""
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
def blank(browser: Browser) -> Iterator[Page]:
    """A fresh browser page (its own context: no history, no storage) that has opened nothing yet."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.route(re.compile(r"^https://cdn\.example\.com/"), lambda route: route.abort())
    yield page
    context.close()


@pytest.fixture
def page(blank: Page, open_server: Server) -> Page:
    blank.goto(open_server.url + "/")
    expect(blank.locator("body[data-ready='1']")).to_have_count(1)
    return blank


def search(page: Page, text: str) -> None:
    page.fill("#q", text)
    page.press("#q", "Enter")


def first_url(page: Page) -> str:
    first = page.locator("#results .card").first
    expect(first).to_be_visible()
    return first.get_attribute("data-url") or ""


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


def test_a_card_whose_video_cannot_be_fetched_shows_the_placeholder_poster(page: Page) -> None:
    search(page, "surfing dog")  # the catalogue's URLs are on a host that does not exist
    card = page.locator("#results .card").first
    expect(card).to_have_attribute("data-poster", "placeholder")
    assert (card.locator("video").get_attribute("poster") or "").startswith("blob:")


def test_the_category_filter_restricts_the_cards(page: Page) -> None:
    page.click("#more-options summary")
    page.fill("#category", "sports")
    page.fill("#min-score", "-1")  # every sports video, however unrelated
    page.fill("#q", "surfing dog")
    page.click("#search-button")
    categories = page.locator("#results .card .category")
    expect(categories).to_have_count(len(VIDEOS["sports"]))
    assert set(categories.all_inner_texts()) == {"sports"}


def test_the_relevance_floor_hides_the_noise(page: Page) -> None:
    page.click("#more-options summary")
    page.fill("#top-k", "12")
    search(page, "surfing dog")
    expect(page.locator("#search-status")).to_contain_text("below the relevance floor 0.25")
    cards = page.locator("#results .card")
    assert [c.get_attribute("data-url") for c in cards.all()] == [SURF]
    assert float(cards.first.locator(".score").inner_text().split()[1]) >= 0.25
    expect(page.locator("#near")).to_be_hidden()
    hidden = int(page.inner_text("#search-status").split("; ")[1].split()[0])
    page.fill("#min-score", "-1")  # lifted: the noise comes back, scored below the floor
    page.press("#q", "Enter")
    expect(cards).to_have_count(1 + hidden)
    assert parse_qs(urlsplit(page.url).query)["min_score"] == ["-1"]
    scores = [float(t.split()[1]) for t in cards.locator(".score").all_inner_texts()]
    assert scores[0] >= 0.25 > max(scores[1:]), scores


def test_when_nothing_clears_the_floor_the_page_says_so_and_shows_near_misses(page: Page) -> None:
    page.click("#more-options summary")
    page.fill("#category", "sports")
    search(page, "surfing dog")
    expect(page.locator("#near-title")).to_contain_text("Nothing cleared the relevance floor (score 0.25)")
    expect(page.locator("#search-status")).to_contain_text("0 result(s)")
    assert page.locator("#results .card").count() == 0
    near = page.locator("#near-misses .card")
    expect(near).to_have_count(3)
    assert set(near.locator(".category").all_inner_texts()) == {"sports"}
    assert all(float(t.split()[1]) < 0.25 for t in near.locator(".score").all_inner_texts())


def test_more_like_this_shows_other_videos(page: Page) -> None:
    search(page, "surfing dog")
    first = page.locator("#results .card").first
    expect(first).to_have_attribute("data-url", SURF)
    first.locator("button.more").click()
    expect(page.locator("#search-status")).to_contain_text("more like surfing-dog-at-the-beach.mp4")
    assert parse_qs(urlsplit(page.url).query)["like"] == [SURF]
    # no video of this catalogue shares a word with it: all are near misses, none is the video
    expect(page.locator("#near-misses .card").first).to_be_visible()
    urls = [c.get_attribute("data-url") for c in page.locator("#results .card, #near-misses .card").all()]
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
    assert parse_qs(urlsplit(page.url).query) == {"view": ["jobs"], "job": [job_id]}
    page.reload()  # the job's detail is in the address
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


# --- the address ------------------------------------------------------------------------------------
def test_a_deep_link_to_a_search_shows_its_results(blank: Page, open_server: Server) -> None:
    blank.goto(open_server.url + "/?q=surfing+dog&category=animals&top_k=3")
    expect(blank.locator("#results .card").first).to_have_attribute("data-url", SURF)
    assert blank.input_value("#q") == "surfing dog"
    assert blank.input_value("#category") == "animals"
    assert blank.input_value("#top-k") == "3"
    assert set(blank.locator("#results .card .category").all_inner_texts()) == {"animals"}
    assert blank.locator("#results .card").count() <= 3


def test_a_search_writes_its_options_into_the_address(page: Page) -> None:
    page.click("#more-options summary")
    page.fill("#category", "cooking")
    page.check("#moments")
    search(page, "fresh pasta")
    expect(page.locator("#results .card").first).to_have_attribute("data-url", PASTA)
    query = parse_qs(urlsplit(page.url).query)
    assert query == {"q": ["fresh pasta"], "category": ["cooking"], "moments": ["1"]}, page.url


def test_back_and_forward_move_between_searches(page: Page) -> None:
    search(page, "surfing dog")
    expect(page.locator("#results .card").first).to_have_attribute("data-url", SURF)
    search(page, "fresh pasta")
    expect(page.locator("#results .card").first).to_have_attribute("data-url", PASTA)
    page.go_back()
    expect(page.locator("#results .card").first).to_have_attribute("data-url", SURF)
    assert page.input_value("#q") == "surfing dog"
    assert parse_qs(urlsplit(page.url).query)["q"] == ["surfing dog"]
    page.go_forward()
    expect(page.locator("#results .card").first).to_have_attribute("data-url", PASTA)
    assert page.input_value("#q") == "fresh pasta"
    page.reload()
    expect(page.locator("#results .card").first).to_have_attribute("data-url", PASTA)


def test_a_deep_link_to_more_like_this_shows_the_similar_videos(blank: Page, open_server: Server) -> None:
    blank.goto(f"{open_server.url}/?{urlencode({'like': SURF, 'top_k': '5'})}")
    expect(blank.locator("#search-status")).to_contain_text("more like surfing-dog-at-the-beach.mp4")
    blank.go_back()  # the history of this context holds only the deep link: back leaves it
    assert blank.url == "about:blank"


def test_deep_links_open_the_jobs_and_analytics_views(blank: Page, open_server: Server) -> None:
    blank.goto(open_server.url + "/?view=analytics&k=3")
    expect(blank.locator("#analytics-status")).to_contain_text("k = 3 (given)", timeout=180_000)
    assert blank.is_visible("#view-analytics") and not blank.is_visible("#view-search")
    assert blank.input_value("#an-k") == "3"
    blank.click("#tab-jobs")
    assert parse_qs(urlsplit(blank.url).query) == {"view": ["jobs"]}
    expect(blank.locator("#jobs-status")).to_contain_text("job(s)")
    blank.go_back()
    expect(blank.locator("#view-analytics")).to_be_visible()
    blank.goto(open_server.url + "/?view=jobs")
    expect(blank.locator("#view-jobs")).to_be_visible()
    expect(blank.locator("#jobs tbody tr").first).to_be_visible()
