"""Shared pieces of the benchmark sections: result rows, the table, the machine, services, timing."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


@dataclass
class Row:
    """One line of the final table.

    ``value`` is the figure, ``baseline`` what it is compared with in the same run (a number or a
    short text), ``ratio`` value/baseline (or whatever the goal is stated in), ``goal`` the target
    as text and ``met`` whether it was reached (None: no goal, reported only).
    """

    section: str
    name: str
    value: str
    baseline: str = ""
    ratio: str = ""
    goal: str = ""
    met: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def cells(self) -> list[str]:
        verdict = "" if self.met is None else ("yes" if self.met else "NO")
        return [self.section, self.name, self.value, self.baseline, self.ratio, self.goal, verdict]


HEADERS = ["#", "figure", "value", "baseline (same run)", "ratio", "goal", "met"]


def table(rows: Sequence[Row]) -> str:
    """A markdown table of the rows."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in r.cells()) + " |" for r in rows]
    return "\n".join(lines)


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()), "cpu": cpu, "memory": mem,
        "python": platform.python_version(), "os": f"{platform.system()} {platform.release()}",
        "load_avg_1m": f"{os.getloadavg()[0]:.2f}",
    }


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@contextmanager
def section(name: str) -> Iterator[None]:
    log(f"{name} ...")
    started = time.perf_counter()
    try:
        yield
    finally:
        log(f"{name} took {time.perf_counter() - started:.0f} s")


def http_json(url: str, body: Any = None, timeout: float = 30) -> Any:
    """GET (no body) or POST JSON (with a sandbox API key); the decoded answer."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json", "x-api-key": "bench"}
    request = urllib.request.Request(url, data=data, headers=headers,
                                     method="GET" if body is None else "POST")
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def write_results(rows: Sequence[Row], meta: dict[str, Any], name: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps({"meta": meta, "rows": [asdict(r) for r in rows]}, indent=2))
    return path


def python() -> str:
    """The interpreter running the bench (the project's virtualenv)."""
    return sys.executable


def run_json(argv: Sequence[str], env: dict[str, str] | None = None, timeout: float = 900) -> Any:
    """Run a child that prints one JSON document on its last stdout line."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:4]} exited {proc.returncode}: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
