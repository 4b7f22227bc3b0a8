"""Manifest -> job: stream the lines, submit them in batches, record every rejected line.

Memory stays flat whatever the manifest's size: lines are read one at a time and submitted in
batches of ``BATCH`` (one Lua call each). Duplicates are found in Redis (an item already owned by
this job), so no set of seen URLs grows in the producer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.ingest.manifest import LineRules, ManifestLine, Rejected, read_manifest
from pipeline.ledger.store import Admission, JobStore, SubmitMode
from pipeline.settings import Settings
from pipeline.spec import EmbeddingSpec, item_key
from pipeline.versions import Versions, ingest_targets

BATCH = 1000
DEFAULT_MODE = SubmitMode()


@dataclass(slots=True)
class SubmitSummary:
    """What a submission did (the job's counters right after it)."""

    job_id: str
    lines: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    skipped: int = 0
    in_progress: int = 0
    previously_failed: int = 0
    queued: int = 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class Producer:
    def __init__(
        self, jobs: JobStore, spec: EmbeddingSpec, rules: LineRules, collection: str = "",
        max_minutes: float = 0.0,
    ) -> None:
        """``collection``: the model version's collection its jobs write to (default: the
        model's collection, ``MilvusStore.collection_for``); ``max_minutes``: each job's budget in
        media minutes (0: none), recorded before its first item can be admitted."""
        self.jobs = jobs
        self.spec = spec
        self.rules = rules
        self.collection = collection
        self.max_minutes = max_minutes

    def submit(
        self, paths: Sequence[Path], mode: SubmitMode = DEFAULT_MODE, name: str = "",
        labels: Sequence[str] | None = None,
    ) -> SubmitSummary:
        """Record a job for ``paths`` and queue its items; the job is sealed at the end.

        ``labels`` (one per path) name the manifests in the job and its rejects instead of the
        paths (an upload's temporary file). Every manifest is opened and its header checked
        first: a missing or unreadable manifest raises ``ManifestError`` before any job exists.
        """
        names = list(labels) if labels is not None else [str(p) for p in paths]
        readers = [read_manifest(path, self.rules, label) for path, label in zip(paths, names, strict=True)]
        job_id = self.jobs.create_job(names, self.spec, name, self.collection, self.max_minutes)
        summary = SubmitSummary(job_id)
        for records in readers:
            self._submit_file(records, summary, mode)
        self.jobs.seal(job_id)
        return summary

    def _submit_file(
        self, records: Iterable[ManifestLine | Rejected], summary: SubmitSummary, mode: SubmitMode
    ) -> None:
        batch: list[Admission] = []
        rejects: list[Rejected] = []
        for record in records:
            summary.lines += 1
            if isinstance(record, Rejected):
                rejects.append(record)
            else:
                batch.append(self._admission(record))
            if len(batch) >= BATCH or len(rejects) >= BATCH:
                self._flush(summary, batch, rejects, mode)
        self._flush(summary, batch, rejects, mode)

    def _admission(self, line: ManifestLine) -> Admission:
        return Admission(
            key=item_key(line.url, self.spec), category=line.category, url=line.url,
            title=line.title, metadata=json.dumps(line.metadata, ensure_ascii=False),
        )

    def _flush(
        self, summary: SubmitSummary, batch: list[Admission], rejects: list[Rejected], mode: SubmitMode
    ) -> None:
        job_id = summary.job_id
        if batch:
            result = self.jobs.submit_batch(job_id, batch, mode)
            summary.queued += result.queued
            summary.duplicates += result.duplicates
            summary.skipped += result.skipped
            summary.in_progress += result.in_progress
            summary.previously_failed += result.previously_failed
            summary.accepted += (
                result.queued + result.skipped + result.in_progress + result.previously_failed
            )
        if rejects:
            self.jobs.add_rejects(job_id, _reject_dicts(rejects))
            summary.rejected += len(rejects)
        self.jobs.add_counts(job_id, lines=len(batch) + len(rejects), rejected=len(rejects))
        batch.clear()
        rejects.clear()


def _reject_dicts(rejects: Iterable[Rejected]) -> list[dict[str, object]]:
    return [{"file": r.file, "line": r.line, "reason": r.reason} for r in rejects]


def submit_to_versions(
    jobs: JobStore, versions: Versions, settings: Settings, rules: LineRules,
    paths: Sequence[Path], *, mode: SubmitMode = DEFAULT_MODE, name: str = "",
    labels: Sequence[str] | None = None, max_minutes: float | None = None,
) -> list[SubmitSummary]:
    """Submit ``paths`` once per model version a new ingest goes to (``versions.ingest_targets``):
    the live one first, then the one a re-embed is building, so it is complete at promotion.
    Before any version exists: one job with the settings' spec, as always. Each job's budget is
    ``max_minutes`` (None: ``job_max_media_minutes``)."""
    budget = settings.job_max_media_minutes if max_minutes is None else max_minutes
    targets = ingest_targets(versions)
    if not targets:
        producer = Producer(jobs, EmbeddingSpec.from_settings(settings), rules, max_minutes=budget)
        return [producer.submit(paths, mode, name, labels)]
    summaries = []
    for version in targets:
        producer = Producer(jobs, version.spec, rules, version.collection, budget)
        summary = producer.submit(paths, mode, name, labels)
        versions.add_job(version.id, summary.job_id)
        summaries.append(summary)
    return summaries
