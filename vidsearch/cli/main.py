"""The ``vidsearch`` command: parses arguments and delegates to ``vidsearch.cli.commands``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import redis

from pipeline.errors import VidsearchError
from vidsearch.cli import archive_commands
from vidsearch.exit_codes import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_REDIS

Handler = Callable[[argparse.Namespace], int]


def _sub(subs: argparse._SubParsersAction[argparse.ArgumentParser], name: str, text: str,
         handler: str) -> argparse.ArgumentParser:
    parser = subs.add_parser(name, help=text, description=text)
    parser.set_defaults(handler=handler)
    return parser


def _add_ingest(subs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = _sub(subs, "submit", "Submit manifests (CSV or JSONL) as a job", "submit")
    p.add_argument("manifests", nargs="+", type=Path, help="manifest files")
    p.add_argument("--category", help="category for lines that have none")
    p.add_argument("--force", action="store_true", help="re-embed items already ingested")
    p.add_argument("--retry-failed", action="store_true",
                   help="queue again items that failed in an earlier job (by default they are "
                        "counted as previously failed and cost nothing)")
    p.add_argument("--wait", action="store_true", help="wait until every item is done or failed")
    p.add_argument("--json", action="store_true", help="print one JSON summary")
    p.add_argument("--name", default="", help="a name for the job")
    p.add_argument("--max-minutes", type=float, metavar="M",
                   help="the job's budget in minutes of media: it stops admitting there, the rest "
                   "waits (default: job_max_media_minutes)")
    p.add_argument("--dry-run", action="store_true",
                   help="price the manifests (their duration_s column) and submit nothing")
    p = _sub(subs, "budget", "Set a job's budget in media minutes; items held at the old one queue "
             "again", "budget")
    p.add_argument("job", help="job id")
    p.add_argument("--max-minutes", type=float, required=True, metavar="M",
                   help="the new budget (0: none)")
    p = _sub(subs, "status", "Show a job's progress (default: the latest job)", "status")
    p.add_argument("job", nargs="?", help="job id")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--watch", action="store_true", help="refresh until the job finishes")
    p = _sub(subs, "jobs", "List recent jobs", "jobs")
    p.add_argument("--limit", type=int, default=20, help="how many jobs")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = _sub(subs, "failures", "List a job's failed items with reasons and attempts", "failures")
    p.add_argument("job", help="job id")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = _sub(subs, "rejects", "List a job's rejected manifest lines", "rejects")
    p.add_argument("job", help="job id")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = _sub(subs, "retry", "Re-drive a job's failed and previously failed items (only those)",
             "retry")
    p.add_argument("job", help="job id")
    p = _sub(subs, "verify", "Compare a job's items with the rows in Milvus (exit 1 on a discrepancy)",
             "verify")
    p.add_argument("job", help="job id")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = _sub(subs, "ledger", "Ledger maintenance", "ledger")
    actions = p.add_subparsers(dest="ledger_action", required=True, metavar="ACTION")
    compact = actions.add_parser("compact", help="free a ledger written before done records were "
                                 "compact (done items' hashes, hex job indexes)")
    compact.add_argument("--json", action="store_true", help="print JSON")


def _add_search(subs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = _sub(subs, "search", "Search ingested videos by text, an example clip, an image, or a video "
             "(--like); exit 2 on a bad query", "search")
    p.add_argument("text", nargs="?", help="what to look for")
    p.add_argument("--clip", metavar="URL", help="an example video clip (embedded through the sync API)")
    p.add_argument("--clip-start", metavar="S", help="start of the clip range in seconds")
    p.add_argument("--clip-end", metavar="E", help="end of the clip range in seconds (at most 600 s long)")
    p.add_argument("--image", metavar="URL", help="an example image")
    p.add_argument("--text-image", action="store_true",
                   help="embed TEXT and --image together as one text_image part")
    p.add_argument("--weights", metavar="W", help="part weights, e.g. text=1,clip=2,image=1 (default equal)")
    p.add_argument("--modality-weights", metavar="W",
                   help="option weights, e.g. visual=0.6,audio=0.2,transcription=0.2 (default equal)")
    p.add_argument("--moments", action="store_true", help="return each video's best moments")
    p.add_argument("--max-moments", metavar="N", help="moments per video (default 3)")
    p.add_argument("--like", metavar="URL", help="videos similar to this ingested video")
    p.add_argument("--at", metavar="S", help="with --like: use the segment at S seconds")
    p.add_argument("--category", action="append", default=[], help="restrict (repeatable)")
    p.add_argument("--top-k", default="10", metavar="K", help="how many hits (default 10)")
    p.add_argument("--option", help="search one embedding option only (visual, audio, transcription)")
    p.add_argument("--segments", action="store_true", help="raw segments, not best per video")
    p.add_argument("--collapse-duplicates", action=argparse.BooleanOptionalAction, default=None,
                   help="keep only the best-ranked video of each duplicate group "
                   "(default: the search_collapse_duplicates setting)")
    p.add_argument("--min-score", metavar="S", help="relevance floor: hide hits scored below S "
                   "(default: the search_min_score setting; -1 shows every hit)")
    p.add_argument("--json", action="store_true", help="print JSON")


def _add_index(subs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = _sub(subs, "index", "Vector index: status, search-parameter tuning, rebuild", "index")
    actions = p.add_subparsers(dest="index_action", required=True, metavar="ACTION")
    status = actions.add_parser("status", help="index type and params, rows indexed, segments")
    status.add_argument("--json", action="store_true", help="print JSON")
    tune = actions.add_parser("tune", help="sweep ef/nprobe: recall vs latency; print the setting")
    tune.add_argument("--collection", help="collection (default: the current model's)")
    tune.add_argument("--queries", type=int, default=100, help="stored vectors used as queries")
    tune.add_argument("--target-recall", type=float, default=0.95, help="recall@k to reach")
    tune.add_argument("--top-k", type=int, default=10, help="k of recall@k")
    tune.add_argument("--json", action="store_true", help="print JSON")
    rebuild = actions.add_parser("rebuild", help="a new index type or build params; search keeps working")
    rebuild.add_argument("--collection", help="collection (default: the current model's)")
    rebuild.add_argument("--index-type", required=True, help="e.g. HNSW, IVF_FLAT, IVF_SQ8")
    rebuild.add_argument("--params", default="{}", help='build params as JSON, e.g. {"M": 32}')


def _add_versions(subs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = _sub(subs, "versions", "Model versions: collection, rows, items done/failed, which is live",
             "versions")
    p.add_argument("--json", action="store_true", help="print JSON")
    actions = p.add_subparsers(dest="versions_action", metavar="ACTION")
    drop = actions.add_parser("drop", help="remove a version that is not live (collection included)")
    drop.add_argument("version", help="version id, e.g. marengo3.0-512")
    drop.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p = _sub(subs, "reembed", "Re-embed every item of the live version into a new model version "
             "(search keeps using the live one)", "reembed")
    p.add_argument("--model", required=True, help="marengo3.0 or marengo3.5")
    p.add_argument("--dimension", type=int, help="Matryoshka dimension (marengo3.5: 128, 256, 512)")
    p.add_argument("--options", help="embedding options, e.g. visual,audio (default: the live version's)")
    p.add_argument("--dry-run", action="store_true",
                   help="print items, tasks, media minutes and the time the quota allows; change nothing")
    p.add_argument("--wait", action="store_true", help="wait until every item is done or failed")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = _sub(subs, "promote", "Switch search to a version (atomic alias switch) once it is complete",
             "promote")
    p.add_argument("version", help="version id, e.g. marengo3.5-256")
    p.add_argument("--allow-partial", metavar="N%",
                   help="promote when at least N%% of the live version's videos are in it")
    _sub(subs, "rollback", "Switch search back to the version live before the last promotion",
         "rollback")


def _add_restore(subs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = _sub(subs, "restore", "Rebuild a version's collection from the embedding archive (no "
             "Twelve Labs call; bulk import on a Milvus server, upserts on Milvus Lite; resumable)",
             "restore")
    p.add_argument("version", nargs="?", help="version id (default: the live version)")
    p.add_argument("--json", action="store_true", help="print JSON")


def _add_analytics(subs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = _sub(subs, "analytics", "Corpus analytics over one vector per video (exit 2 on bad input)",
             "analytics")
    kinds = p.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS")
    c = kinds.add_parser("clusters", help="k-means clusters with labels, central videos and a map")
    k = c.add_mutually_exclusive_group()
    k.add_argument("--k", type=int, default=8, help="number of clusters (default %(default)s)")
    k.add_argument("--auto", action="store_true", help="choose k by the best mean silhouette")
    c.add_argument("--category", help="only the videos of this category")
    c.add_argument("--plot", type=Path, metavar="FILE", help="write the 2-D map (PCA) as .png or .svg")
    o = kinds.add_parser("outliers", help="videos closer to another category than to their own")
    o.add_argument("--category", help="only the videos filed under this category")
    o.add_argument("--limit", type=int, help="at most this many")
    d = kinds.add_parser("duplicates", help="groups of near-identical videos (FAISS range search)")
    d.add_argument("--threshold", type=float,
                   help="cosine similarity in (0, 1] (default: the duplicate_threshold setting, 0.9)")
    t = kinds.add_parser("trends", help="videos and segments ingested per period, per category and cluster")
    t.add_argument("--by", choices=["day", "week"], default="day", help="period (default %(default)s)")
    t.add_argument("--k", type=int, help="clusters (default: chosen by silhouette)")
    t.add_argument("--plot", type=Path, metavar="FILE", help="write the plot as .png or .svg")
    for kind in (c, o, d, t):
        kind.add_argument("--json", action="store_true", help="print JSON")


def _add_supervise(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-supervise", dest="supervise", action="store_false",
        help="run Celery in this process instead of a child that is restarted when it dies",
    )


def _add_milvus_engine(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--milvus", choices=["lite", "server"],
        help="Milvus Lite, or a real Milvus standalone server (extra vidsearch[milvus-server]); "
             "default: the setting milvus_engine",
    )


def _add_runtime(subs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = _sub(subs, "worker", "Start a Celery worker", "worker")
    p.add_argument("--queues", default="embedding,polling,writing", help="comma-separated queues")
    p.add_argument("--concurrency", type=int, default=2, help="worker processes")
    p.add_argument("--name", default="vidsearch", help="worker node name (name@host)")
    p.add_argument("--schedule", type=Path, metavar="FILE",
                   help="a beat schedule file whose tasks this worker runs (e.g. config/beat_schedule.py)")
    _add_supervise(p)
    p = _sub(subs, "writer", "Start the batched writer (a worker on the writing queue)", "writer")
    p.add_argument("--name", default="writer", help="worker node name")
    _add_supervise(p)
    p = _sub(subs, "flower", "Start the Flower dashboard (basic auth from flower_basic_auth)", "flower")
    p.add_argument("--address", default="127.0.0.1", help="interface to listen on")
    p = _sub(subs, "beat", "Start Celery beat for a schedule file's rare entries (run exactly one)",
             "beat")
    p.add_argument("--schedule", type=Path, metavar="FILE", required=True,
                   help="the beat schedule file to run (e.g. config/beat_schedule.py)")
    p = _sub(subs, "up", "Run the embedded stack (Redis, Milvus, sandbox, workers, Flower) "
             "in the foreground until Ctrl-C", "up")
    _add_milvus_engine(p)
    p.add_argument("--concurrency", type=int, default=2, help="processes of the embedding/polling worker")
    p.add_argument("--sandbox-speed", type=float, default=1.0,
                   help="sandbox speed-up of task processing (no API key only; default %(default)s)")
    p = _sub(subs, "demo", "Ingest and search a bundled sample on a throwaway stack, then tear it down",
             "demo")
    p.add_argument("--data-dir", type=Path, help="keep the demo's data and logs here (default: a temp dir)")
    p.add_argument("--keep", action="store_true",
                   help="keep the stack up (web page, API, Flower) until Ctrl-C, and keep its data and logs")
    p.add_argument("--speed", type=float, default=20.0, help="sandbox speed-up (default %(default)s)")
    _add_milvus_engine(p)
    from vidsearch.sandbox.config import build_parser  # noqa: PLC0415  (the sandbox owns its options)

    p = _sub(subs, "sandbox", "Run the local Twelve Labs sandbox (Embed API v1 and v2)", "sandbox")
    build_parser(p)


def _add_ops(subs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = _sub(subs, "backfill", "Ingest manifest files or directories, new items only; for cron "
             "(exit 0 done, 1 items failed, 2 bad input, 3 locked, 4 timed out, 5 Redis)", "backfill")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                   help="manifest files or directories (their *.csv, *.jsonl, *.ndjson)")
    p.add_argument("--name", default="backfill", help="job name and lock name (runs never overlap)")
    p.add_argument("--category", help="category for lines that have none")
    p.add_argument("--wait-timeout", type=float, metavar="S", help="stop waiting after S seconds")
    p.add_argument("--max-minutes", type=float, metavar="M",
                   help="the run's budget in minutes of media (default: job_max_media_minutes)")
    p.add_argument("--lock-ttl", type=float, default=60.0, metavar="S",
                   help="the lock expires S seconds after its holder dies")
    p = _sub(subs, "serve", "Serve the HTTP API and the web page (loopback only without API keys)",
             "serve")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 in a container)")
    p.add_argument("--port", type=int, help="port (default: api_port, 8080)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="server processes on the port (default: api_workers, 1; more need a "
                   "Milvus server URI)")
    p = _sub(subs, "api-key", "Make an API key for `vidsearch serve`: prints the key once and the "
             "api_keys entry holding its digest", "api_key")
    p.add_argument("--name", default="client", help="the key's name (in logs and its rate bucket)")
    p.add_argument("--role", choices=["read", "admin"], default="read",
                   help="read: search; admin: search and jobs")
    p = _sub(subs, "metrics", "Serve Prometheus metrics of the whole fleet (read from Redis)", "metrics")
    p.add_argument("--port", type=int, help="port (default: metrics_port, else 9464)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 in a container)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidsearch", description="Make video collections searchable by meaning."
    )
    parser.add_argument("--config", type=Path, help="TOML settings file (env VIDSEARCH_CONFIG)")
    subs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_ingest(subs)
    _add_search(subs)
    _add_index(subs)
    _add_versions(subs)
    _add_restore(subs)
    _add_analytics(subs)
    _add_runtime(subs)
    _add_ops(subs)
    archive_commands.add_parser(subs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from vidsearch.cli import commands  # noqa: PLC0415  (keeps --help fast)

    handler: Handler = getattr(commands, f"cmd_{args.handler}")
    try:
        return handler(args)
    except VidsearchError as exc:
        print(f"vidsearch: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        print(f"vidsearch: error: cannot reach Redis at {_redis_where()}: {exc}", file=sys.stderr)
        return EXIT_REDIS
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _redis_where() -> str:
    """The Redis URL in use, without its password."""
    from pipeline.settings import env_name, get_settings  # noqa: PLC0415

    target = get_settings().redis_target
    if target.is_sentinel:
        return f"{target.shown} (set {env_name('redis_url')}; are the Sentinels and a primary up?)"
    parts = urlsplit(target.url)
    host = parts.hostname or "?"
    where = f"{parts.scheme}://{host}:{parts.port or 6379}{parts.path}"
    return f"{where} (set {env_name('redis_url')}; is `vidsearch up` running?)"
