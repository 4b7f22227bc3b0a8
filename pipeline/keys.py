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
        """The job's index of item keys (a list, appended at admission; read by verify)."""
        return f"{self.prefix}:job:{job_id}:items"

    def previously_failed(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:pfailed"

    def busy(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:busy"

    def item(self, item_key: str) -> str:
        return f"{self.prefix}:item:{item_key}"

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
    def stats(self) -> str:
        return f"{self.prefix}:stats"

    @property
    def tick(self) -> str:
        """The tick's heartbeat: set by every tick, expires when ticks stop."""
        return f"{self.prefix}:tick"

    def lock(self, name: str) -> str:
        return f"{self.prefix}:lock:{name}"

    def qcache(self, model: str, dimension: int, digest: str) -> str:
        return f"{self.prefix}:qcache:{model}:{dimension}:{digest}"

    def generation(self, collection: str) -> str:
        return f"{self.prefix}:gen:{collection}"

    def rcache(self, collection: str, generation: int, digest: str) -> str:
        return f"{self.prefix}:rcache:{collection}:{generation}:{digest}"

    @property
    def rcache_index(self) -> str:
        return f"{self.prefix}:rcache:index"
