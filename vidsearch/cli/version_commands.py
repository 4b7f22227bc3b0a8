"""``vidsearch versions|reembed|promote|rollback``: model versions (``pipeline.versions``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pipeline.clients import Clients
from pipeline.errors import BadInputError
from pipeline.ledger.store import SubmitMode
from pipeline.settings import Settings
from pipeline.versions import (
    ReembedPlan,
    Version,
    drop,
    ensure_initial,
    live_alias,
    plan_reembed,
    promote,
    rollback,
    start_reembed,
)
from vidsearch.cli.display import print_json, stderr_progress, ticking, wait_for_job
from vidsearch.exit_codes import EXIT_FAILED, EXIT_OK


# --- versions ----------------------------------------------------------------------------------------
def run_versions(args: argparse.Namespace, settings: Settings) -> int:
    with Clients.from_settings(settings) as clients:
        if args.versions_action == "drop":
            return _drop(args, clients)
        ensure_initial(clients.versions, clients.store)
        rows = [_row(clients, v) for v in clients.versions.all()]
    if args.json:
        print_json(rows)
        return EXIT_OK
    print(f"{'version':<22} {'state':<9} {'collection':<34} {'rows':>8} {'items':>7} "
          f"{'done':>7} {'failed':>7}")
    for r in rows:
        print(f"{r['id']:<22} {r['state']:<9} {r['collection']:<34} {r['rows']:>8} {r['items']:>7} "
              f"{r['done']:>7} {r['failed']:>7}")
    print(f"search reads alias {live_alias(settings)} -> the live version", file=sys.stderr)
    return EXIT_OK


def _row(clients: Clients, version: Version) -> dict[str, Any]:
    versions = clients.versions
    state = {versions.pointer("live"): "live", versions.pointer("building"): "building",
             versions.pointer("previous"): "previous"}.get(version.id, "ready")
    progress = versions.progress(version)
    store = clients.store
    rows = store.count(version.collection) if store.has_collection(version.collection) else 0
    return {"id": version.id, "state": state, "model": version.spec.model,
            "dimension": version.dimension, "options": list(version.spec.options),
            "collection": version.collection, "alias": version.alias, "rows": rows,
            "items": progress.items, "done": progress.done, "failed": progress.failed,
            "created_at": version.created_at, "jobs": versions.job_ids(version.id)}


def _drop(args: argparse.Namespace, clients: Clients) -> int:
    version = clients.versions.require(args.version)
    if not args.yes:
        if not sys.stdin.isatty():
            raise BadInputError(f"dropping {version.id} deletes collection {version.collection}: "
                                "confirm on a terminal or pass --yes")
        answer = input(f"drop version {version.id} and its collection {version.collection}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing dropped", file=sys.stderr)
            return EXIT_OK
    drop(clients.versions, clients.store, clients.jobs, version.id)
    print(f"dropped version {version.id} (collection {version.collection})")
    return EXIT_OK


# --- reembed -----------------------------------------------------------------------------------------
def run_reembed(args: argparse.Namespace, settings: Settings) -> int:
    options = [o.strip() for o in args.options.split(",") if o.strip()] if args.options else None
    with Clients.from_settings(settings) as clients:
        plan = plan_reembed(clients.versions, clients.store, args.model, args.dimension, options)
        if args.dry_run:
            _show_plan(plan, settings, args.json, dry=True)
            return EXIT_OK
        mode = SubmitMode(retry_transient=settings.resubmit_transient_failures)
        job_id = start_reembed(clients.versions, clients.store, clients.jobs, plan, mode)
        _show_plan(plan, settings, args.json, dry=False, job_id=job_id)
        if not args.wait:
            return EXIT_OK
        progress = None if args.json else stderr_progress(settings.progress_interval_s)
        job = wait_for_job(clients.jobs, job_id, progress, lambda: ticking(clients))
    print(f"re-embed {job.status}: done {job.counters['done']}, failed {job.failures}; "
          f"next: vidsearch promote {plan.target.id}", file=sys.stderr)
    return EXIT_FAILED if job.failures else EXIT_OK


def _show_plan(plan: ReembedPlan, settings: Settings, as_json: bool, *, dry: bool,
               job_id: str = "") -> None:
    d = plan.to_dict()
    if as_json:
        print_json({**d, "dry_run": dry, "job_id": job_id or None})
        return
    if job_id:
        print(job_id)
    print(f"{'would re-embed' if dry else 're-embedding'} {d['from']} -> {d['to']} "
          f"(collection {d['collection']}): {d['items']} items, {d['tasks']} paid tasks, "
          f"{d['media_minutes']} media minutes; at {settings.rate_limit_per_min:g} tasks/min the "
          f"quota allows it in {_duration(plan.quota_s)}", file=sys.stderr)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


# --- promote / rollback ------------------------------------------------------------------------------
def parse_percent(text: str | None) -> float | None:
    """``--allow-partial`` as a percentage (``90`` or ``90%``); ``BadInputError`` otherwise."""
    if text is None:
        return None
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise BadInputError(f"--allow-partial takes a percentage such as 95%, not {text!r}") from None
    if not 0 <= value <= 100:
        raise BadInputError(f"--allow-partial must be between 0% and 100%, not {text!r}")
    return value


def run_promote(args: argparse.Namespace, settings: Settings) -> int:
    allow = parse_percent(args.allow_partial)
    with Clients.from_settings(settings) as clients:
        version = promote(clients.versions, clients.store, args.version, allow)
    print(f"live: {version.id} (alias {live_alias(settings)} -> {version.collection}); "
          "undo with: vidsearch rollback")
    return EXIT_OK


def run_rollback(args: argparse.Namespace, settings: Settings) -> int:
    del args
    with Clients.from_settings(settings) as clients:
        version = rollback(clients.versions, clients.store)
    print(f"live: {version.id} (alias {live_alias(settings)} -> {version.collection})")
    return EXIT_OK
