"""Admission of searches: a bounded number run at once, and none waits past a deadline.

A server process runs at most ``api_search_slots`` uncached searches at once (each one embeds a
query and makes several Milvus calls, mostly waiting on them, so a few more than the cores keep
the engine busy; beyond that every request only gets slower). A request waits for a slot at most
``api_queue_deadline_s`` from its arrival (the time the ``Observe`` middleware saw it); past that
it is refused with 503 ``overloaded`` and ``Retry-After``, so a client under overload hears
"later" within the deadline instead of waiting behind a queue that grows. A result-cache hit
takes no slot.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from vidsearch.api.problems import ProblemError


class Admission:
    """``slots`` searches at once; the others wait until ``deadline_s`` after their arrival."""

    def __init__(self, slots: int, deadline_s: float) -> None:
        self._slots = threading.BoundedSemaphore(slots)
        self.deadline_s = deadline_s
        self.refused = 0

    @contextmanager
    def slot(self, arrived_s: float) -> Iterator[None]:
        """Hold a slot for the block; ``arrived_s`` is the request's ``time.monotonic()`` arrival."""
        wait_s = self.deadline_s - (time.monotonic() - arrived_s)
        if wait_s <= 0 or not self._slots.acquire(timeout=wait_s):
            self.refused += 1
            raise overloaded(self.deadline_s)
        try:
            yield
        finally:
            self._slots.release()


def overloaded(deadline_s: float) -> ProblemError:
    """The 503 of a search that could not start within the deadline."""
    retry = max(1, math.ceil(deadline_s))
    return ProblemError(503, "overloaded", "Server overloaded",
                        f"the search could not start within {deadline_s:g} s; retry later",
                        headers={"Retry-After": str(retry)}, retry_after_s=retry)
