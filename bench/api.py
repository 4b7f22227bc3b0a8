"""Section 8: the HTTP API (``vidsearch serve``) against the same search called in-process.

A corpus of synthetic clip segments (``bench/search.py``'s rows) is upserted and flushed into
Milvus Lite; query embeddings come from the sandbox. The same searches are then run

* in-process: ``Searcher.search`` from a thread pool of ``c`` threads (the baseline), and
* over HTTP: ``GET /v1/search`` from ``c`` concurrent aiohttp clients against ``vidsearch serve``
  (a separate process with no API key, so the per-key token bucket still costs its Redis call),

at ``c`` = 1, 8 and 32, twice: **cached** (the same query every time: a result cache hit, no embed
call, no Milvus call) and **uncached** (a new query text every time: an embed call to the sandbox
and the Milvus searches). Each reports requests/s and p50/p95 latency; the ratio is HTTP over
in-process. Goals: HTTP overhead (p95 HTTP minus p95 in-process, one client) <= 5 ms; a cached
search's p95 over HTTP (one client) <= 5 ms. Both judged on the cached rows: an uncached search
takes an embed call and several Milvus searches, whose spread dwarfs a few milliseconds. Uncached
at 8 and 32 clients: HTTP requests/s >= 0.8 of in-process, and HTTP p95 at 32 <= 1.5 x in-process.

The whole section runs once per Milvus engine (Lite, then the milvus 2.3.5 server); ``--workers``
starts ``vidsearch serve --workers N`` (default 1). A 503 (``overloaded``: no search slot within
``api_queue_deadline_s``) is counted in the row, not raised; requests/s counts the served ones.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from bench.common import Row, log, pct, table
from bench.search import DIM, MODEL, rows_batch
from pipeline.clients import Clients
from pipeline.search.query import Query
from pipeline.search.searcher import build_searcher
from pipeline.settings import Settings, env_name, load_settings
from vidsearch.stack.services import Service, free_port, start_milvus_engine, start_redis, start_sandbox

LEVELS = (1, 8, 32)
CACHED_TEXT = "surfing dog at the beach"


def _uncached_texts(prefix: str, n: int) -> list[str]:
    return [f"{prefix} dog beach surfing {i}" for i in range(n)]


def inprocess(searcher: Any, texts: list[str], concurrency: int) -> tuple[list[float], float]:
    """Latencies (ms) of ``searcher.search`` over ``texts`` from ``concurrency`` threads; wall s."""

    def one(text: str) -> float:
        started = time.perf_counter()
        searcher.search(Query(text=text, top_k=10))
        return (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        samples = list(pool.map(one, texts))
    return samples, time.perf_counter() - started


async def _http(base: str, texts: list[str], concurrency: int) -> tuple[list[float], float]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for text in texts:
        queue.put_nowait(text)
    samples: list[float] = []
    server: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            while not queue.empty():
                text = queue.get_nowait()
                started = time.perf_counter()
                async with session.get(f"{base}/v1/search", params={"text": text, "top_k": "10"}) as resp:
                    await resp.read()
                    if resp.status == 503:
                        REFUSED.append(text)
                        continue
                    if resp.status != 200:
                        raise RuntimeError(f"HTTP {resp.status}: {(await resp.text())[:200]}")
                samples.append((time.perf_counter() - started) * 1000)
                server.append(float(resp.headers["server-timing"].split("dur=")[1]))

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        SERVER_MS[:] = server
        return samples, time.perf_counter() - started


SERVER_MS: list[float] = []
"""Server-side durations (``Server-Timing``) of the last ``over_http`` run."""
SERVE_SETTINGS: dict[str, Any] = {}
"""Settings of the ``vidsearch serve`` process beyond the bench's own (``--serve-setting``)."""
REFUSED: list[str] = []
"""Queries answered 503 (overloaded) since the last ``over_http`` started."""


def over_http(base: str, texts: list[str], concurrency: int) -> tuple[list[float], float]:
    REFUSED.clear()
    return asyncio.run(_http(base, texts, concurrency))


def _rate(n: int, wall_s: float) -> str:
    per_s = n / wall_s if wall_s else 0.0
    return f"{per_s:,.0f}/s" if per_s >= 10 else f"{per_s:.2f}/s"


def _row(kind: str, c: int, http: tuple[list[float], float], local: tuple[list[float], float], *,
         goal: str = "reported", met: bool | None = None, engine: str = "lite") -> Row:
    (hs, hw), (ls, lw) = http, local
    ratio = pct(hs, 95) / pct(ls, 95) if pct(ls, 95) else 0.0
    ss = list(SERVER_MS)
    refused = f", {len(REFUSED)} refused (503)" if REFUSED else ""
    return Row(
        "8", f"{engine}: {kind}, {c} client(s): HTTP req/s, p50 / p95 ms (server-side p50 / p95)"
        + refused,
        f"{_rate(len(hs), hw)}, {pct(hs, 50):.2f} / {pct(hs, 95):.2f} "
        f"({pct(ss, 50):.2f} / {pct(ss, 95):.2f})",
        f"in-process {_rate(len(ls), lw)}, {pct(ls, 50):.2f} / {pct(ls, 95):.2f}",
        f"p95 {ratio:.2f}x, +{pct(hs, 95) - pct(ls, 95):.2f} ms", goal, met,
        {"http_ms": hs, "server_ms": ss, "http_wall_s": hw, "inprocess_ms": ls, "inprocess_wall_s": lw},
    )


def uncached_goal(c: int, http: tuple[list[float], float], local: tuple[list[float], float]
                  ) -> tuple[str, bool | None]:
    """The goal of an uncached row at ``c`` clients (none at 1)."""
    if c == 1:
        return "reported", None
    rate = len(http[0]) / http[1] / (len(local[0]) / local[1])  # served requests / s
    met = rate >= 0.8
    if c == 32:
        return f"req/s >= 0.8x, p95 <= 1.5x (req/s {rate:.2f}x)", met and \
            pct(http[0], 95) <= 1.5 * pct(local[0], 95)
    return f"req/s >= 0.8x (req/s {rate:.2f}x)", met


def measure(searcher: Any, base: str, requests: dict[str, int], engine: str = "lite") -> list[Row]:
    rows: list[Row] = []
    searcher.search(Query(text=CACHED_TEXT, top_k=10))  # fill the result cache
    over_http(base, [CACHED_TEXT] * 20, 4)  # warm the server's pools
    for c in LEVELS:
        n = requests["cached"] * max(1, c // 4)
        local = inprocess(searcher, [CACHED_TEXT] * n, c)
        http = over_http(base, [CACHED_TEXT] * n, c)
        if c == 1:
            p95 = pct(http[0], 95)
            overhead = p95 - pct(local[0], 95)
            rows.append(_row("cached", c, http, local, goal="p95 <= 5 ms; overhead <= 5 ms",
                             met=p95 <= 5.0 and overhead <= 5.0, engine=engine))
        else:
            rows.append(_row("cached", c, http, local, engine=engine))
        log(rows[-1].name + ": " + rows[-1].value + " vs " + rows[-1].baseline)
    for c in LEVELS:
        n = max(requests["uncached"], 2 * c)
        local = inprocess(searcher, _uncached_texts(f"local{c}", n), c)
        http = over_http(base, _uncached_texts(f"http{c}", n), c)
        goal, met = uncached_goal(c, http, local)
        rows.append(_row("uncached", c, http, local, goal=goal, met=met, engine=engine))
        log(rows[-1].name + ": " + rows[-1].value + " vs " + rows[-1].baseline)
    return rows


def _serve(settings: Settings, tmp: Path, workers: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {env_name(k): str(v) for k, v in {
        "redis_url": settings.redis_url, "milvus_uri": settings.milvus_uri,
        "twelvelabs_base_url": settings.twelvelabs_base_url, "collection_prefix": settings.collection_prefix,
        "api_rate_per_min": 1e9, "api_rate_burst": 1_000_000, "log_format": "json",
        # the in-process baseline's Twelve Labs quota: at the default (60/min, burst 10) every
        # uncached search over HTTP waited for a token, about one a second
        "rate_limit_per_min": settings.rate_limit_per_min, "rate_burst": settings.rate_burst,
        **SERVE_SETTINGS,
    }.items()}
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("VIDSEARCH_", "TWELVE"))}, **env}
    log_file = (tmp / "serve.log").open("wb")
    argv = [sys.executable, "-m", "vidsearch", "serve", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(argv, env=env,
                            stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            over_http(base, [CACHED_TEXT], 1)
            return proc, base
        except (aiohttp.ClientError, RuntimeError):
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"vidsearch serve did not answer; see {tmp / 'serve.log'}")


def _corpus(clients: Clients, rows: int) -> None:
    store = clients.store
    name = store.ensure_collection(MODEL, DIM)
    rng = np.random.default_rng(7)
    for start in range(0, rows, 2000):
        store.upsert_rows(name, rows_batch(start, min(2000, rows - start), rng, "api-bench"))
    store.flush(name)


def run(tmp: Path, quick: bool, engines: tuple[str, ...] = ("lite", "server"), workers: int = 1
        ) -> tuple[list[Row], dict[str, Any]]:
    rows: list[Row] = []
    info: dict[str, Any] = {}
    for engine in engines:
        got, info = run_engine(tmp / engine, quick, engine, workers)
        rows += got
    return rows, info


def run_engine(tmp: Path, quick: bool, engine: str, workers: int) -> tuple[list[Row], dict[str, Any]]:
    services: list[Service] = []
    proc: subprocess.Popen[bytes] | None = None
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        redis_service = start_redis(tmp / "api-redis")
        services.append(redis_service)
        milvus = start_milvus_engine(engine, tmp / "api-milvus")  # type: ignore[arg-type]
        services.append(milvus)
        sandbox = start_sandbox(tmp)
        services.append(sandbox)
        settings = load_settings(
            redis_url=f"redis://{redis_service.host}:{redis_service.port}/0", milvus_uri=milvus.url,
            twelvelabs_base_url=f"{sandbox.url}/v1.3", collection_prefix="apibench",
            rate_limit_per_min=1e6, rate_burst=100_000,
        )
        with Clients.from_settings(settings) as clients:
            rows_n = 8000 if quick else 40_000
            _corpus(clients, rows_n)
            proc, base = _serve(settings, tmp, workers)
            requests = {"cached": 200 if quick else 500, "uncached": 16 if quick else 40}
            rows = measure(build_searcher(clients.settings, clients), base, requests, engine)
        return rows, {"corpus_rows": rows_n, "requests": requests, "workers": workers}
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        for service in reversed(services):
            service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--engines", default="lite,server")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--serve-setting", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting of the server process (repeatable)")
    args = parser.parse_args()
    SERVE_SETTINGS.update(item.split("=", 1) for item in args.serve_setting)
    with tempfile.TemporaryDirectory() as tmp:
        rows, info = run(Path(tmp), args.quick, tuple(args.engines.split(",")), args.workers)
    print(table(rows))
    print(info)


if __name__ == "__main__":
    main()

