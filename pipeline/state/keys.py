"""Every Redis key name vidsearch uses, built in one place (see docs/design.md for the table)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one prefix (``settings.redis_prefix``)."""

    prefix: str = "vs"

    @property
    def jobs(self) -> str:
        return f"{self.prefix}:jobs"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def rejects(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:rejects"

    def failed(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:failed"

    def items(self, job_id: str) -> str:
        """The job's index of item keys as a list of hex keys: written before the index was
        packed (``item_index``); read, and converted by ``vidsearch ledger compact``."""
        return f"{self.prefix}:job:{job_id}:items"

    def item_index(self, job_id: str) -> str:
        """The job's index of item keys: a string of 16-byte binary keys, appended at admission."""
        return f"{self.prefix}:job:{job_id}:keys"

    def previously_failed(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:pfailed"

    def busy(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:busy"

    def item(self, item_key: str) -> str:
        return f"{self.prefix}:item:{item_key}"

    def done(self, item_key: str) -> tuple[str, str]:
        """Where a done item's compact record lives: one of 4,096 shared hashes (by the key's first
        3 hex digits) and its field (the other 29)."""
        return f"{self.prefix}:done:{item_key[:3]}", item_key[3:]

    def written(self, item_key: str) -> str:
        return f"{self.prefix}:item:{item_key}:w"

    @property
    def wait(self) -> str:
        return f"{self.prefix}:wait"

    @property
    def creating(self) -> str:
        return f"{self.prefix}:creating"

    @property
    def inflight(self) -> str:
        return f"{self.prefix}:inflight"

    @property
    def segments(self) -> str:
        return f"{self.prefix}:segments"

    @property
    def dead(self) -> str:
        return f"{self.prefix}:segments:dead"

    @property
    def quota(self) -> str:
        return f"{self.prefix}:quota"

    @property
    def limits(self) -> str:
        """The quota's window dimensions (``pipeline/state/limits.py``)."""
        return f"{self.prefix}:quota:limits"

    @property
    def hold(self) -> str:
        """Which limit holds admission and until when (``dimension|epoch``; expires then)."""
        return f"{self.prefix}:quota:hold"

    def media(self, collection: str) -> str:
        """What finished tasks of ``collection`` taught: ``n`` tasks, ``sum_s`` seconds of media."""
        return f"{self.prefix}:media:{collection}"

    def held(self, job_id: str) -> str:
        """Waiting records of a job at its budget (moved off the waiting list; re-queued when the
        budget is raised)."""
        return f"{self.prefix}:job:{job_id}:held"

    @property
    def stats(self) -> str:
        return f"{self.prefix}:stats"

    @property
    def tick(self) -> str:
        """The tick's heartbeat: set by every tick, expires when ticks stop."""
        return f"{self.prefix}:tick"

    @property
    def workers(self) -> str:
        """Worker heartbeats: a sorted set of ``{node}|{queues}`` scored by the last beat's time."""
        return f"{self.prefix}:workers"

    def lock(self, name: str) -> str:
        return f"{self.prefix}:lock:{name}"

    def qcache(self, model: str, dimension: int, digest: str, version: str = "") -> str:
        """A cached query-part embedding (per model version when there are versions)."""
        tail = f"{version}:{digest}" if version else digest
        return f"{self.prefix}:qcache:{model}:{dimension}:{tail}"

    def generation(self, collection: str) -> str:
        return f"{self.prefix}:gen:{collection}"

    def identity(self, collection: str) -> str:
        """The collection identity its generation was last seen with (``state/generation.py``)."""
        return f"{self.prefix}:gen:{collection}:identity"

    def restore(self, collection: str) -> str:
        """A restore's checkpoint (``pipeline/recovery/checkpoint.py``)."""
        return f"{self.prefix}:restore:{collection}"

    def rcache(self, collection: str, generation: int, digest: str) -> str:
        return f"{self.prefix}:rcache:{collection}:{generation}:{digest}"

    @property
    def rcache_index(self) -> str:
        return f"{self.prefix}:rcache:index"

    @property
    def versions(self) -> str:
        """Model versions: a hash of version id -> JSON record (``pipeline/versions.py``)."""
        return f"{self.prefix}:versions"

    def version_pointer(self, name: str) -> str:
        """``live``, ``previous`` (for rollback) or ``building`` (a re-embed running): a version id."""
        return f"{self.prefix}:version:{name}"

    def version_jobs(self, version: str) -> str:
        """The jobs that embed items for a version (a list of job ids)."""
        return f"{self.prefix}:version:{version}:jobs"

    def api_rate(self, key_name: str) -> str:
        """The request token bucket of one API key (by its name, never the key)."""
        return f"{self.prefix}:api:rate:{key_name}"
