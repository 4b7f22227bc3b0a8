"""One stack for every drill (starting Milvus Lite per drill would cost CI minutes); each drill
starts its own workers on an emptied Redis and a fault-free sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.drills.harness import DRILL_SETTINGS, NO_FAULTS, SANDBOX_ARGS, sandbox_reset
from tests.stack import Stack, start_stack


@pytest.fixture(scope="session")
def drill_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(tmp_path_factory.mktemp("drills"), sandbox_args=SANDBOX_ARGS, **DRILL_SETTINGS)
    yield stack
    stack.stop()


@pytest.fixture
def stack(drill_stack: Stack) -> Iterator[Stack]:
    drill_stack.stop_workers()
    drill_stack.client().flushdb()
    drill_stack.sandbox_config(**NO_FAULTS)
    sandbox_reset(drill_stack)
    env = dict(drill_stack.env)
    yield drill_stack
    drill_stack.stop_workers()
    drill_stack.env = env
