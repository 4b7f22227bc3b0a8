"""MilvusStore's gRPC keepalive against Milvus Lite: an idle connection is not sent away."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow  # a 40 s idle connection

IDLE_S = 40  # pymilvus's own 10 s pings draw a GOAWAY from Lite after ~30 s of idle

SCRIPT = textwrap.dedent("""
    import sys, time, uuid
    from pipeline.settings import load_settings
    from pipeline.milvus.store import MilvusStore
    settings = load_settings(milvus_uri=sys.argv[1], collection_prefix="k" + uuid.uuid4().hex[:8])
    store = MilvusStore(settings)
    name = store.ensure_collection("marengo3.0", 8)
    time.sleep(float(sys.argv[2]))
    print(store.count(name), MilvusStore(settings).count(name))
""")


def test_an_idle_connection_to_lite_draws_no_goaway_for_too_many_pings(milvus_uri: str) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, milvus_uri, str(IDLE_S)], check=False,
                          capture_output=True, text=True, timeout=IDLE_S + 120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0", "0"]
    assert "too_many_pings" not in done.stderr
