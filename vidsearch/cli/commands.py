"""What each ``vidsearch`` subcommand does. Output: a table for people, ``--json`` for scripts.

Exit codes: ``vidsearch/exit_codes.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from pipeline.clients import Clients
from pipeline.ingest.manifest import LineRules, read_manifest
from pipeline.ingest.minutes import MinuteBook, price
from pipeline.ingest.producer import submit_to_versions
from pipeline.ingest.stream import dead_letters_dropped
from pipeline.ledger.records import Job
from pipeline.ledger.store import JobStore, SubmitMode
from pipeline.settings import CONFIG_ENV, Settings, get_settings
from vidsearch.cli.display import (
    iso,
    pricing_text,
    print_floor,
    print_hits,
    print_json,
    spending,
    status_dict,
    status_lines,
    stderr_progress,
    ticking,
    wait_for_job,
)
from vidsearch.exit_codes import EXIT_FAILED, EXIT_OK

FLOWER_STOP_GRACE_S = 5.0  # Flower ignores SIGTERM while its broker is unreachable


def _settings(args: argparse.Namespace) -> Settings:
    if getattr(args, "config", None):
        os.environ[CONFIG_ENV] = str(args.config)
        get_settings.cache_clear()
    return get_settings()


def _clients(args: argparse.Namespace) -> Clients:
    return Clients.from_settings(_settings(args))


def _checked_settings(args: argparse.Namespace, *, unreachable_ok: bool = False) -> Settings:
    """The settings of a command that writes (or serves), once Redis passed the start-up checks
    (``pipeline/state/redis_checks.py``); their warnings go to stderr, never into the command's
    output. ``unreachable_ok``: a server that answers while Redis is down (``serve``, ``metrics``)
    starts without the checks when Redis cannot be reached, and says so."""
    import redis  # noqa: PLC0415

    from pipeline.logs import configure_logging, get_logger  # noqa: PLC0415
    from pipeline.state.redis_checks import check_redis  # noqa: PLC0415

    s = _settings(args)
    configure_logging(s.model_copy(update={"log_level": "WARNING"}), stream=sys.stderr)
    try:
        with Clients.from_settings(s) as clients:
            check_redis(clients.redis)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        if not unreachable_ok:
            raise
        get_logger("vidsearch.checks").warning("redis_unreachable_at_start", error=str(exc),
                                               checks="skipped")
    return s


def _checked_clients(args: argparse.Namespace) -> Clients:
    return Clients.from_settings(_checked_settings(args))



# --- ingest ---------------------------------------------------------------------------------------
def cmd_submit(args: argparse.Namespace) -> int:
    with _checked_clients(args) as clients:
        return _submit(args, clients)


def _submit(args: argparse.Namespace, clients: Clients) -> int:
    settings, jobs = clients.settings, clients.jobs
    rules = LineRules.from_settings(settings, default_category=args.category)
    if args.dry_run:
        return _dry_run(args, rules, settings)
    mode = SubmitMode(force=args.force, retry_failed=args.retry_failed,
                      retry_transient=settings.resubmit_transient_failures)
    summary, *building = submit_to_versions(jobs, clients.versions, settings, rules,
                                            args.manifests, mode=mode, name=args.name,
                                            max_minutes=args.max_minutes)
    if not args.json:
        print(summary.job_id)
        print(_summary_line(summary.to_dict()), file=sys.stderr)
        for other in building:
            print(f"also for the version being built (re-embed): job {other.job_id}", file=sys.stderr)
    if not args.wait:
        if args.json:
            print_json(summary.to_dict())
        return EXIT_OK
    progress = None if args.json else stderr_progress(settings.progress_interval_s)
    job = wait_for_job(jobs, summary.job_id, progress, lambda: ticking(clients))
    if args.json:
        print_json({"job_id": job.id, **job.to_dict(), "rejects": jobs.rejects(job.id, 99)})
    return EXIT_FAILED if job.failures else EXIT_OK


def _dry_run(args: argparse.Namespace, rules: LineRules, settings: Settings) -> int:
    lines = (line for path in args.manifests for line in read_manifest(path, rules))
    priced = price(lines, settings).to_dict()
    if args.json:
        print_json(priced)
        return EXIT_OK
    print(pricing_text(priced, settings.default_media_minutes))
    return EXIT_OK


def cmd_budget(args: argparse.Namespace) -> int:
    with _checked_clients(args) as clients:
        job = _job_or_latest(clients.jobs, args.job)
        book = MinuteBook(clients.redis, clients.jobs, clients.limits, clients.settings)
        moved = book.raise_budget(job.id, args.max_minutes)
    budget = f"{args.max_minutes:g} minutes" if args.max_minutes > 0 else "none"
    print(f"job {job.id}: budget {budget}; {moved} held items queued again")
    return EXIT_OK


def _summary_line(d: dict[str, Any]) -> str:
    return (
        f"lines {d['lines']}: accepted {d['accepted']} (queued {d['queued']}, already ingested "
        f"{d['skipped']}, in progress elsewhere {d['in_progress']}, previously failed "
        f"{d['previously_failed']}), duplicates "
        f"{d['duplicates']}, rejected {d['rejected']}"
    )


def _job_or_latest(jobs: JobStore, job_id: str | None) -> Job:
    job_id = job_id or jobs.latest_job_id()
    job = jobs.get_job(job_id) if job_id else None
    if job is None:
        raise SystemExit(f"vidsearch: no such job: {job_id or '(no jobs yet)'}")
    return job


def cmd_status(args: argparse.Namespace) -> int:
    with _clients(args) as clients:
        return _status(args, clients)


def _status(args: argparse.Namespace, clients: Clients) -> int:
    jobs = clients.jobs
    job = _job_or_latest(jobs, args.job)
    if args.watch:
        progress = None if args.json else stderr_progress(clients.settings.progress_interval_s)
        job = wait_for_job(jobs, job.id, progress, lambda: ticking(clients))
    now = time.time()
    spend = spending(clients, job)
    if args.json:
        print_json(status_dict(job, ticking(clients), now, spend))
    else:
        print("\n".join(status_lines(job, ticking(clients), now, spend)))
    return EXIT_FAILED if job.finished and job.failures else EXIT_OK


def cmd_jobs(args: argparse.Namespace) -> int:
    with _clients(args) as clients:
        listed = [j.to_dict() for j in clients.jobs.list_jobs(args.limit)]
    if args.json:
        print_json(listed)
        return EXIT_OK
    print(f"{'job':<13} {'created (UTC)':<21} {'status':<18} {'queued':>7} {'done':>7} "
          f"{'failed':>7} {'rejected':>8}")
    for j in listed:
        print(f"{j['id']:<13} {iso(j['created_at']):<21} {j['status']:<18} {j['queued']:>7} "
              f"{j['done']:>7} {j['failed']:>7} {j['rejected']:>8}")
    return EXIT_OK


def cmd_failures(args: argparse.Namespace) -> int:
    with _clients(args) as clients:
        jobs = clients.jobs
        job = _job_or_latest(jobs, args.job)
        rows = [
            {"item": i.key, "url": i.url, "category": i.category, "reason": i.reason,
             "attempts": i.attempts, "task_id": i.task_id,
             "failed_in_job": i.job_id if i.job_id != job.id else None}
            for i in jobs.failures(job.id)
        ]
        dropped = dead_letters_dropped(clients.redis, clients.settings.redis_prefix)
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            earlier = f", in job {row['failed_in_job']}" if row["failed_in_job"] else ""
            print(f"{row['url']}\n    {row['reason']} (attempts: {row['attempts']}{earlier})")
        print(f"{len(rows)} failed item(s)", file=sys.stderr)
    if dropped:
        print(f"{dropped} dead letter(s) dropped, all jobs (the oldest beyond "
              f"dead_letter_max_entries={clients.settings.dead_letter_max_entries}); "
              "their items stay listed above while they are failed", file=sys.stderr)
    return EXIT_OK


def cmd_rejects(args: argparse.Namespace) -> int:
    with _clients(args) as clients:
        rows = clients.jobs.rejects(_job_or_latest(clients.jobs, args.job).id)
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            print(f"{row['file']}:{row['line']}: {row['reason']}")
    return EXIT_OK


def cmd_retry(args: argparse.Namespace) -> int:
    with _checked_clients(args) as clients:
        count = clients.jobs.retry(_job_or_latest(clients.jobs, args.job).id)
    print(f"re-queued {count} failed item(s)")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from pipeline.ingest.verify import verify_job  # noqa: PLC0415  (heavy imports only where used)

    with _clients(args) as clients:
        jobs = clients.jobs
        report = verify_job(jobs, clients.store, _job_or_latest(jobs, args.job).id, clients.archive)
    if args.json:
        print_json(report.to_dict())
    else:
        print(f"job {report.job_id} ({report.status}) against {report.collection}: items "
              f"{report.items}, rows {report.rows} (expected {report.expected_rows}), "
              f"distinct pks {report.distinct_pks}, count(*) {report.milvus_count}")
        for category, rows in report.rows_by_category.items():
            print(f"  {category}: {rows} rows (expected {report.expected_by_category.get(category, 0)})")
        if report.archived_rows is not None:
            print(f"  archive: {report.archived_rows} rows of the job's items")
        if report.restorable_rows:
            print(f"  a restore would bring back {report.restorable_rows} rows of "
                  f"{report.restorable_items} items: vidsearch restore")
        for text in report.discrepancies:
            print(f"DISCREPANCY: {text}")
        if report.more_discrepancies:
            print(f"... and {report.more_discrepancies} more discrepancies")
        print("OK" if report.ok else "NOT OK", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_ledger(args: argparse.Namespace) -> int:
    """``vidsearch ledger compact``: done items to compact records, job indexes packed."""
    from pipeline.ledger.compact import compact_ledger  # noqa: PLC0415

    with _checked_clients(args) as clients:
        report = compact_ledger(clients.jobs)
    if args.json:
        print_json(report.to_dict())
    else:
        freed = (report.bytes_before - report.bytes_after) / 2**20
        print(f"compacted {report.items} done item(s), packed {report.jobs} job index(es); "
              f"Redis used_memory {report.bytes_before / 2**20:.1f} -> "
              f"{report.bytes_after / 2**20:.1f} MiB ({freed:.1f} MiB freed)")
    return EXIT_OK


# --- search ---------------------------------------------------------------------------------------
SEARCH_FIELDS = ("text", "clip", "clip_start", "clip_end", "image", "text_image", "weights",
                 "modality_weights", "moments", "max_moments", "like", "at", "category", "top_k",
                 "option", "segments", "min_score")
"""``vidsearch search`` arguments, named as ``Query.from_mapping`` takes them."""


def search_query(args: argparse.Namespace) -> Any:
    """The ``Query`` of ``vidsearch search`` arguments (QueryError on bad input: exit 2)."""
    from pipeline.search.query import Query  # noqa: PLC0415

    given = {name: getattr(args, name) for name in SEARCH_FIELDS}
    data = {k: v for k, v in given.items() if v not in (None, False, [])}
    if getattr(args, "collapse_duplicates", None) is not None:  # --no-collapse-duplicates is False
        data["collapse_duplicates"] = args.collapse_duplicates
    return Query.from_mapping(data)


def cmd_search(args: argparse.Namespace) -> int:
    from pipeline.search.results import result_to_json  # noqa: PLC0415
    from pipeline.search.searcher import build_searcher  # noqa: PLC0415

    query = search_query(args)
    with _clients(args) as clients:
        result = build_searcher(clients.settings, clients).search(query)
    print_floor(result)
    if args.json:
        print_json(result_to_json(result))
        return EXIT_OK
    print_hits(result.hits)
    return EXIT_OK


def cmd_analytics(args: argparse.Namespace) -> int:
    from vidsearch.cli.analytics_commands import run  # noqa: PLC0415  (numpy, faiss and matplotlib only here)

    return run(args, _settings(args))


# --- runtime --------------------------------------------------------------------------------------
def cmd_worker(args: argparse.Namespace) -> int:
    from pipeline.logs import configure_logging  # noqa: PLC0415

    s = _settings(args)  # before the app is imported: it reads the settings --config names
    from workers.app import app, load_schedule  # noqa: PLC0415
    from workers.startup import check_start  # noqa: PLC0415

    configure_logging(s)
    check_start(app, s)
    if args.supervise:
        from vidsearch.stack.supervisor import Supervisor  # noqa: PLC0415

        return Supervisor(_worker_argv(args)).run()
    load_schedule(app, getattr(args, "schedule", None))
    argv = ["worker", "-Q", args.queues, "-c", str(args.concurrency), "-n", f"{args.name}@%h",
            "--loglevel", s.log_level, "--without-gossip", "--without-mingle"]
    app.worker_main(argv)
    return EXIT_OK


def _worker_argv(args: argparse.Namespace) -> list[str]:
    """The supervised child: the same worker, run in-process."""
    argv = [sys.executable, "-m", "vidsearch"]
    if getattr(args, "config", None):
        argv += ["--config", str(args.config)]
    argv += ["worker", "--no-supervise", "--queues", args.queues,
             "--concurrency", str(args.concurrency), "--name", args.name]
    if getattr(args, "schedule", None):
        argv += ["--schedule", str(args.schedule)]
    return argv


def cmd_writer(args: argparse.Namespace) -> int:
    ns = argparse.Namespace(**{**vars(args), "queues": "writing", "concurrency": 1})
    return cmd_worker(ns)


def cmd_flower(args: argparse.Namespace) -> int:
    """Flower on ``flower_port``, supervised; the password travels in the environment, never argv."""
    from vidsearch.stack.supervisor import Supervisor  # noqa: PLC0415

    s = _settings(args)
    env = dict(os.environ)
    if s.flower_basic_auth:
        env["FLOWER_BASIC_AUTH"] = s.flower_basic_auth.get_secret_value()
    argv = [sys.executable, "-m", "celery", "-A", "workers.app", "flower",
            f"--port={s.flower_port}", f"--address={args.address}"]
    return Supervisor(argv, env=env, stop_grace_s=FLOWER_STOP_GRACE_S).run()


def cmd_beat(args: argparse.Namespace) -> int:
    from pipeline.logs import configure_logging  # noqa: PLC0415

    s = _settings(args)  # before the app is imported: it reads the settings --config names
    from workers.app import app, load_schedule  # noqa: PLC0415
    from workers.startup import check_start  # noqa: PLC0415

    configure_logging(s)
    load_schedule(app, args.schedule)
    check_start(app, s)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    app.start(["beat", "-s", str(s.data_dir / "celerybeat-schedule"), "--loglevel", s.log_level])
    return EXIT_OK


def cmd_index(args: argparse.Namespace) -> int:
    from vidsearch.cli.index_commands import run  # noqa: PLC0415

    return run(args, _settings(args))


def cmd_archive(args: argparse.Namespace) -> int:
    from vidsearch.cli.archive_commands import run  # noqa: PLC0415

    return run(args, _settings(args))


def cmd_versions(args: argparse.Namespace) -> int:
    from vidsearch.cli.version_commands import run_versions  # noqa: PLC0415  (pymilvus loads slowly)

    return run_versions(args, _settings(args))


def cmd_reembed(args: argparse.Namespace) -> int:
    from vidsearch.cli.version_commands import run_reembed  # noqa: PLC0415

    return run_reembed(args, _checked_settings(args))


def cmd_restore(args: argparse.Namespace) -> int:
    from vidsearch.cli.restore_commands import run_restore  # noqa: PLC0415  (pymilvus loads slowly)

    return run_restore(args, _settings(args))


def cmd_promote(args: argparse.Namespace) -> int:
    from vidsearch.cli.version_commands import run_promote  # noqa: PLC0415

    return run_promote(args, _checked_settings(args))


def cmd_rollback(args: argparse.Namespace) -> int:
    from vidsearch.cli.version_commands import run_rollback  # noqa: PLC0415

    return run_rollback(args, _checked_settings(args))


def cmd_up(args: argparse.Namespace) -> int:
    from vidsearch.stack.embedded import run_up  # noqa: PLC0415

    settings = _settings(args)
    if args.milvus:
        settings = settings.model_copy(update={"milvus_engine": args.milvus})
    return run_up(settings, concurrency=args.concurrency, sandbox_speed=args.sandbox_speed)


def cmd_demo(args: argparse.Namespace) -> int:
    from vidsearch.cli.demo import run_demo  # noqa: PLC0415

    engine = args.milvus or _settings(args).milvus_engine
    return run_demo(data_dir=args.data_dir, keep=args.keep, speed=args.speed, engine=engine)


def cmd_sandbox(args: argparse.Namespace) -> int:
    from vidsearch.sandbox.server import run  # noqa: PLC0415

    return run(args)


# --- operations -----------------------------------------------------------------------------------
def cmd_backfill(args: argparse.Namespace) -> int:
    from vidsearch.cli.backfill import run  # noqa: PLC0415

    return run(args, _checked_settings(args))


def cmd_metrics(args: argparse.Namespace) -> int:
    from pipeline.logs import configure_logging  # noqa: PLC0415
    from pipeline.metrics.exporter import run_exporter  # noqa: PLC0415

    s = _checked_settings(args, unreachable_ok=True)
    configure_logging(s)
    run_exporter(s, args.port or s.metrics_port or 9464, args.host)
    return EXIT_OK


# --- HTTP API -------------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    from vidsearch.api.serve import run_serve  # noqa: PLC0415  (FastAPI only where used)

    s = _checked_settings(args, unreachable_ok=True)
    return run_serve(s, args.host, args.port or s.api_port, args.workers or s.api_workers)


def cmd_api_key(args: argparse.Namespace) -> int:
    """A fresh API key (printed once) and the ``api_keys`` entry that stores its digest."""
    from vidsearch.api.keys import ApiKey, digest, new_key  # noqa: PLC0415

    key = new_key()
    entry = ApiKey(args.name, args.role, digest(key)).entry()
    print(f"key (give it to the client; it is not stored anywhere): {key}")
    print(f"api_keys entry (add it to the settings): {entry}")
    return EXIT_OK
