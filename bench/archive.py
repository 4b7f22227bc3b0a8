"""The embedding archive's cost: writer throughput with the archive on against off, bytes per segment.

One redis-server and one Milvus (Lite unless ``--engine server``) started here; the same 512-d
segments drained by ``SegmentWriter`` (bench/writer_throughput.py's ``writer_run``, production
batch and flush settings) with no archive; with an archive on a local directory, appended while
Milvus upserts the batch (production) and, for comparison, appended before the upsert
(``SequentialWriter``); and with an archive on S3 (moto's server, a separate process on
127.0.0.1, when this venv has ``moto_server``), interleaved ``--rounds`` times; medians. Goal:
archive on / off >= 0.9. Also the writer process's CPU seconds (``time.process_time``: the
drain, the Parquet encoding, the S3 client; not Milvus's or moto's), which the machine's load
disturbs far less than wall time. Bytes per segment: the archive's files after the runs, divided
by the segments they hold.

    .venv/bin/python -m bench.archive --segments 20000
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from pydantic import SecretStr

from bench import writer_throughput as wt
from bench.common import Row, log, table
from pipeline.archive.store import EmbeddingArchive
from pipeline.ingest.writer import SegmentWriter
from pipeline.milvus.columns import Columns
from pipeline.settings import Settings, load_settings
from vidsearch.stack.services import free_port, start_milvus_engine, start_redis


class SequentialWriter(SegmentWriter):
    """The writer with the archive append done before the Milvus upsert, not beside it."""

    def _archive_async(self, collection: str, model: str, columns: Columns) -> Future[None] | None:
        if self._archive is None:
            return None
        self._archive.append(collection, model, int(columns.vectors.shape[1]), columns)
        done: Future[None] = Future()
        done.set_result(None)
        return done


@contextmanager
def moto_s3() -> Iterator[dict[str, Any] | None]:
    """Settings of an S3 archive on a moto server process (None when moto is not installed)."""
    server = str(Path(sys.executable).with_name("moto_server"))  # this venv's, not one on PATH
    if not Path(server).exists():
        yield None
        return
    port = free_port()
    proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import boto3

        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="bench", aws_secret_access_key="bench")
        for _ in range(100):
            try:
                client.create_bucket(Bucket="bench")
                break
            except Exception:
                time.sleep(0.1)
        yield {"archive_s3_endpoint": endpoint, "archive_s3_access_key": "bench",
               "archive_s3_secret_key": SecretStr("bench"), "archive_s3_region": "us-east-1"}
    finally:
        proc.terminate()
        proc.wait(10)


def archive_at(settings: Settings, url: str, s3: dict[str, Any] | None = None) -> EmbeddingArchive:
    archive = EmbeddingArchive.from_settings(settings.model_copy(update={"archive_url": url, **(s3 or {})}))
    assert archive is not None
    return archive


Samples = dict[str, list[float]]


def measure(n: int, rounds: int, engine: str, tmp: Path) -> tuple[Samples, Samples, dict[str, float]]:
    """Wall and CPU seconds per variant (every round), archive bytes per segment per variant."""
    tmp.mkdir(parents=True, exist_ok=True)
    services = [start_redis(tmp / "redis"), start_milvus_engine(engine, tmp / "milvus")]
    results: Samples = {}
    cpu: Samples = {}
    per_segment: dict[str, float] = {}
    try:
        r, m = services
        settings = load_settings(redis_url=f"redis://{r.host}:{r.port}/0", milvus_uri=m.url)
        segments = wt.make_segments(n)
        client = redis.Redis.from_url(settings.redis_url)
        batch, flush_s = settings.writer_batch_rows, settings.writer_flush_interval_s
        with moto_s3() as s3:
            local = (str(tmp / "archive"), None)
            variants: dict[str, tuple[str, dict[str, Any] | None] | None] = {
                "archive off": None, "archive on, local directory": local,
                "archive on, local directory, appended before the upsert": local}
            if s3 is not None:
                variants["archive on, S3 (moto server)"] = ("s3://bench/archive", s3)
            order = list(enumerate(variants.items()))
            for round_no in range(rounds):  # interleaved, and each round starts one variant later:
                shift = round_no % len(order)  # load drift and what the last run left hit all alike
                for number, (label, where) in order[shift:] + order[:shift]:
                    archive = None
                    if where is not None:
                        url, s3_settings = where
                        archive = archive_at(settings, f"{url}/{round_no}-{number}", s3_settings)
                    kind = SequentialWriter if "before the upsert" in label else SegmentWriter
                    started = time.process_time()
                    results.setdefault(label, []).append(wt.writer_run(
                        settings, client, segments, batch, flush_s, archive=archive, writer_class=kind))
                    cpu.setdefault(label, []).append(time.process_time() - started)
                    log(f"round {round_no + 1}, {label}: {results[label][-1]:.2f} s, "
                        f"CPU {cpu[label][-1]:.2f} s")
                    if archive is not None:
                        per_segment[label] = _bytes_per_segment(archive)
        client.close()
    finally:
        for service in reversed(services):
            service.stop()
    return results, cpu, per_segment


def _bytes_per_segment(archive: EmbeddingArchive) -> float:
    described = [archive.describe(name) for name in archive.collections()]
    return sum(d.bytes for d in described) / max(sum(d.stored_rows for d in described), 1)


def rows(n: int, rounds: int, engine: str, tmp: Path) -> list[Row]:
    results, cpu, per_segment = measure(n, rounds, engine, tmp)
    off = statistics.median(results["archive off"])
    cpu_off = statistics.median(cpu["archive off"])
    out: list[Row] = []
    for label, times in results.items():
        if label == "archive off":
            continue
        on = statistics.median(times)
        ratio = off / on
        log(f"{label}: {n / on:,.0f}/s against {n / off:,.0f}/s off ({ratio:.2f})")
        out.append(Row("12", f"writer segments/s, {label}, Milvus {engine} ({n:,} segments of "
                             f"{wt.DIM}-d, median of {rounds})", f"{n / on:,.0f}",
                       f"archive off: {n / off:,.0f}/s", f"{ratio:.2f}", ">= 0.90", ratio >= 0.9,
                       {"seconds": times, "off_seconds": results["archive off"]}))
        cpu_on = statistics.median(cpu[label])
        out.append(Row("12", f"  writer process CPU µs per segment, {label}", f"{cpu_on / n * 1e6:,.0f}",
                       f"archive off: {cpu_off / n * 1e6:,.0f} µs", f"{cpu_off / cpu_on:.2f}", "reported",
                       None, {"cpu_seconds": cpu[label], "off_cpu_seconds": cpu["archive off"]}))
        out.append(Row("12", f"  archive bytes per segment, {label} ({wt.DIM}-d float32 vector: "
                             f"{wt.DIM * 4:,} B)", f"{per_segment[label]:,.0f}", "", "", "reported", None))
    return out


def _stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the services started here are stopped."""
    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def main() -> None:
    _stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--segments", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engine", choices=["lite", "server"], default="lite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix=f"vidsearch-archive-{uuid.uuid4().hex[:6]}-") as tmp:
        print(table(rows(args.segments, args.rounds, args.engine, Path(tmp))))


if __name__ == "__main__":
    main()
