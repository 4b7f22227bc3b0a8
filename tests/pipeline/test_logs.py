"""structlog configuration: secrets never reach a log line."""

from __future__ import annotations

import io
import json
import logging

from pipeline.logs import configure_logging, get_logger
from pipeline.settings import load_settings


def test_every_configured_secret_is_redacted_from_log_lines() -> None:
    settings = load_settings(
        twelve_labs_api_key="tlk-sentinel-1234", milvus_token="root:milvus-sentinel",
        redis_url="redis://:redis-sentinel@127.0.0.1:6390/0",
        flower_basic_auth="ops:flower-sentinel", log_format="json",
    )
    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    get_logger("t").warning(
        "leak_attempt", key="tlk-sentinel-1234", url="redis://:redis-sentinel@h/0",
        detail=["root:milvus-sentinel", "flower-sentinel"],
    )
    logging.getLogger().handlers.clear()
    line = json.loads(stream.getvalue().splitlines()[-1])
    text = json.dumps(line)
    assert line["event"] == "leak_attempt"
    for sentinel in ("tlk-sentinel-1234", "redis-sentinel", "milvus-sentinel", "flower-sentinel"):
        assert sentinel not in text


def test_the_passwords_of_a_sentinel_url_and_of_the_sentinels_are_redacted() -> None:
    settings = load_settings(
        redis_url="redis+sentinel://:data-secret-9@127.0.0.1:26379,127.0.0.1:26380/vidsearch/0",
        redis_sentinel_password="sentinel-secret-9", log_format="json",
    )
    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    get_logger("t").warning("leak_attempt", auth="data-secret-9", sentinel="sentinel-secret-9")
    logging.getLogger().handlers.clear()
    text = stream.getvalue().splitlines()[-1]
    assert "leak_attempt" in text
    assert "data-secret-9" not in text and "sentinel-secret-9" not in text
