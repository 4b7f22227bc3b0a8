"""``vidsearch restore`` and ``vidsearch archive export``: between the embedding archive and Milvus
(``pipeline.recovery``). Neither makes a Twelve Labs call."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.clients import Clients
from pipeline.errors import BadInputError
from pipeline.recovery.checkpoint import Checkpoints
from pipeline.recovery.export import export_collection
from pipeline.recovery.restore import Restorer, Target
from pipeline.settings import Settings
from pipeline.versions import live_alias
from vidsearch.cli.display import print_json, row_progress
from vidsearch.exit_codes import EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:
    from pipeline.archive.store import EmbeddingArchive


@dataclass(frozen=True, slots=True)
class Chosen:
    """The version (or, before versions exist, the settings' collection) a command works on."""

    name: str
    model: str
    target: Target


def choose(clients: Clients, version_id: str | None) -> Chosen:
    """``version_id``'s collection and aliases; without it, the live version's (before any
    version exists: the settings' collection)."""
    versions, settings = clients.versions, clients.settings
    version = versions.require(version_id) if version_id else versions.live()
    if version is None:
        collection = clients.store.collection_for(settings.model, settings.dimension)
        return Chosen(collection, settings.model, Target(collection, settings.dimension))
    aliases: tuple[str, ...] = (version.alias,)
    if version.id == versions.pointer("live"):
        aliases += (live_alias(settings),)
    return Chosen(version.id, version.spec.model,
                  Target(version.collection, version.dimension, aliases))


def archive_of(clients: Clients) -> EmbeddingArchive:
    archive = clients.archive
    if archive is None:
        raise BadInputError("the embedding archive is off (archive_url is empty): set "
                            "archive_url to where the writer archived the rows")
    return archive


def run_restore(args: argparse.Namespace, settings: Settings) -> int:
    with Clients.from_settings(settings) as clients:
        archive = archive_of(clients)
        chosen = choose(clients, args.version)
        bar = None if args.json else row_progress(f"restore {chosen.target.collection}",
                                                  settings.progress_interval_s)
        restorer = Restorer(archive, clients.store, Checkpoints(clients.redis, clients.keys),
                            settings, progress=bar,
                            say=lambda text: print(f"\nvidsearch: {text}", file=sys.stderr))
        report = restorer.run(chosen.target)
        if bar is not None:
            bar.end()
    if args.json:
        print_json({"version": chosen.name, **report.to_dict()})
    else:
        resumed = f", resumed after {report.resumed_at} done" if report.resumed_at else ""
        print(f"restored {report.rows} rows into {report.collection} by {report.method} in "
              f"{report.seconds:.1f} s{resumed}; Milvus counts {report.milvus_rows}")
        if report.refused:
            print(f"Milvus refused {report.refused} archived rows (left out; see above)")
        print("check it: vidsearch verify JOB (each job of this version)", file=sys.stderr)
    return EXIT_OK if report.milvus_rows >= report.rows else EXIT_FAILED


def run_export(args: argparse.Namespace, settings: Settings, archive: EmbeddingArchive) -> int:
    with Clients.from_settings(settings) as clients:
        chosen = choose(clients, args.version)
        collection = chosen.target.collection
        if not clients.store.has_collection(collection):
            raise BadInputError(f"Milvus has no collection {collection}: nothing to export")
        bar = None if args.json else row_progress(f"export {collection}", settings.progress_interval_s)
        rows = export_collection(archive, clients.store, collection, chosen.model,
                                 batch_rows=settings.restore_batch_rows, progress=bar)
        if bar is not None:
            bar.end()
    if args.json:
        print_json({"version": chosen.name, "collection": collection, "rows": rows})
    else:
        print(f"exported {rows} rows of {collection} into the archive")
    return EXIT_OK
