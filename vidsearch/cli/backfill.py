"""``vidsearch backfill PATH...``: ingest manifest files or directories from cron, safely.

* PATHs are manifest files or directories; a directory contributes its ``*.csv``, ``*.jsonl`` and
  ``*.ndjson`` files (top level only, hidden files skipped), sorted by name.
* Every manifest is opened (header checked) before anything is submitted, so a bad file costs
  nothing. Then it is a normal submission without ``--force``: items already ingested are
  skipped by the producer, items another job is working on are left to it; only new items are
  queued and paid for.
* It waits for the job to finish, at most ``--wait-timeout`` seconds.
* Runs with the same ``--name`` never overlap: a Redis lock (``SET NX PX`` with a random token)
  is renewed by a heartbeat thread while the run lives, so it expires ``--lock-ttl`` seconds after
  its holder dies; it is released with a compare-and-delete script, so a run never frees a lock
  it no longer holds.

Logs (structlog) go to stderr and the log file; stdout gets one JSON summary. Exit codes are
``vidsearch/exit_codes.py`` (0 done, 1 failures, 2 bad input, 3 locked, 4 timeout, 5 Redis).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

from pipeline.clients import Clients
from pipeline.errors import ManifestError
from pipeline.ingest.manifest import LineRules, read_manifest
from pipeline.ingest.producer import submit_to_versions
from pipeline.ledger.records import Job
from pipeline.ledger.store import JobStore, SubmitMode
from pipeline.logs import configure_logging, get_logger
from pipeline.settings import Settings
from pipeline.state.locks import FencedLock, new_token
from vidsearch.exit_codes import (
    EXIT_FAILED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_REDIS,
    EXIT_TIMEOUT,
)

MANIFEST_SUFFIXES = frozenset({".csv", ".jsonl", ".ndjson"})
PROGRESS_EVERY_S = 60.0

log = get_logger("vidsearch.cli.backfill")


def find_manifests(paths: Sequence[Path]) -> list[Path]:
    """The manifest files named by ``paths`` (files as given, directories expanded, sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                p for p in path.iterdir()
                if p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES and not p.name.startswith(".")
            )
        elif path.is_file():
            found.append(path)
        else:
            raise ManifestError(f"no such manifest file or directory: {path}")
    if not found:
        shown = ", ".join(str(p) for p in paths)
        raise ManifestError(f"no manifests (*.csv, *.jsonl, *.ndjson) in {shown}")
    return list(dict.fromkeys(found))


class RunLock:
    """A named lock in Redis that expires ``ttl_s`` after its holder stops renewing it."""

    def __init__(self, client: redis.Redis[bytes], key: str, ttl_s: float) -> None:
        self.r = client
        self.key = key
        self.ttl_ms = max(100, int(ttl_s * 1000))
        self.lock = FencedLock(
            client, key, self.ttl_ms / 1000, token=f"{socket.gethostname()}:{os.getpid()}:{new_token()}"
        )
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> bool:
        """Take the lock if it is free and start the heartbeat; False when someone holds it."""
        if not self.lock.acquire():
            return False
        self._thread = threading.Thread(target=self._heartbeat, name="backfill-lock", daemon=True)
        self._thread.start()
        return True

    def holder(self) -> str | None:
        """Who holds the lock (``host:pid:token``), if anyone."""
        raw = self.r.get(self.key)
        return raw.decode() if raw is not None else None

    def _heartbeat(self) -> None:
        interval_s = self.ttl_ms / 3000
        while not self._stop.wait(interval_s):
            try:
                renewed = self.lock.extend()
            except redis.RedisError as exc:
                log.warning("backfill_lock_renew_failed", error=str(exc))
                continue
            if not renewed:
                self.lost = True
                log.error("backfill_lock_lost", lock=self.key)
                return

    def release(self) -> None:
        """Stop the heartbeat and delete the lock if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.lock.release()
        except redis.RedisError as exc:
            log.warning("backfill_lock_release_failed", error=str(exc))


def run(args: argparse.Namespace, settings: Settings) -> int:
    """The ``backfill`` command; returns its exit code (``VidsearchError`` means ``EXIT_BAD_INPUT``)."""
    manifests = find_manifests(args.paths)
    rules = LineRules.from_settings(settings, default_category=args.category)
    for path in manifests:
        read_manifest(path, rules)  # raises ManifestError now if the file cannot be read
    configure_logging(settings, stream=sys.stderr)
    with Clients.from_settings(settings) as clients:
        try:
            return _locked_run(args, clients, manifests)
        except redis.RedisError as exc:
            log.error("backfill_redis_error", error=str(exc))
            _emit({"status": "redis_error", "error": str(exc)})
            return EXIT_REDIS


def _locked_run(args: argparse.Namespace, clients: Clients, manifests: list[Path]) -> int:
    settings, jobs = clients.settings, clients.jobs
    lock = RunLock(clients.redis, clients.keys.lock(f"backfill:{args.name}"), args.lock_ttl)
    if not lock.acquire():
        holder = lock.holder()
        log.warning("backfill_locked", name=args.name, holder=holder)
        _emit({"status": "locked", "name": args.name, "holder": holder})
        return EXIT_LOCKED
    try:
        rules = LineRules.from_settings(settings, default_category=args.category)
        mode = SubmitMode(retry_transient=settings.resubmit_transient_failures)
        summary = submit_to_versions(jobs, clients.versions, settings, rules, manifests, mode=mode,
                                     name=args.name, max_minutes=args.max_minutes)[0]
        log.info("backfill_submitted", name=args.name, manifests=[str(p) for p in manifests],
                 **summary.to_dict())
        job = _wait(jobs, summary.job_id, args.wait_timeout)
    finally:
        lock.release()
    return _finish(job, summary.to_dict(), lock.lost)


def _wait(jobs: JobStore, job_id: str, timeout_s: float | None) -> Job:
    deadline = time.monotonic() + timeout_s if timeout_s else None
    next_progress = time.monotonic() + PROGRESS_EVERY_S
    while True:
        job = jobs.get_job(job_id)
        if job is None:
            raise redis.RedisError(f"job {job_id} disappeared from Redis")
        if job.finished or (deadline is not None and time.monotonic() >= deadline):
            return job
        if time.monotonic() >= next_progress:
            log.info("backfill_progress", **_counts(job))
            next_progress += PROGRESS_EVERY_S
        time.sleep(0.5)


def _counts(job: Job) -> dict[str, Any]:
    return {"job": job.id, **{k: job.counters.get(k, 0) for k in ("queued", "done", "failed")}}


def _finish(job: Job, submitted: dict[str, Any], lock_lost: bool) -> int:
    if not job.finished:
        status, code = "timeout", EXIT_TIMEOUT
    else:
        status, code = job.status, EXIT_FAILED if job.failures else EXIT_OK
    result = {**job.to_dict(), "status": status, "submitted": submitted, "lock_lost": lock_lost}
    log.info("backfill_finished", exit_code=code, **_counts(job), status=status)
    _emit(result)
    return code


def _emit(value: dict[str, Any]) -> None:
    print(json.dumps(value, ensure_ascii=False, default=str), flush=True)
