"""The Celery app on a ``redis+sentinel://`` URL: kombu's Sentinel transport with the service as
``master_name`` and the Sentinels' password in ``sentinel_kwargs``; a plain URL is passed through
unchanged. Against a real Sentinel set, the same app publishes to the primary, and after the
primary is SIGKILLed, to the promoted replica, without being built again."""

from __future__ import annotations

import json

import pytest

from pipeline.settings import load_settings
from tests.sentinel import DATA_PASSWORD, kill_primary, revive, sentinels, settings_of
from vidsearch.stack.services import SentinelSet, Service, resp_command
from workers.app import broker, create_app

__all__ = ["sentinels"]


def test_a_plain_url_is_the_broker_url_unchanged() -> None:
    url, options = broker(load_settings(redis_url="redis://:pw@10.0.0.5:6380/2", visibility_timeout_s=900))
    assert url == "redis://:pw@10.0.0.5:6380/2"
    assert options == {"visibility_timeout": 900}


def test_a_sentinel_url_becomes_kombus_sentinel_transport() -> None:
    settings = load_settings(redis_url="redis+sentinel://:p%w@10.0.0.1:26379,[::1]:26380/main/3",
                             redis_sentinel_password="sp", visibility_timeout_s=900)
    url, options = broker(settings)
    assert url == "sentinel://:p%25w@10.0.0.1:26379/3;sentinel://:p%25w@[::1]:26380/3"
    assert options == {"visibility_timeout": 900, "master_name": "main",
                       "sentinel_kwargs": {"password": "sp"}}


@pytest.mark.integration
def test_the_app_publishes_to_the_primary_before_and_after_a_failover(sentinels: SentinelSet) -> None:
    app = create_app(load_settings(**settings_of(sentinels)))
    first = app.send_task("vidsearch.poll_embedding", args=["before"]).id
    assert first in _queued(sentinels.primary(), "polling")
    failover = kill_primary(sentinels)
    second = app.send_task("vidsearch.poll_embedding", args=["after"]).id
    assert second in _queued(failover.new, "polling")
    app.close()
    revive(sentinels, failover.old)


def _queued(server: Service, queue: str) -> list[str]:
    bodies = resp_command(server.host, server.port, "LRANGE", queue, "0", "-1", password=DATA_PASSWORD)
    return [json.loads(body)["headers"]["id"] for body in bodies]
