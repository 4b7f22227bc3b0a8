"""The task store and each task's lifecycle.

A task is ``processing`` until ``ready_at`` (monotonic clock), then ``ready`` or ``failed``; the
status is computed lazily when asked, so no timers run. Processing time is
``(base_s + factor x duration) / speed``, fixed when the task is created. A task that rolled
"stuck" never leaves ``processing``; one that rolled "fail", or whose source is not media, ends
``failed`` with a message.

Rendered JSON of a finished task is cached as bytes (``Task.cache``), so repeated polls of a large
ready task cost a dictionary lookup.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from vidsearch.sandbox.faults import Dice
from vidsearch.sandbox.limits import Clock
from vidsearch.sandbox.media import Media
from vidsearch.sandbox.validation import TaskSpec

FAIL_MESSAGE = "The embedding task failed. Please try again later."
INPUT_BOUNDS = {"v2": (4.0, 4 * 3600.0, 4096.0), "v1": (4.0, 2 * 3600.0, 2048.0),
                "audio": (4.0, 4 * 3600.0, 2048.0)}
"""Per API (and for v2 audio): shortest and longest media (seconds) and largest file (MB) an async
task takes (v2: Marengo 3.0, OpenAPI 1.3; v1: Marengo 2.7). Outside them the create is accepted
and the task fails, as the real service checks only basic metadata at create."""
RESOLUTION_BOUNDS = {"v2": ((360, 360), (5184, 2160)), "v1": ((360, 360), (3840, 2160))}
"""Per API: the smallest and largest video frame (width x height, either orientation): OpenAPI 1.3
for v2, the SDK reference for Marengo 2.7 on v1."""
TOO_SMALL_MESSAGE = "Resolution ({width}x{height}) is below minimum limit of {low[0]}x{low[1]}"
TOO_LARGE_MESSAGE = "Resolution ({width}x{height}) exceeds maximum limit of {high[0]}x{high[1]}"
TOO_LONG_MESSAGE = (
    "Duration ({duration:.1f} seconds) exceeds maximum limit of {limit:.0f} seconds ({minutes:.0f} minutes)"
)
TOO_SHORT_MESSAGE = "Duration ({duration:.1f} seconds) is below minimum limit of {limit:.0f} seconds"
TOO_BIG_MESSAGE = "File size ({size:.1f} MB) exceeds maximum limit of {limit:.0f} MB"
RANGE_MESSAGE = (
    "The embedding request was invalid: start_sec ({start}) is beyond the media duration "
    "({duration} s)."
)


def rfc3339(epoch: float) -> str:
    """``epoch`` as an RFC 3339 UTC string with milliseconds (``2024-09-26T10:29:19.968Z``)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Task:
    """One embedding task."""

    id: str
    spec: TaskSpec
    media: Media
    created_epoch: float
    created_mono: float
    processing_s: float
    error: str | None = None
    cache: dict[str, bytes] = field(default_factory=dict)

    @property
    def start(self) -> float:
        return self.spec.start_sec

    @property
    def end(self) -> float:
        """End of the processed range: the request's end_sec clipped to the media's duration."""
        end = self.spec.end_sec if self.spec.end_sec is not None else self.media.duration
        return min(end, self.media.duration)

    def status(self, now_mono: float) -> str:
        """``processing``, ``ready`` or ``failed`` at ``now_mono`` (the sandbox clock's)."""
        now = now_mono
        if now < self.created_mono + self.processing_s:
            return "processing"
        return "failed" if self.error else "ready"

    def updated_epoch(self, status: str) -> float:
        if status == "processing":
            return self.created_epoch
        return self.created_epoch + self.processing_s


@dataclass
class TaskStore:
    """All tasks of this process, in creation order per API (v1, v2)."""

    dice: Dice
    clock: Clock
    tasks: dict[str, Task] = field(default_factory=dict)
    order: dict[str, list[str]] = field(default_factory=lambda: {"v1": [], "v2": []})

    def new_id(self) -> str:
        """A 24-hex-digit id like the API's (time prefix + seeded random part)."""
        return f"{int(self.clock.now()):08x}{self.dice.stream('task-id').getrandbits(64):016x}"

    def add(self, spec: TaskSpec, media: Media, processing_s: float, rates: tuple[float, float]) -> Task:
        """Create a task; ``rates`` are (fail_rate, stuck_rate) for its fault rolls."""
        fail_rate, stuck_rate = rates
        error = media.error or bounds_error(spec, media) or _range_error(spec, media)
        if error is None and self.dice.roll("fail", fail_rate):
            error = FAIL_MESSAGE
        if self.dice.roll("stuck", stuck_rate):
            processing_s = math.inf
        task = Task(self.new_id(), spec, media, self.clock.now(), self.clock.mono(), processing_s, error)
        self.tasks[task.id] = task
        self.order[spec.api].append(task.id)
        return task

    def get(self, task_id: str, api: str) -> Task | None:
        task = self.tasks.get(task_id)
        return task if task is not None and task.spec.api == api else None

    def newest_first(self, api: str) -> Iterator[Task]:
        for task_id in reversed(self.order[api]):
            yield self.tasks[task_id]

    def clear(self) -> None:
        self.tasks.clear()
        for ids in self.order.values():
            ids.clear()


def bounds_error(spec: TaskSpec, media: Media) -> str | None:
    """Why an async task over ``media`` fails on its input bounds (None: within them)."""
    shortest, longest, largest = INPUT_BOUNDS["audio" if spec.input_type == "audio" else spec.api]
    if media.duration > longest:
        return TOO_LONG_MESSAGE.format(duration=media.duration, limit=longest, minutes=longest / 60)
    if media.duration < shortest:
        return TOO_SHORT_MESSAGE.format(duration=media.duration, limit=shortest)
    if media.size_mb is not None and media.size_mb > largest:
        return TOO_BIG_MESSAGE.format(size=media.size_mb, limit=largest)
    if media.resolution is not None and spec.input_type == "video":
        return resolution_error(spec.api, media.resolution)
    return None


def resolution_error(api: str, resolution: tuple[int, int]) -> str | None:
    """Why a video of ``resolution`` fails (None: within the bounds)."""
    (width, height), (low, high) = resolution, RESOLUTION_BOUNDS[api]
    short, long = sorted(resolution)
    if short < low[0]:
        return TOO_SMALL_MESSAGE.format(width=width, height=height, low=low)
    if long > high[0] or short > high[1]:
        return TOO_LARGE_MESSAGE.format(width=width, height=height, high=high)
    return None


def _range_error(spec: TaskSpec, media: Media) -> str | None:
    if spec.start_sec >= media.duration:
        return RANGE_MESSAGE.format(start=spec.start_sec, duration=media.duration)
    return None
