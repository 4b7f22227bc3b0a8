"""MetricsRecorder on a real redis-server: the fields of ``{prefix}:metrics`` as the exporter reads
them, sums across processes, and recording that never raises."""

from __future__ import annotations

import pytest
import redis

from pipeline.errors import ApiRejectedError, ManifestError, RateLimitedError, TransientError
from pipeline.metrics.recorder import MetricsRecorder, bucket_label, metrics_key
from pipeline.settings import load_settings
from vidsearch.stack.services import free_port


def recorded(client: redis.Redis[bytes], prefix: str) -> dict[str, float]:
    return {k.decode(): float(v) for k, v in client.hgetall(metrics_key(prefix)).items()}


def test_a_twelve_labs_call_counts_under_its_operation_and_the_outcome_of_its_error(
    redis_client: redis.Redis[bytes],
) -> None:
    recorder = MetricsRecorder(redis_client, "r")
    recorder.twelve_labs_call("embed")
    recorder.twelve_labs_call("embed")
    recorder.twelve_labs_call("create", RateLimitedError("429", retry_after_s=1))
    recorder.twelve_labs_call("create", TransientError("502"))
    recorder.twelve_labs_call("create", ApiRejectedError(400, "parameter_invalid", "bad url"))
    recorder.twelve_labs_call("create", ManifestError("not a Twelve Labs error"))

    assert recorded(redis_client, "r") == {
        "tl:embed:ok": 2, "tl:create:rate_limited": 1, "tl:create:transient": 1,
        "tl:create:rejected": 1, "tl:create:error": 1,
    }


def test_a_writer_batch_adds_to_the_sums_and_to_one_bucket_of_each_histogram(
    redis_client: redis.Redis[bytes],
) -> None:
    recorder = MetricsRecorder(redis_client, "r")
    recorder.writer_batch(rows=40, seconds=0.2)
    recorder.writer_batch(rows=50, seconds=99.0)

    assert recorded(redis_client, "r") == pytest.approx({
        "wb:count": 2, "wb:rows": 90, "wb:seconds": 99.2,
        f"wb:rows_le:{bucket_label(50)}": 2,
        f"wb:seconds_le:{bucket_label(0.25)}": 1, "wb:seconds_le:+Inf": 1,
    })


def test_recorders_of_several_processes_add_up_in_one_hash(
    redis_url: str, redis_client: redis.Redis[bytes],
) -> None:
    host_a = MetricsRecorder(redis.Redis.from_url(redis_url), "r")
    host_b = MetricsRecorder.from_settings(load_settings(redis_url=redis_url, redis_prefix="r"))
    host_a.twelve_labs_call("retrieve")
    host_b.twelve_labs_call("retrieve")
    host_b.writer_batch(rows=3, seconds=0.01)

    assert recorded(redis_client, "r")["tl:retrieve:ok"] == 2
    assert recorded(redis_client, "r")["wb:rows"] == 3


def test_recording_without_redis_never_raises_and_then_pauses_recording(
    redis_client: redis.Redis[bytes],
) -> None:
    dead = load_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_prefix="r")
    recorder = MetricsRecorder.from_settings(dead)
    recorder.writer_batch(rows=1, seconds=0.1)
    recorder.twelve_labs_call("create")

    recorder.r = redis_client  # Redis is back, but the recorder still pauses after the failure
    recorder.twelve_labs_call("create")
    assert recorded(redis_client, "r") == {}
