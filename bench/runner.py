"""Run every benchmark section and print one table (``bench/run``; ``--quick`` for a short run).

Sections (each a module of bench/, each compared with a baseline measured in the same run):
1. end to end against the quota, and the tutorial loop (bench/e2e.py; ``--engine server`` runs it, 2
   and 6 on a real Milvus server)
2. polling cost (bench/polling.py, on the quota phase of section 1)
3. writer efficiency (bench/writer_throughput.py's functions, wrapped here)
4. producer (bench/producer.py)
5. search latency (bench/search.py; its corpus grows while the time budget allows)
6. scaling with worker processes (bench/scaling.py, on section 1's stack)
7. search quality: text, clip, image and hybrid queries, moments, fusion, result cache
   (bench/quality.py; 210 labelled videos of 60-600 s, --quick 60); long-form search: a short
   (1-5 min) and a long (45 min - 4 h) mix of the same row count, on both Milvus engines
   (bench/longform.py; 90,000 clip rows a mix, --quick 12,000)
8. the HTTP API against the same search in-process, 1/8/32 clients, cached and not (bench/api.py)
9. Milvus Lite vs a Milvus server on the same 100,000 vectors (bench/engines.py; 1,000,000 rows is
   the separate command ``python -m bench.engines --rows 1000000``)
10. corpus analytics quality on a planted collection (bench/analytics.py; its scale figure is a
   separate command, ``python -m bench.analytics --videos 100000 --milvus server``)
11. a media-minutes limit as the binding dimension (bench/media_limits.py; not in the default set:
   ``--only 11``, or ``python -m bench.media_limits``)
12. the embedding archive: writer throughput with the archive on (a directory; S3 on moto's
   server) against off, and archive bytes per segment (bench/archive.py; not in the default set:
   ``--only 12``, or ``python -m bench.archive``)

The table and the machine go to stdout, the full results (every sample) to
bench/results/<timestamp>[-quick].json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Row, log, machine, median, section, table, write_results

FULL_DEADLINE_S = 14 * 60
QUICK_DEADLINE_S = 170


def e2e_config(quick: bool, engine: str = "lite") -> Any:
    from bench.e2e import QuotaConfig

    if quick:
        return QuotaConfig(videos=150, task_s=4.0, rate_per_min=600, cap=60, tutorial_videos=1,
                           scaling_videos=60, engine=engine)  # type: ignore[arg-type]
    return QuotaConfig(videos=1000, task_s=8.0, rate_per_min=480, cap=100, tutorial_videos=3,
                       scaling_videos=300, poll_capacity=True, engine=engine)  # type: ignore[arg-type]


def writer_rows(quick: bool, tmp: Path, engine: str) -> list[Row]:
    """Section 3: SegmentWriter vs raw pymilvus upserts (functions of bench/writer_throughput.py),
    on one Milvus engine (``lite`` or ``server``)."""
    import redis

    from bench import writer_throughput as wt
    from pipeline.settings import load_settings
    from vidsearch.stack.services import start_milvus_engine, start_redis

    n = 4000 if quick else 20000
    sizes = (500, 2000) if quick else (500, 1000, 2000, 4000)
    rounds = 1 if quick else 2
    services = [start_redis(tmp / f"writer-redis-{engine}"),
                start_milvus_engine(engine, tmp / f"writer-milvus-{engine}")]
    try:
        r, m = services
        settings = load_settings(redis_url=f"redis://{r.host}:{r.port}/0", milvus_uri=m.url)
        segments = wt.make_segments(n)
        raw = {size: [wt.raw_upserts(settings, segments, wt.by_batch(n, size))] for size in sizes}
        best = min(raw, key=lambda k: raw[k][0])
        client = redis.Redis.from_url(settings.redis_url)
        flush_s = settings.writer_flush_interval_s  # the production flush policy
        writer: list[float] = []
        per_video: list[float] = []
        for _ in range(rounds):  # interleaved, as writer_throughput.py does: drift hits all alike
            writer.append(wt.writer_run(settings, client, segments, best, flush_interval_s=flush_s))
            raw[best].append(wt.raw_upserts(settings, segments, wt.by_batch(n, best)))
            per_video.append(wt.raw_upserts(settings, segments, wt.by_batch(n, wt.SEGMENTS_PER_VIDEO)))
        client.close()
    finally:
        for service in reversed(services):
            service.stop()
    raw_s, writer_s, video_s = median(raw[best]), median(writer), median(per_video)
    ratio = raw_s / writer_s
    info = {"segments": n, "raw_seconds": raw, "per_video_seconds": per_video,
            "writer_seconds": writer, "flush_interval_s": flush_s}
    log(f"writer: {n / writer_s:,.0f}/s, raw best {n / raw_s:,.0f}/s (batch {best}), "
        f"per video {n / video_s:,.0f}/s")
    return [
        Row("3", f"writer segments/s, Milvus {engine} ({n:,} segments, batch {best}, flush every "
                 f"{flush_s:g} s, median of {rounds})", f"{n / writer_s:,.0f}",
            f"raw pymilvus upsert, best batch ({best}): {n / raw_s:,.0f}/s", f"{ratio:.2f}",
            ">= 0.90", ratio >= 0.9, info),
        Row("3", f"  {engine}: writer vs one insert per video ({wt.SEGMENTS_PER_VIDEO} segments each)",
            f"{n / writer_s:,.0f}", f"{n / video_s:,.0f}/s", f"{video_s / writer_s:.1f}x",
            "reported", None),
    ]


MARK_START, MARK_END = "<!-- bench:table -->", "<!-- /bench:table -->"


def readme_table(heading: str, text: str) -> None:
    """Replace the block between the marks in bench/README.md (nothing else is touched)."""
    path = Path(__file__).resolve().parent / "README.md"
    current = path.read_text(encoding="utf-8")
    if MARK_START not in current or MARK_END not in current:
        log("bench/README.md has no bench:table marks; table not written")
        return
    head, rest = current.split(MARK_START, 1)
    tail = rest.split(MARK_END, 1)[1]
    path.write_text(f"{head}{MARK_START}\n{heading}\n\n{text}\n{MARK_END}{tail}", encoding="utf-8")


def milvus_sections(only: set[str], quick: bool, tmp: Path) -> list[Row]:
    """Section 3 (the writer, on each engine) and section 9 (Milvus Lite vs a server)."""
    rows: list[Row] = []
    if "3" in only:
        for engine in ("lite", "server"):
            rows += guarded(f"section 3: writer ({engine})",
                            lambda e=engine: writer_rows(quick, tmp, e), "3")  # type: ignore[misc]
    if "9" in only:
        from bench import engines

        size = 20_000 if quick else 100_000
        rows += guarded("section 9: Milvus Lite vs server",
                        lambda: engines.table_rows(engines.compare(
                            size, ["server", "lite"], {"server": 200, "lite": 200}, 300.0)), "9")
    return rows


def guarded(name: str, fn: Callable[[], list[Row]], sect: str) -> list[Row]:
    """Run one section; a failure becomes a row (the other sections still run)."""
    with section(name):
        try:
            return fn()
        except Exception as exc:
            traceback.print_exc()
            return [Row(sect, f"{name}: FAILED", f"{type(exc).__name__}: {str(exc)[:120]}", met=False)]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, under 3 minutes")
    parser.add_argument("--readme", action="store_true",
                        help="also put the table into bench/README.md (between the bench:table marks)")
    parser.add_argument("--only", default="", help="comma-separated sections to run (1..12); 2 and 6 "
                        "run with 1")
    parser.add_argument("--engine", choices=("lite", "server"), default="lite",
                        help="the Milvus engine of sections 1, 2 and 6 (the end-to-end stack)")
    return parser.parse_args(argv)


def quality_sections(quick: bool, tmp: Path) -> list[Row]:
    """Section 7: the short library's search quality, then the long-form mixes."""
    from bench import longform, quality

    videos, queries = quality.sizes(quick)
    rows = guarded("section 7: search quality", lambda: quality.run(videos, queries, tmp / "quality"), "7")
    per_mix, asked = longform.sizes(quick)
    return rows + guarded("section 7: long-form search",
                          lambda: longform.run(per_mix, asked, tmp / "longform"), "7")


def late_sections(only: set[str], quick: bool, tmp: Path) -> list[Row]:
    """Sections 10 (analytics), 11 (media minutes) and 12 (the embedding archive)."""
    rows: list[Row] = []
    if "10" in only:
        from bench import analytics

        rows += guarded("section 10: analytics", lambda: analytics.run(tmp, quick), "10")
    if "11" in only:
        from bench import media_limits

        rows += guarded("section 11: media minutes", lambda: media_limits.run(
            tmp / "media", 30 if quick else 60, 100.0, 20.0), "11")
    if "12" in only:
        from bench import archive

        rows += guarded("section 12: embedding archive", lambda: archive.rows(
            4000 if quick else 8000, 1 if quick else 3, "lite", tmp / "archive"), "12")
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    only = set(args.only.split(",")) if args.only else {"1", "3", "4", "5", "7", "8", "9", "10"}
    if only & {"2", "6"}:
        only.add("1")
    quick = args.quick
    started = time.monotonic()
    deadline = started + (QUICK_DEADLINE_S if quick else FULL_DEADLINE_S)
    meta: dict[str, Any] = {"machine": machine(), "quick": quick, "argv": sys.argv,
                            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="vidsearch-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if "1" in only:
            from bench import e2e

            cfg = e2e_config(quick, args.engine)
            rows += guarded("sections 1, 2, 6 (one stack)", lambda: e2e.run(tmp / "stack", cfg), "1")
        rows += milvus_sections(only, quick, tmp)
        if "4" in only:
            from bench import producer

            lines = 100_000 if quick else 1_000_000
            rows += guarded("section 4: producer", lambda: producer.run(lines, tmp)[0], "4")
        if "5" in only:
            from bench import search

            sizes = [20_000] if quick else [100_000, 300_000, 1_000_000]
            budget = max(60.0, deadline - time.monotonic())
            log(f"search budget {budget:.0f} s")
            rows += guarded("section 5: search",
                            lambda: search.run(sizes, 20 if quick else 50, tmp, budget)[0], "5")
        if "7" in only:
            rows += quality_sections(quick, tmp)
        if "8" in only:
            from bench import api

            rows += guarded("section 8: HTTP API", lambda: api.run(tmp, quick)[0], "8")
        rows += late_sections(only, quick, tmp)
    rows.sort(key=lambda r: r.section)
    meta["seconds"] = time.monotonic() - started
    path = write_results(rows, meta, time.strftime("%Y%m%d-%H%M%S") + ("-quick" if quick else "") + ".json")
    m = meta["machine"]
    heading = (f"vidsearch benchmarks ({'quick' if quick else 'full'}), {meta['seconds']:.0f} s wall; "
               f"{m['nproc']} x {m['cpu']}, {m['memory']}, Python {m['python']}, {m['os']}; "
               f"load average at the start {m['load_avg_1m']}, at the end {machine()['load_avg_1m']}")
    print(f"\n{heading}\n")
    print(table(rows))
    print(f"\nresults: {path}")
    if args.readme:
        readme_table(f"{heading} ({meta['started']})", table(rows))
    return 0 if all(r.met is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
