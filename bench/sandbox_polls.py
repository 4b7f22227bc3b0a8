"""Sustained status polls per second against the Twelve Labs sandbox.

Starts a sandbox (``vidsearch.stack.services.start_sandbox``), creates ~200 tasks that stay
``processing`` (and a few ``ready`` ones for comparison), then hammers
``GET /v1.3/embed-v2/tasks/{id}``:

- with the real SDK (``TwelveLabs(...).embed.v_2.tasks.retrieve``) from threads and from processes;
- with a raw keep-alive client (aiohttp, many concurrent requests in one process), which shows the
  server's own ceiling;
- baselines in the same run: the cheapest route (``GET /_sandbox/health``) and polls of ready tasks
  (large cached bodies).

Prints a markdown table and writes it, with the machine description, into bench/README.md under
"## Sandbox status polls" (other sections are kept).

Usage: ``.venv/bin/python bench/sandbox_polls.py [--seconds N] [--tasks N] [--no-readme]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vidsearch.stack.services import start_sandbox  # noqa: E402  (after the path fix above)

KEY = "bench-key"
HEADING = "## Sandbox status polls"


@dataclass
class Row:
    client: str
    concurrency: str
    polls: int
    seconds: float
    latencies_ms: list[float]

    def line(self) -> str:
        lat = sorted(self.latencies_ms) or [0.0]
        p50 = statistics.median(lat)
        p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))]
        rate = self.polls / self.seconds
        return f"| {self.client} | {self.concurrency} | {rate:,.0f} | {p50:.2f} | {p95:.2f} |"


def post_json(url: str, body: object) -> object:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json", "x-api-key": KEY})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def create_tasks(base: str, count: int, speed: float, tag: str) -> list[str]:
    post_json(f"{base}/_sandbox/config", {"speed": speed})
    ids = []
    for i in range(count):
        body = {"input_type": "video", "model_name": "marengo3.0",
                "video": {"media_source": {"url": f"https://cdn.example.com/{tag}/clip-{i}.mp4"},
                          "segmentation": {"strategy": "fixed", "fixed": {"duration_sec": 6}}}}
        ids.append(post_json(f"{base}/v1.3/embed-v2/tasks", body)["_id"])  # type: ignore[index]
    return ids


def sdk_loop(base: str, ids: list[str], seconds: float) -> tuple[int, list[float]]:
    from twelvelabs import TwelveLabs

    client = TwelveLabs(api_key=KEY, base_url=f"{base}/v1.3")
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    i = 0
    while (now := time.perf_counter()) < deadline:
        client.embed.v_2.tasks.retrieve(ids[i % len(ids)])
        latencies.append((time.perf_counter() - now) * 1000)
        i += 1
    return i, latencies


def sdk_threads(base: str, ids: list[str], seconds: float, threads: int) -> Row:
    results: list[tuple[int, list[float]]] = []
    lock = threading.Lock()

    def run(offset: int) -> None:
        result = sdk_loop(base, ids[offset:] + ids[:offset], seconds)
        with lock:
            results.append(result)

    workers = [threading.Thread(target=run, args=(n * 7,)) for n in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    return Row("SDK retrieve (threads)", f"{threads} thread(s)", sum(r[0] for r in results),
               elapsed, [x for r in results for x in r[1]])


def _proc_entry(args: tuple[str, list[str], float]) -> tuple[int, list[float]]:
    return sdk_loop(*args)


def sdk_processes(base: str, ids: list[str], seconds: float, procs: int) -> Row:
    with mp.get_context("fork").Pool(procs) as pool:
        started = time.perf_counter()
        results = pool.map(_proc_entry, [(base, ids[n * 11:] + ids[:n * 11], seconds)
                                         for n in range(procs)])
        elapsed = time.perf_counter() - started
    return Row("SDK retrieve (processes)", f"{procs} process(es)", sum(r[0] for r in results),
               elapsed, [x for r in results for x in r[1]])


async def _raw(urls: list[str], seconds: float, concurrency: int) -> tuple[int, list[float], float]:
    import aiohttp

    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers={"x-api-key": KEY}) as session:
        deadline = time.perf_counter() + seconds

        async def worker(offset: int) -> None:
            i = offset
            while (now := time.perf_counter()) < deadline:
                async with session.get(urls[i % len(urls)]) as response:
                    await response.read()
                latencies.append((time.perf_counter() - now) * 1000)
                i += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(n * 3) for n in range(concurrency)))
        return len(latencies), latencies, time.perf_counter() - started


def raw_row(label: str, urls: list[str], seconds: float, concurrency: int) -> Row:
    count, latencies, elapsed = asyncio.run(_raw(urls, seconds, concurrency))
    return Row(label, f"{concurrency} in flight", count, elapsed, latencies)


def machine() -> str:
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"- nproc: {os.cpu_count()}\n- CPU: {model}\n- Python: {platform.python_version()}"
            f" ({platform.python_implementation()})\n- OS: {platform.system()} {platform.release()}"
            f"\n- load average at start (1/5/15 min): {load}")


def run_all(base: str, args: argparse.Namespace) -> list[Row]:
    processing = create_tasks(base, args.tasks, 0.0001, "processing")
    ready = create_tasks(base, 10, 1000.0, "ready")
    time.sleep(0.5)
    poll = [f"{base}/v1.3/embed-v2/tasks/{i}" for i in processing]
    seconds = args.seconds
    rows = [sdk_threads(base, processing, seconds, n) for n in (1, 4)]
    rows += [sdk_processes(base, processing, seconds, n) for n in (2, 4)]
    rows.append(raw_row("raw aiohttp keep-alive, processing tasks", poll, seconds, 32))
    rows.append(raw_row("baseline: raw GET /_sandbox/health", [f"{base}/_sandbox/health"],
                        seconds, 32))
    rows.append(raw_row("baseline: raw polls of ready tasks (33 x 512-d vectors, cached JSON)",
                        [f"{base}/v1.3/embed-v2/tasks/{i}" for i in ready], seconds, 32))
    return rows


def report(rows: list[Row], seconds: float, tasks: int) -> str:
    table = ["| client | concurrency | polls/s | p50 ms | p95 ms |", "|---|---|---|---|---|"]
    table += [row.line() for row in rows]
    return "\n".join([
        HEADING, "",
        f"`.venv/bin/python bench/sandbox_polls.py --seconds {seconds:g}`: one sandbox process "
        f"(aiohttp, single event loop), {tasks} tasks kept `processing`, each row "
        f"{seconds:g} s of sustained `GET /v1.3/embed-v2/tasks/{{id}}`; client and server share "
        "the machine's cores.", "",
        machine(), "", *table, "",
        "The SDK rows are bounded by the client (httpx + pydantic per call, GIL per process); "
        "the raw keep-alive row shows the server's ceiling. The health row is the cheapest "
        "route (no task lookup); ready-task polls serve cached JSON bytes. The machine is shared "
        "(see the load average): rows vary by tens of percent from run to run.", "",
    ])


def write_readme(section: str) -> None:
    path = ROOT / "bench" / "README.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if HEADING in text:
        head, rest = text.split(HEADING, 1)
        tail = rest.split("\n## ", 1)
        text = head + section + ("\n## " + tail[1] if len(tail) > 1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each row")
    parser.add_argument("--tasks", type=int, default=200, help="processing tasks to poll")
    parser.add_argument("--no-readme", action="store_true", help="print only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        service = start_sandbox(Path(tmp), args=["--min-duration-s", "60", "--max-duration-s", "60"])
        try:
            rows = run_all(service.url, args)
        finally:
            service.stop()
    section = report(rows, args.seconds, args.tasks)
    print(section)
    if not args.no_readme:
        write_readme(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
