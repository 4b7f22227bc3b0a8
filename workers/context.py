"""Long-lived clients, built once per worker process after fork (never shared across a fork)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import cached_property

import redis

from pipeline.clients import Clients
from pipeline.ingest.create import Embedder
from pipeline.ingest.polling import Poller
from pipeline.ingest.scheduler import Scheduler
from pipeline.ingest.writer import SegmentWriter
from pipeline.ledger.store import JobStore
from pipeline.milvus.store import MilvusStore
from pipeline.settings import Settings, get_settings
from pipeline.state.keys import Keys
from pipeline.state.quota import Quota
from pipeline.twelvelabs import TwelveLabsGateway


@dataclass
class Runtime:
    """This process's clients (``pipeline/clients.py``) and domain services, each built on first use."""

    settings: Settings

    @cached_property
    def clients(self) -> Clients:
        return Clients.from_settings(self.settings)

    @property
    def redis(self) -> redis.Redis[bytes]:
        return self.clients.redis

    @property
    def keys(self) -> Keys:
        return self.clients.keys

    @property
    def jobs(self) -> JobStore:
        return self.clients.jobs

    @property
    def quota(self) -> Quota:
        return self.clients.quota

    @property
    def gateway(self) -> TwelveLabsGateway:
        return self.clients.gateway

    @property
    def store(self) -> MilvusStore:
        return self.clients.store

    @cached_property
    def embedder(self) -> Embedder:
        return Embedder(self.redis, self.jobs, self.gateway, self.settings)

    @cached_property
    def poller(self) -> Poller:
        return Poller(self.redis, self.jobs, self.gateway, self.settings)

    @cached_property
    def scheduler(self) -> Scheduler:
        return Scheduler(self.redis, self.jobs, self.quota, self.settings)

    @cached_property
    def writer(self) -> SegmentWriter:
        consumer = f"{socket.gethostname()}-{os.getpid()}"
        return SegmentWriter(self.redis, self.store, self.jobs, self.settings, consumer,
                             archive=self.clients.archive)


_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The process's runtime, built lazily (so a fork never inherits live connections)."""
    global _runtime  # noqa: PLW0603  (one per process by design)
    if _runtime is None:
        _runtime = Runtime(get_settings())
    return _runtime


def reset_runtime() -> None:
    global _runtime  # noqa: PLW0603
    _runtime = None
