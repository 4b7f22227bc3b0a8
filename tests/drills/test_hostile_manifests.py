"""Drill 8: hostile manifests (hypothesis). Random bytes, huge lines, invalid UTF-8, file:,
javascript:, link-local and loopback hosts, 100 kB URLs: nothing crashes, every line read is
accepted, rejected or a duplicate, and internal addresses are rejected unless a setting allows them."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.ingest.manifest import LineRules
from pipeline.ingest.producer import Producer
from pipeline.ledger.store import JobStore
from pipeline.settings import load_settings
from pipeline.spec import EmbeddingSpec
from pipeline.state.keys import Keys

pytestmark = [pytest.mark.drill, pytest.mark.integration]

INTERNAL_HOSTS = ["127.0.0.1", "localhost", "[::1]", "169.254.169.254", "[fe80::1]", "10.0.0.7",
                  "192.168.1.20", "0.0.0.0", "127.1"]
PUBLIC_HOSTS = ["cdn.example.com", "videos.example.org", "93.184.216.34"]
CATEGORIES = ["news", "sports", "Bad Category", ""]

good_url = st.builds(
    lambda host, path, cat: f"https://{host}/{path}.mp4,{cat}",
    st.sampled_from(PUBLIC_HOSTS), st.text("abcdefgh0123456789-", min_size=1, max_size=12),
    st.sampled_from(CATEGORIES),
)
internal_url = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}/{path}.mp4,news",
    st.sampled_from(["http", "https"]), st.sampled_from(INTERNAL_HOSTS),
    st.text("abc123", min_size=1, max_size=8),
)
hostile_text = st.one_of(
    st.just("file:///etc/passwd,news"),
    st.just("javascript:alert(1),news"),
    st.just("data:video/mp4;base64,AAAA,news"),
    st.builds(lambda n: "https://cdn.example.com/" + "a" * n + ".mp4,news", st.integers(2048, 100_000)),
    st.builds(lambda s: s.replace("\n", " ").replace("\r", " "), st.text(max_size=200)),
)
hostile_bytes = st.one_of(
    st.binary(max_size=300),
    st.just(b"https://cdn.example.com/\xff\xfe.mp4,news"),
    st.just(b"\xc3\x28,news"),
    st.builds(lambda n: b"x" * n, st.integers(64 * 1024, 200 * 1024)),
)
line = st.one_of(good_url.map(str.encode), internal_url.map(str.encode), hostile_text.map(str.encode),
                 hostile_bytes)


@pytest.fixture(scope="module")
def client(redis_url: str) -> redis.Redis[bytes]:
    return redis.Redis.from_url(redis_url)


def run(client: redis.Redis[bytes], lines: list[bytes], allow_private: bool) -> tuple[JobStore, str]:
    jobs = JobStore(client, Keys(f"h{uuid.uuid4().hex[:10]}"))
    rules = LineRules.from_settings(load_settings(allow_private_hosts=allow_private))
    producer = Producer(jobs, EmbeddingSpec.from_settings(load_settings()), rules)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.csv"
        path.write_bytes(b"url,category\n" + b"\n".join(lines) + b"\n")
        summary = producer.submit([path])
    return jobs, summary.job_id


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(st.lists(line, max_size=40))
def test_any_manifest_is_counted_line_by_line_and_nothing_crashes(
    client: redis.Redis[bytes], lines: list[bytes]
) -> None:
    jobs, job_id = run(client, lines, allow_private=False)
    c = jobs.get_job(job_id).counters  # type: ignore[union-attr]
    assert c["accepted"] + c["rejected"] + c["duplicates"] == c["lines"]
    assert c["lines"] <= sum(1 + x.count(b"\n") + x.count(b"\r") for x in lines)
    rejects = jobs.rejects(job_id)
    assert len(rejects) == c["rejected"] and all(r["reason"] and r["line"] >= 2 for r in rejects)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(good_url, internal_url), min_size=1, max_size=30), st.booleans())
def test_internal_addresses_are_rejected_unless_allowed(
    client: redis.Redis[bytes], lines: list[str], allow: bool
) -> None:
    jobs, job_id = run(client, [x.encode() for x in lines], allow_private=allow)
    rejected_lines = {r["line"]: r["reason"] for r in jobs.rejects(job_id)}
    for number, text in enumerate(lines, start=2):
        host = text.split("/")[2]
        if host in INTERNAL_HOSTS:
            assert (number in rejected_lines) is not allow, (text, rejected_lines.get(number))
    c = jobs.get_job(job_id).counters  # type: ignore[union-attr]
    assert c["accepted"] + c["rejected"] + c["duplicates"] == c["lines"] == len(lines)
