"""API keys over real HTTP: 401 without or with a wrong key, 403 for a read key on job routes,
both headers accepted, loopback-only without keys, per-key rate with 429 + Retry-After, and no key
in any answer or log line."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.stack import Stack
from tests.vidsearch.api.conftest import (
    ADMIN_KEY,
    READ_KEY,
    Api,
    Server,
    api_for,
    assert_problem,
    key_entries,
    start_server,
)
from vidsearch.api.security import is_loopback

pytestmark = [pytest.mark.integration, pytest.mark.slow]
RATE_KEY = "vsk_test-rate-key-0123456789abcdefghijklmnopqrstuvw"


def test_a_request_without_a_key_is_401_with_a_bearer_challenge(reader: Api) -> None:
    response = reader.get("/v1/search", params={"text": "dog"}, key="")
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_wrong_key_is_401_and_the_answer_does_not_echo_it(reader: Api) -> None:
    wrong = "vsk_wrong-key-that-must-not-be-echoed-anywhere-000"
    response = reader.get("/v1/jobs", key=wrong)
    assert_problem(response, 401, "unauthorized")
    assert wrong not in response.text


def test_a_read_key_searches_but_gets_403_on_every_job_route(reader: Api) -> None:
    assert reader.get("/v1/search", params={"text": "dog"}).status_code == 200
    for method, path in (("GET", "/v1/jobs"), ("GET", "/v1/jobs/x"), ("GET", "/v1/jobs/x/failures"),
                         ("GET", "/v1/jobs/x/rejects"), ("POST", "/v1/jobs/x/retry"),
                         ("POST", "/v1/jobs")):
        problem = assert_problem(reader.request(method, path, content=b"url,category\n"), 403, "forbidden")
        assert "reader" in problem["detail"]


def test_an_admin_key_works_as_a_bearer_token(admin: Api) -> None:
    response = admin.get("/v1/jobs", key="", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 200


def test_without_keys_loopback_clients_are_admins(open_api: Api) -> None:
    assert open_api.get("/v1/jobs").status_code == 200


def test_without_keys_a_public_host_binds_loopback_and_says_so(stack: Stack) -> None:
    server = start_server(stack, "public-no-keys", host="0.0.0.0")
    try:
        assert "binding 127.0.0.1 instead" in server.log()
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
    finally:
        server.stop()


def test_loopback_addresses_are_recognised() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("127.0.0.2")
    assert not is_loopback("10.0.0.1") and not is_loopback("0.0.0.0") and not is_loopback(None)


@pytest.fixture(scope="module")
def rated_server(stack: Stack) -> Iterator[Server]:
    keys = key_entries(slow=("admin", RATE_KEY), ops=("admin", ADMIN_KEY))
    server = start_server(stack, "rated", VIDSEARCH_API_KEYS=keys, VIDSEARCH_API_RATE_PER_MIN="6",
                          VIDSEARCH_API_RATE_BURST="3")
    yield server
    server.stop()


def test_a_key_over_its_rate_gets_429_with_retry_after_and_other_keys_do_not(rated_server: Server) -> None:
    api = api_for(rated_server, RATE_KEY)
    statuses = [api.get("/v1/jobs").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    limited = api.get("/v1/jobs")
    problem = assert_problem(limited, 429, "rate-limited")
    retry_after = int(limited.headers["retry-after"])
    assert 1 <= retry_after <= 10 and problem["retry_after_s"] == retry_after
    assert "slow" in problem["detail"]
    assert api.get("/v1/jobs", key=ADMIN_KEY).status_code == 200


def test_no_key_appears_in_the_server_log(keyed_server: Server, reader: Api, admin: Api) -> None:
    reader.get("/v1/search", params={"text": "dog"})
    admin.get("/v1/jobs")
    reader.get("/v1/jobs")
    log = keyed_server.log()
    assert "api_request" in log
    assert READ_KEY not in log and ADMIN_KEY not in log
