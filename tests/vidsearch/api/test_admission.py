"""Search admission through the real server: with one search slot held by a search whose embed
the sandbox delays, a second uncached search is refused with 503 and Retry-After, while a
result-cache hit is still answered; ``--workers 2`` serves searches from two processes."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.stack import Stack
from tests.vidsearch.api.conftest import Api, Server, api_for, assert_problem, start_server
from vidsearch.stack.services import Service, start_sandbox

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SLOW_EMBED_S = 6


@pytest.fixture
def slow_sandbox(tmp_path: Path) -> Iterator[Service]:
    """Every API request it answers is delayed by SLOW_EMBED_S."""
    service = start_sandbox(tmp_path, args=["--speed", "100", "--slow-rate", "1",
                                            "--slow-s", str(SLOW_EMBED_S)])
    yield service
    service.stop()


@pytest.fixture
def one_slot(stack: Stack, slow_sandbox: Service) -> Iterator[Api]:
    server = start_server(stack, "one-slot", VIDSEARCH_API_SEARCH_SLOTS="1",
                          VIDSEARCH_API_QUEUE_DEADLINE_S="0.5",
                          TWELVELABS_BASE_URL=f"{slow_sandbox.url}/v1.3")
    yield api_for(server)
    server.stop()


def test_a_search_that_cannot_start_within_the_deadline_gets_503_with_retry_after(
    one_slot: Api, open_api: Api
) -> None:
    cached = {"text": "surfing dog", "top_k": 3}
    assert open_api.get("/v1/search", params=cached).status_code == 200  # fills the shared cache
    warm = one_slot.get("/v1/search", params=cached)  # builds the server's searcher before the race
    assert warm.status_code == 200 and warm.headers["x-vidsearch-cache"] == "hit"
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda text: one_slot.get("/v1/search", params={"text": text}),
                                ["a kayak on a lake", "a choir singing in a church"]))
        hit = one_slot.get("/v1/search", params=cached)  # while the slot is held
    by_status = sorted(answers, key=lambda r: r.status_code)
    assert [r.status_code for r in by_status] == [200, 503], [r.text for r in by_status]
    body = assert_problem(by_status[1], 503, "overloaded")
    assert by_status[1].headers["retry-after"] == "1" and body["retry_after_s"] == 1
    assert hit.status_code == 200 and hit.headers["x-vidsearch-cache"] == "hit"


@pytest.fixture
def two_workers(stack: Stack) -> Iterator[Server]:
    server = start_server(stack, "workers", args=("--workers", "2"))
    yield server
    server.stop()


def worker_processes(server: Server) -> list[int]:
    """The server's child processes that run the app (uvicorn spawns them)."""
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()
    return [int(pid) for pid in children
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def test_workers_serve_the_same_hits_from_several_processes(two_workers: Server, open_api: Api
                                                            ) -> None:
    assert len(worker_processes(two_workers)) == 2
    api = api_for(two_workers)
    params = {"text": "kneading bread dough", "top_k": 3}
    answers = [api.get("/v1/search", params=params) for _ in range(4)]
    assert {r.status_code for r in answers} == {200}
    assert answers[0].json() == open_api.get("/v1/search", params=params).json()
