"""What WAITing for a replica after each create mark costs, on a real Sentinel set.

``python -m bench.sentinel_wait [--marks N] [--creates N]``

A primary, one replica and three Sentinels (``start_sentinel_set``) and a sandbox, on this machine.
Two variants, alternating item by item so drift in the machine's load hits both alike:

- ``no WAIT``: ``JobStore(wait_replicas=0)``, what a plain ``redis://`` URL does;
- ``WAIT 1``: ``JobStore(wait_replicas=1)``, what ``Clients`` builds for a Sentinel URL;
- ``list lookup`` (whole creates only): no WAIT, but a task-list lookup (``find_task``) before every
  create, the reconciliation that would otherwise protect against a lost mark.

Figures: p50 and p95 latency and the rate of one process for a create mark (the create path's
Redis part alone: fenced lock acquire + the ``note_create`` script [+ WAIT] + lock release, items
admitted beforehand), and for a whole create through ``Embedder.create`` against the sandbox (mark,
the HTTP create, ``record_created``). Ratio = WAIT 1 / no WAIT.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import Row, machine, pct, table, write_results
from pipeline.clients import Clients
from pipeline.ingest.create import Embedder
from pipeline.ledger.store import Admission, JobStore, SubmitMode
from pipeline.settings import Settings, load_settings
from pipeline.spec import EmbeddingSpec, item_key
from pipeline.state.locks import FencedLock
from vidsearch.stack.services import SentinelSet, Service, start_sandbox, start_sentinel_set

VARIANTS = {"no WAIT": 0, "WAIT 1": 1}
LOOKUP = "list lookup"


def _settings(found: SentinelSet, sandbox: Service, prefix: str) -> Settings:
    return load_settings(redis_url=found.url, redis_prefix=prefix, twelvelabs_base_url=f"{sandbox.url}/v1.3",
                         rate_limit_per_min=10**6, rate_burst=10**4, max_in_flight=10**6)


def _admitted(jobs: JobStore, settings: Settings, tag: str, n: int) -> list[str]:
    spec = EmbeddingSpec.from_settings(settings)
    job = jobs.create_job(["bench.csv"], spec)
    urls = [f"https://cdn.example.com/bench/{tag}/clip-{i}.mp4" for i in range(n)]
    batch = [Admission(key=item_key(u, spec), category="bench", url=u) for u in urls]
    jobs.submit_batch(job, batch, SubmitMode())
    return jobs.admit(n, time.time() + 3600)


def _stores(clients: Clients) -> dict[str, JobStore]:
    return {name: JobStore(clients.redis, clients.keys, wait_replicas=wait, wait_timeout_ms=1000)
            for name, wait in VARIANTS.items()}


def mark_latencies(clients: Clients, n: int, tag: str) -> dict[str, list[float]]:
    """Seconds per create mark (lock acquire + mark [+ WAIT] + release), the variants alternating
    item by item."""
    stores = _stores(clients)
    keys = {name: _admitted(jobs, clients.settings, f"{tag}-{name}", n) for name, jobs in stores.items()}
    seconds: dict[str, list[float]] = {name: [] for name in stores}
    for i in range(n):
        for name, jobs in stores.items():
            key = keys[name][i]
            started = time.perf_counter()
            lock = FencedLock(clients.redis, clients.keys.lock(f"create:{key}"), 60.0)
            lock.acquire()
            jobs.note_create_attempt(key, time.time(), lock)
            lock.release()
            seconds[name].append(time.perf_counter() - started)
    return seconds


def create_latencies(clients: Clients, n: int, tag: str) -> dict[str, list[float]]:
    """Seconds per whole create (``Embedder.create`` against the sandbox), alternating likewise;
    a third variant reconciles instead of waiting: a task-list lookup (``find_task``, as after a
    crash) before every create, no WAIT."""
    stores = {**_stores(clients), LOOKUP: JobStore(clients.redis, clients.keys)}
    keys = {name: _admitted(jobs, clients.settings, f"{tag}-{name}", n) for name, jobs in stores.items()}
    embedders = {name: Embedder(clients.redis, jobs, clients.gateway, clients.settings)
                 for name, jobs in stores.items()}
    spec = EmbeddingSpec.from_settings(clients.settings)
    seconds: dict[str, list[float]] = {name: [] for name in stores}
    for i in range(n):
        for name, embedder in embedders.items():
            key = keys[name][i]
            started = time.perf_counter()
            if name == LOOKUP:
                item = stores[name].get_item(key)
                assert item is not None
                assert clients.gateway.find_task(item.url, spec, since=time.time()) is None
            outcome = embedder.create(key, charged=True)
            seconds[name].append(time.perf_counter() - started)
            assert outcome.kind == "created", outcome
    return seconds


def run(marks: int, creates: int, root: Path) -> list[Row]:
    found = start_sentinel_set(root / "sentinel", replicas=1)
    sandbox = start_sandbox(root, args=["--speed", "100"])
    try:
        settings = _settings(found, sandbox, "bench:wait")
        with Clients.from_settings(settings) as clients:
            measured = {"marks": mark_latencies(clients, marks, "m"),
                        "creates": create_latencies(clients, creates, "c")}
    finally:
        sandbox.stop()
        found.stop()
    rows = []
    for figure, unit in (("marks", "create mark (lock + mark + release)"),
                         ("creates", "whole create (Embedder.create, sandbox)")):
        base, waited = measured[figure]["no WAIT"], measured[figure]["WAIT 1"]
        for label, q in (("p50", 50.0), ("p95", 95.0)):
            b, w = pct(base, q) * 1000, pct(waited, q) * 1000
            rows.append(Row("W", f"{unit} {label} ms, WAIT 1", f"{w:.2f}", f"{b:.2f} (no WAIT)",
                            f"{w / b:.2f}", extra={"samples_ms": {"no WAIT": b, "WAIT 1": w}}))
        per_s = len(waited) / sum(waited), len(base) / sum(base)
        rows.append(Row("W", f"{unit} per s (one process), WAIT 1", f"{per_s[0]:.1f}",
                        f"{per_s[1]:.1f} (no WAIT)", f"{per_s[0] / per_s[1]:.2f}"))
        if LOOKUP in measured[figure]:
            looked = measured[figure][LOOKUP]
            b, w = pct(base, 50.0) * 1000, pct(looked, 50.0) * 1000
            rows.append(Row("W", f"{unit} p50 ms, task-list lookup first", f"{w:.2f}", f"{b:.2f} (no WAIT)",
                            f"{w / b:.2f}"))
            rate = len(looked) / sum(looked)
            rows.append(Row("W", f"{unit} per s (one process), task-list lookup first", f"{rate:.1f}",
                            f"{per_s[1]:.1f} (no WAIT)", f"{rate / per_s[1]:.2f}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--marks", type=int, default=2000)
    parser.add_argument("--creates", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-wait-") as tmp:
        rows = run(args.marks, args.creates, Path(tmp))
    meta = machine()
    print(f"machine: {meta}")
    print(table(rows))
    write_results(rows, meta, f"{time.strftime('%Y%m%d-%H%M%S')}-sentinel-wait.json")


if __name__ == "__main__":
    main()
