"""Drill 9 (task arguments): with a sentinel Twelve Labs API key in every worker's environment, no
Celery message that passes through the broker (task arguments, headers, events) carries it, in
plain text or base64. Every Redis command is captured with MONITOR while a job runs; logs, Redis
contents and Flower are covered by tests/workers/test_secrets.py."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import pytest
import redis

from tests.drills.harness import assert_same_counts, milvus_rows, start_worker, submit, write_manifest
from tests.stack import Stack

pytestmark = [pytest.mark.drill, pytest.mark.integration, pytest.mark.slow]

SENTINEL = "tlk_SENTINEL9f3c2a7e5b1d4c8a6e0f"


def b64_forms(secret: str) -> list[str]:
    """The text a base64 encoding of anything containing ``secret`` must contain (3 alignments)."""
    forms = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + secret.encode()).decode()
        forms.append(encoded[4 if shift else 0:-4])
    return forms


def leaks(text: str) -> bool:
    return SENTINEL in text or any(form in text for form in b64_forms(SENTINEL))


def test_the_detector_finds_the_secret_in_a_base64_body() -> None:
    for prefix in ("", "a", "ab"):
        assert leaks(base64.b64encode(f'{prefix}[["k"], {{"key": "{SENTINEL}"}}]'.encode()).decode())
    assert not leaks(base64.b64encode(b'[["k"], {}]').decode())


def test_no_task_message_carries_the_api_key(stack: Stack, tmp_path: Path) -> None:
    captured: list[str] = []
    # no read timeout: the workers may take longer to send their first command than the default
    monitor_client = redis.Redis.from_url(stack.redis_url, socket_timeout=None)
    stop = threading.Event()

    def capture() -> None:
        with monitor_client.monitor() as monitor:
            while not stop.is_set():
                captured.append(str(monitor.next_command()["command"]))

    thread = threading.Thread(target=capture, daemon=True)
    thread.start()
    secret_env = {"TWELVE_LABS_API_KEY": SENTINEL}
    start_worker(stack, "k1", env=secret_env)
    start_worker(stack, "k2", env=secret_env)
    urls = write_manifest(tmp_path / "m.csv", "secrets", 10)
    job_id = submit(stack, tmp_path / "m.csv", env=secret_env)
    assert_same_counts(stack, job_id, urls, "sentinel API key")
    stop.set()
    stack.client().ping()
    thread.join(10)

    text = "\n".join(captured)
    messages = [c for c in captured if "vidsearch.create_embedding" in c]
    print(f"\nDRILL secrets: {len(captured)} Redis commands captured, {len(messages)} carry a create task")
    assert messages, "no create_embedding message was captured"
    item_keys = {row["item_key"] for row in milvus_rows(stack, job_id)}  # done items keep no hash
    assert len(item_keys) == len(urls)
    assert any(key in text for key in item_keys), "task arguments (item keys) should be visible"
    assert not leaks(text)
