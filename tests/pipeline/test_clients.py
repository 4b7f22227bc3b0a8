"""``Clients``: one builder for Redis, the job store, the quota, the gateway and the Milvus store."""

from __future__ import annotations

import pytest
import redis

from pipeline.clients import Clients
from pipeline.settings import load_settings
from tests.stack import wait_for


def test_clients_share_one_redis_and_build_nothing_until_used(redis_url: str, milvus_uri: str) -> None:
    clients = Clients.from_settings(load_settings(redis_url=redis_url, milvus_uri=milvus_uri))
    assert "redis" not in vars(clients) and "store" not in vars(clients)
    assert clients.jobs.r is clients.redis
    assert clients.quota._take.registered_client is clients.redis
    assert clients.gateway.quota is clients.quota
    assert clients.redis.ping()
    clients.store.ping()
    clients.close()


def test_close_closes_every_built_client_and_the_next_use_reconnects(
    redis_url: str, milvus_uri: str
) -> None:
    observer = redis.Redis.from_url(redis_url)
    with Clients.from_settings(load_settings(redis_url=redis_url, milvus_uri=milvus_uri)) as clients:
        first = clients.redis
        connection_id = first.client_id()
        clients.store.ping()
        assert connection_id in {int(c["id"]) for c in observer.client_list()}
    # the server drops a closed connection when it reads the close: moments later, not at once
    wait_for(lambda: connection_id not in {int(c["id"]) for c in observer.client_list()}, 30,
             "Redis to drop the closed client's connection")
    observer.close()
    assert "store" not in vars(clients)
    assert clients.redis is not first
    assert clients.redis.ping()
    clients.close()


def test_an_unreachable_redis_fails_on_first_use_not_when_built() -> None:
    clients = Clients.from_settings(load_settings(redis_url="redis://127.0.0.1:1/0"))
    with pytest.raises(redis.ConnectionError):
        clients.jobs.latest_job_id()
    clients.close()
