"""``vidsearch archive ACTION``: the embedding archive (``pipeline/archive``, docs/archive.md).

``add_parser`` builds the group and ``run`` dispatches by ``args.archive_action`` through
``ACTIONS``: a new action is one ``actions.add_parser`` line and one function in ``ACTIONS``.
Only argparse is imported at the top (``--help`` stays fast); pyarrow loads when an action runs.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING

from vidsearch.exit_codes import EXIT_OK

if TYPE_CHECKING:
    from pipeline.archive.store import EmbeddingArchive
    from pipeline.settings import Settings

Action = Callable[[argparse.Namespace, "EmbeddingArchive"], int]


def add_parser(subs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "The embedding archive beside Milvus: what it holds, compaction, export from Milvus"
    p = subs.add_parser("archive", help=text, description=text)
    p.set_defaults(handler="archive")
    actions = p.add_subparsers(dest="archive_action", required=True, metavar="ACTION")
    status = actions.add_parser("status", help="archived collections: model, dimension, rows, "
                                "copies, files, bytes")
    status.add_argument("--json", action="store_true", help="print JSON")
    compact = actions.add_parser("compact", help="rewrite a collection's files with one copy per "
                                 "primary key (default: every archived collection)")
    compact.add_argument("collection", nargs="?", metavar="COLLECTION", help="an archived collection")
    compact.add_argument("--json", action="store_true", help="print JSON")
    export = actions.add_parser("export", help="write a version's rows from Milvus into the "
                                "archive (collections built before it; a re-run is harmless)")
    export.add_argument("version", nargs="?", help="version id (default: the live version)")
    export.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.archive.store import EmbeddingArchive  # noqa: PLC0415  (pyarrow loads slowly)
    from pipeline.errors import ConfigError  # noqa: PLC0415
    from pipeline.settings import env_name  # noqa: PLC0415

    archive = EmbeddingArchive.from_settings(settings)
    if archive is None:
        raise ConfigError(f"the archive is off ({env_name('archive_url')} is empty)")
    return ACTIONS[args.archive_action](args, archive)


def _status(args: argparse.Namespace, archive: EmbeddingArchive) -> int:
    described = [archive.describe(name) for name in archive.collections()]
    if args.json:
        print(json.dumps({"archive": archive.url, "collections": [asdict(d) for d in described]}, indent=2))
        return EXIT_OK
    print(f"archive {archive.url}")
    if not described:
        print("  no archived collections")
    for d in described:
        print(f"  {d.collection}  {d.model} {d.dimension}-d  {d.rows:,} rows ({d.stored_rows:,} stored)  "
              f"{d.files:,} files  {d.bytes / 2**20:,.1f} MiB  categories: {', '.join(d.categories)}")
    return EXIT_OK


def _compact(args: argparse.Namespace, archive: EmbeddingArchive) -> int:
    names = [args.collection] if args.collection else archive.collections()
    results = [archive.compact(name) for name in names]
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
        return EXIT_OK
    if not results:
        print(f"archive {archive.url}: no archived collections")
    for r in results:
        print(f"{r.collection}: {r.rows_before:,} rows in {r.files_before:,} files -> {r.rows_after:,} "
              f"rows in {r.files_after:,} files ({r.bytes_before / 2**20:,.1f} -> "
              f"{r.bytes_after / 2**20:,.1f} MiB)")
    return EXIT_OK


def _export(args: argparse.Namespace, archive: EmbeddingArchive) -> int:
    from pipeline.settings import get_settings  # noqa: PLC0415
    from vidsearch.cli.restore_commands import run_export  # noqa: PLC0415

    return run_export(args, get_settings(), archive)


ACTIONS: dict[str, Action] = {"status": _status, "compact": _compact, "export": _export}
