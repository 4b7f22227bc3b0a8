"""``vidsearch demo``: the whole product in one command on a fresh machine.

Starts an ``EmbeddedStack`` on free ports in a throwaway data directory (so it never meets a running
``vidsearch up`` or the machine's own Redis), always with the sandbox and the bundled catalog
(``samples/catalog.yaml``: the sample URLs do not exist, so embeddings are simulated), submits the
bundled manifest (``samples/demo.csv``) with each URL replaced by the address of the sandbox's
video file of that entry (``catalog.media_url``: real, small MP4s drawn from the catalog's scenes,
so the page's cards play what a search found; this stack alone accepts its sandbox's loopback
address, ``allow_private_hosts``), shows progress, runs three example searches, checks that
each finds the video it should, and tears everything down. Exit 0 only when every item was
ingested and every search found its video.
"""

from __future__ import annotations

import csv
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from pipeline.clients import Clients
from pipeline.errors import StopRequestedError
from pipeline.ingest.manifest import LineRules
from pipeline.ingest.producer import Producer
from pipeline.ledger.records import Job
from pipeline.settings import Settings, env_name, load_settings
from pipeline.spec import EmbeddingSpec
from vidsearch.cli.display import print_hits, stderr_progress, ticking, wait_for_job
from vidsearch.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from vidsearch.sandbox.catalog import media_url
from vidsearch.stack.embedded import EmbeddedStack, stop_signals
from vidsearch.stack.services import free_port

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
MANIFEST = SAMPLES / "demo.csv"
CATALOG = SAMPLES / "catalog.yaml"

# The sandbox has no real quota: let the pipeline go as fast as this machine allows.
FAST_FIELDS: dict[str, Any] = {
    "tick_interval_s": 0.3, "poll_initial_s": 0.5, "poll_max_s": 2.0, "writer_max_wait_s": 0.2,
    "writer_flush_interval_s": 0.5, "rate_limit_per_min": 6000.0, "rate_burst": 100,
    "max_in_flight": 100,
    "allow_private_hosts": True,  # the manifest points at this stack's own sandbox on loopback
}


@dataclass(frozen=True)
class DemoSearch:
    """An example query and the video (a URL fragment) it must find first."""

    text: str
    expect: str
    category: str | None = None


SEARCHES = (
    DemoSearch("a dog surfing on a wave", "surfing-dog-at-the-beach"),
    DemoSearch("fresh pasta made by hand", "fresh-pasta-rolled-by-hand"),
    DemoSearch("sunrise", "dj-set-at-sunrise", category="music"),
)


def demo_settings(data_dir: Path, engine: str = "lite") -> tuple[Settings, dict[str, str]]:
    """Settings of a demo stack on free ports in ``data_dir``, and the same as environment variables."""
    ports: set[int] = set()
    while len(ports) < 5:
        ports.add(free_port())
    redis_port, milvus_port, sandbox_port, flower_port, api_port = sorted(ports)
    fields: dict[str, Any] = {
        **FAST_FIELDS,
        "redis_url": f"redis://127.0.0.1:{redis_port}/0",
        "milvus_uri": f"http://127.0.0.1:{milvus_port}",
        "twelvelabs_base_url": f"http://127.0.0.1:{sandbox_port}/v1.3",
        "flower_port": flower_port,
        "api_port": api_port,
        "data_dir": data_dir,
        "milvus_engine": engine,
    }
    settings = load_settings(**fields, twelve_labs_api_key=None)
    return settings, {env_name(name): str(value) for name, value in fields.items()}


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGINT and SIGTERM raise ``KeyboardInterrupt``, so teardown runs either way, also when the
    demo was started with SIGINT ignored (a shell's background job, ``nohup ... &``)."""

    def _raise(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, _raise) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_demo(
    data_dir: Path | None = None, keep: bool = False, speed: float = 20.0, engine: str = "lite"
) -> int:
    """Run the demo; see the module docstring. ``data_dir`` None: a temporary directory."""
    began = time.monotonic()
    root = (data_dir or Path(tempfile.mkdtemp(prefix="vidsearch-demo-"))).resolve()
    settings, env = demo_settings(root, engine)
    stack = EmbeddedStack(settings, sandbox=True, extra_env=env,
                          sandbox_args=["--catalog", str(CATALOG), "--speed", str(speed)])
    print(f"vidsearch demo: starting a throwaway stack in {root} (free ports; embeddings SIMULATED "
          "by the local sandbox) ...", flush=True)
    with stop_signals() as stop:
        stack.stop_event = stop
        try:
            stack.start()
        except StopRequestedError:
            return EXIT_INTERRUPTED
    code = EXIT_FAILED
    try:
        with _signals_interrupt():
            code = _run(settings, stack)
            if keep:
                _stay_up(stack)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr, flush=True)
        code = EXIT_INTERRUPTED
    finally:
        print("tearing the stack down ...", flush=True)
        with stop_signals():
            stack.stop()
    _farewell(stack, root, code, keep or data_dir is not None, time.monotonic() - began)
    return code


def _run(settings: Settings, stack: EmbeddedStack) -> int:
    urls = stack.urls()
    milvus = f"{urls['milvus']} ({settings.milvus_engine})"
    print(f"ready: Redis {urls['redis']}, Milvus {milvus}, sandbox {urls['twelvelabs']}\n"
          f"  Web page (search, jobs; open it while the demo runs): {urls['page']}\n"
          f"  Flower: {urls['flower']}\n  Logs: {urls['logs']}", flush=True)
    with Clients.from_settings(settings) as clients:
        job = _ingest(settings, clients, playable_manifest(settings))
        searched = _search_all(clients)
    return EXIT_OK if job.failures == 0 and searched else EXIT_FAILED


def _stay_up(stack: EmbeddedStack) -> None:
    """``--keep``: the stack stays up (the page keeps answering) until Ctrl-C or SIGTERM."""
    print(f"\n--keep: the stack stays up; search and watch jobs at {stack.urls()['page']}\n"
          "Press Ctrl-C to stop it.", flush=True)
    try:
        while stack.dead() is None:
            time.sleep(1.0)
    except KeyboardInterrupt:
        print("\nstopping on request", flush=True)
        return
    print(f"vidsearch: error: {stack.dead()} exited; stopping", file=sys.stderr, flush=True)


def playable_manifest(settings: Settings) -> Path:
    """``demo.csv`` with every URL the address of its video file on this stack's sandbox, written
    into the data directory."""
    base = str(settings.twelvelabs_base_url).removesuffix("/v1.3")
    with MANIFEST.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    out = settings.data_dir / MANIFEST.name
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**row, "url": media_url(base, row["url"])} for row in rows)
    return out


def _ingest(settings: Settings, clients: Clients, manifest: Path) -> Job:
    jobs = clients.jobs
    producer = Producer(jobs, EmbeddingSpec.from_settings(settings), LineRules.from_settings(settings))
    started = time.monotonic()
    summary = producer.submit([manifest], name="demo")
    print(f"submitted {summary.accepted} videos from {MANIFEST.name} as job {summary.job_id} "
          f"(playable: each URL a video file on the sandbox)", flush=True)
    job = wait_for_job(jobs, summary.job_id, stderr_progress(settings.progress_interval_s),
                       lambda: ticking(clients))
    c = job.counters
    print(f"ingested in {time.monotonic() - started:.0f} s: {c['done']} done, {c['failed']} failed, "
          f"{c['segments']} segments in Milvus", flush=True)
    return job


def _search_all(clients: Clients) -> bool:
    from pipeline.search.searcher import build_searcher  # noqa: PLC0415  (heavy imports only where used)

    searcher = build_searcher(clients.settings, clients)
    results = [_search(searcher, example) for example in SEARCHES]
    return all(results)


def _search(searcher: Any, example: DemoSearch) -> bool:
    flag = f" --category {example.category}" if example.category else ""
    print(f'\n$ vidsearch search "{example.text}"{flag}', flush=True)
    categories = [example.category] if example.category else []
    from pipeline.search.query import Query  # noqa: PLC0415

    hits = searcher.search(Query(text=example.text, categories=tuple(categories), top_k=5)).hits
    print_hits(hits)
    found = bool(hits) and example.expect in hits[0].url
    in_category = all(h.category == example.category for h in hits) if example.category else True
    if not (found and in_category):
        print(f"UNEXPECTED: the first hit should be {example.expect}"
              + (f", all hits in {example.category}" if example.category else ""), file=sys.stderr)
    return found and in_category


def _farewell(stack: EmbeddedStack, root: Path, code: int, keep: bool, elapsed_s: float) -> None:
    verdict = {EXIT_OK: "finished", EXIT_INTERRUPTED: "interrupted"}.get(code, "FAILED")
    print(f"\ndemo {verdict} in {elapsed_s:.0f} s; the stack is stopped.", flush=True)
    if code == EXIT_OK and not keep:
        shutil.rmtree(root, ignore_errors=True)
        print(f"removed {root} (run with --keep or --data-dir to keep the data and logs)", flush=True)
    else:
        print(f"data and logs kept in {root} (logs: {stack.log_dir})", flush=True)
    print("Next: `vidsearch up` runs the same stack in the foreground for your own manifests.", flush=True)
