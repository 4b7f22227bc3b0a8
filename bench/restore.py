"""Restore rows/s: Milvus bulk import against batched upserts, on the real Milvus 2.3.5 server.

One archive (a local directory) is filled with ``--rows`` synthetic clip rows (512-d unit vectors,
12 categories, 40 rows per video, appended in writer-sized batches of 2,000). The same archive is
then restored twice by ``pipeline.recovery.restore.Restorer``, each time into a new collection
created as the writer creates it (HNSW, COSINE, 16 partition-key partitions) on one Milvus server
started here: once by upserts (``restore_method = "upsert"``: 2,000 rows per call; on 2.3.5 an
upsert is a delete plus an insert, see ``pipeline/milvus/capabilities.py``) and once by bulk import
(``restore_method = "bulk"``: Parquet files of ``--file-rows`` rows, two import tasks at a time).
A restore's time runs from its start until Milvus counts every row (flush and, for bulk import, the
wait for imported rows to become visible included). The ratio is bulk rows/s over upsert rows/s.
A second figure runs until the vector index reports every row indexed (a bulk import's task
completes only once its rows are indexed; upserted rows are indexed after the restore returns).

    .venv/bin/python -m bench.restore --rows 200000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import redis

from bench.common import Row, log, machine, table
from pipeline.archive.store import EmbeddingArchive
from pipeline.milvus.columns import Columns, metadata_json
from pipeline.milvus.store import MilvusStore
from pipeline.recovery.checkpoint import Checkpoints
from pipeline.recovery.restore import Restorer, Target
from pipeline.settings import load_settings
from pipeline.state.keys import Keys
from vidsearch.stack.services import start_milvus_server, start_redis

DIM = 512
BATCH = 2000
CATEGORIES = [f"cat{i:02d}" for i in range(12)]


def batch(start: int, n: int, rng: np.random.Generator) -> Columns:
    vectors = rng.standard_normal((n, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = range(start, start + n)
    return Columns(pks=[f"pk{i:030d}" for i in ids], vectors=vectors, scalars={
        "category": [CATEGORIES[(i // 40) % 12] for i in ids],
        "url": [f"https://v.example/{i // 40}.mp4" for i in ids],
        "start_s": [float(i % 40) * 6 for i in ids], "end_s": [float(i % 40) * 6 + 6 for i in ids],
        "option": ["visual"] * n, "scope": ["clip"] * n, "model": ["marengo3.0"] * n,
        "item_key": [f"item{i // 40:028d}" for i in ids], "job_id": ["bench"] * n,
        "ingested_at": [1_700_000_000_000] * n, "title": [f"video {i // 40}" for i in ids],
        "metadata": [metadata_json({"n": i}) for i in ids],
    })


def fill(archive: EmbeddingArchive, collection: str, rows: int) -> None:
    rng = np.random.default_rng(7)
    for start in range(0, rows, BATCH):
        archive.append(collection, "marengo3.0", DIM, batch(start, min(BATCH, rows - start), rng))


def run(rows: int, file_rows: int, root: Path) -> list[Row]:
    redis_service = start_redis(root / "redis")
    milvus = start_milvus_server(root / "milvus")
    try:
        base = load_settings(milvus_uri=milvus.url, archive_url=str(root / "archive"),
                             data_dir=root / "data", num_partitions=16, restore_batch_rows=BATCH,
                             restore_import_rows=file_rows)
        archive = EmbeddingArchive.from_settings(base)
        assert archive is not None
        log(f"archiving {rows:,} rows")
        fill(archive, "source", rows)
        checkpoints = Checkpoints(redis.Redis(host=redis_service.host, port=redis_service.port),
                                  Keys("bench"))
        rates: dict[str, float] = {}
        indexed: dict[str, float] = {}
        for method in ("upsert", "bulk"):
            settings = base.model_copy(update={"restore_method": method})
            store = MilvusStore(settings, timeout_s=300)
            name = "source"  # restored, measured, dropped: the next method starts from nothing
            log(f"restoring by {method}")
            report = Restorer(archive, store, checkpoints, settings).run(Target(name, DIM))
            assert report.method == method and report.milvus_rows == rows, report
            rates[method] = rows / report.seconds
            indexed_s = report.seconds + _until_indexed(store, name, rows)
            indexed[method] = rows / indexed_s
            log(f"{method}: {report.seconds:.1f} s, {rates[method]:,.0f} rows/s; every row indexed "
                f"after {indexed_s:.1f} s")
            store.drop(name)
            store.close()
    finally:
        milvus.stop()
        redis_service.stop()
    ratio = rates["bulk"] / rates["upsert"]
    return [Row("R", f"restore rows/s by bulk import ({rows:,} rows, {file_rows:,} per file), "
                "Milvus 2.3.5 server", f"{rates['bulk']:,.0f}",
                f"batched upserts ({BATCH:,} per call): {rates['upsert']:,.0f}/s",
                f"{ratio:.2f}x", "reported", None),
            Row("R", "  same, until the vector index covers every row", f"{indexed['bulk']:,.0f}",
                f"batched upserts: {indexed['upsert']:,.0f}/s",
                f"{indexed['bulk'] / indexed['upsert']:.2f}x", "reported", None)]


def _until_indexed(store: MilvusStore, collection: str, rows: int, timeout_s: float = 1800) -> float:
    """Seconds until the index reports every row indexed (the server's ``indexed_rows``)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        info = store.describe_vector_index(collection)
        if int(info.get("indexed_rows", 0)) >= rows and not int(info.get("pending_index_rows", 0)):
            break
        time.sleep(1)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--file-rows", type=int, default=200_000)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-restore-") as tmp:
        rows = run(args.rows, args.file_rows, Path(tmp))
    print(table(rows))
    print(machine())
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=2))


if __name__ == "__main__":
    main()
