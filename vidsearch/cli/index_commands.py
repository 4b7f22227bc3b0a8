"""``vidsearch index status|tune|rebuild``: run ``pipeline.milvus.index`` and print what it finds."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from pipeline.clients import Clients
from pipeline.errors import ConfigError
from pipeline.milvus.index import (
    IndexStatus,
    SweepPoint,
    TuneResult,
    index_status,
    rebuild,
    settings_lines,
    tune,
)
from pipeline.milvus.store import MilvusStore
from pipeline.settings import Settings
from vidsearch.exit_codes import EXIT_FAILED, EXIT_OK


def run(args: argparse.Namespace, settings: Settings) -> int:
    with Clients.from_settings(settings) as clients:
        store = clients.store
        if args.index_action == "status":
            return _status(store, settings, args.json)
        if args.index_action == "rebuild":
            return _rebuild(store, settings, args)
        return _tune(store, settings, args)


def _status(store: MilvusStore, settings: Settings, as_json: bool) -> int:
    statuses = [index_status(store, settings, name) for name in store.collections()]
    if as_json:
        print(json.dumps([asdict(s) for s in statuses], indent=2, default=str))
    elif not statuses:
        print(f"no collections with prefix {settings.collection_prefix!r}")
    for status in [] if as_json else statuses:
        print(status_text(status))
    return EXIT_OK


def status_text(s: IndexStatus) -> str:
    indexed = "not reported" if s.indexed_rows is None else f"{s.indexed_rows:,}"
    pending = "" if s.pending_rows is None else f", {s.pending_rows:,} pending"
    segments = "not listed by this engine" if s.segments is None else (
        f"{len(s.segments)} sealed ({', '.join(f'{n:,}' for n in s.segments[:12])}"
        f"{' ...' if len(s.segments) > 12 else ''} rows)")
    return (f"{s.collection}\n  index     {s.index_type} {s.metric} {json.dumps(s.params)}\n"
            f"  rows      {s.rows:,} (indexed: {indexed}{pending})\n  segments  {segments}\n"
            f"  serving   {_serving_text(s)}\n  search    {json.dumps(s.search_params)}")


def _serving_text(s: IndexStatus) -> str:
    if s.served_segments is None:
        return "not listed by this engine"
    served = f"{len(s.served_segments)} segments ({sum(s.served_segments):,} rows)"
    if not s.handoff_pending:
        return served
    return (f"{served}; {s.handoff_pending} sealed not yet serving (compaction or index builds in "
            "progress: searches read older, smaller segments meanwhile, and are slower)")


def _collection(store: MilvusStore, settings: Settings, args: argparse.Namespace) -> str:
    collection: str = args.collection or store.collection_for(settings.model, settings.dimension)
    if not store.has_collection(collection):
        raise ConfigError(f"no collection {collection}; collections: {', '.join(store.collections())}")
    return collection


def _rebuild(store: MilvusStore, settings: Settings, args: argparse.Namespace) -> int:
    try:
        params = json.loads(args.params)
    except ValueError as exc:
        raise ConfigError(f"--params is not JSON: {exc}") from exc
    if not isinstance(params, dict):
        raise ConfigError("--params must be a JSON object")
    collection = _collection(store, settings, args)
    result = rebuild(store, collection, args.index_type, params, progress=lambda m: print(m, flush=True))
    print(f"{collection} now uses {result.new} ({args.index_type} {json.dumps(params)}): "
          f"{result.copied:,} rows copied, {result.caught_up:,} caught up, {result.old} dropped, "
          f"{result.seconds:.1f} s")
    if args.index_type != settings.index_type or params != settings.index_params:
        print(f"new collections still get {settings.index_type} {json.dumps(settings.index_params)}; "
              f"set index_type / index_params to match")
    return EXIT_OK


def _tune(store: MilvusStore, settings: Settings, args: argparse.Namespace) -> int:
    if not 0 < args.target_recall <= 1 or args.queries < 1 or args.top_k < 1:
        raise ConfigError("--target-recall must be in (0, 1], --queries and --top-k at least 1")
    collection = _collection(store, settings, args)

    def show(point: SweepPoint) -> None:
        if not args.json:
            print(f"  {point.value:>6}  recall@{args.top_k} {point.recall:.3f}  "
                  f"p50 {point.p50_ms:7.1f} ms  p95 {point.p95_ms:7.1f} ms", flush=True)

    if not args.json:
        print(f"{collection}: exact top-{args.top_k} of {args.queries} stored vectors by brute force ...",
              flush=True)
    result = tune(store, settings, collection, queries=args.queries, top_k=args.top_k,
                  target=args.target_recall, progress=show)
    return _tune_report(result, args.json)


def _tune_report(result: TuneResult, as_json: bool) -> int:
    lines = settings_lines(result.collection, result.param, result.chosen.value) if result.chosen else None
    if as_json:
        print(json.dumps({**asdict(result), "settings": lines}, indent=2))
    elif lines:
        print(f"chosen: {result.param} = {result.chosen.value if result.chosen else ''} "
              f"(smallest reaching recall {result.target}); add to the settings file:\n  {lines[0]}\n"
              f"or to the environment:\n  {lines[1]}")
    else:
        print(f"no {result.param} reached recall {result.target}; consider rebuilding the index "
              "with larger build parameters")
    return EXIT_OK if lines else EXIT_FAILED
