"""``vidsearch serve``: the app on uvicorn, loopback-only when no API key is configured.

``--workers N`` runs N server processes on one port (uvicorn's supervisor; each worker loads the
settings from the environment and the config file as the parent did, and builds its own clients).
Each process has its own GIL, thread pool and ``api_search_slots``: several processes are what
lets uncached searches use more than one core. They need a Milvus that several processes can
share (a server URI, as ``vidsearch up`` and compose give; not an embedded ``.db`` file).
"""

from __future__ import annotations

import sys
from typing import Any

from pipeline.errors import ConfigError
from pipeline.logs import configure_logging
from pipeline.settings import Settings, load_settings
from vidsearch.api.keys import KeyRing
from vidsearch.api.security import is_loopback

LOOPBACK = "127.0.0.1"
SWITCH_INTERVAL_S = 0.0005
"""GIL switch interval of the server process (Python's default is 5 ms): a thread-pool handler
back from Redis waits at most this long for the event loop thread to let go of the GIL."""


def bind_host(settings: Settings, host: str) -> tuple[str, str]:
    """The address to bind and what to say about access at start."""
    ring = KeyRing.from_entries(settings.api_keys)
    if not ring:
        note = "no API key configured: loopback clients only, all of them admin"
        if not is_loopback(host):
            note += f" (asked for {host}, binding {LOOPBACK} instead; set api_keys to serve others)"
            host = LOOPBACK
        return host, note
    admins = sum(1 for k in ring.keys if k.role == "admin")
    return host, f"{len(ring.keys)} API key(s): {admins} admin, {len(ring.keys) - admins} read-only"


def page_url(host: str, port: int) -> str:
    shown = LOOPBACK if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{port}/"


WORKER_APP = "vidsearch.api.serve:worker_app"
"""The app factory each ``--workers`` process imports."""


def worker_app() -> Any:
    """The app of one worker process, from the settings this process loads."""
    from vidsearch.api.app import create_app  # noqa: PLC0415

    settings = load_settings()
    configure_logging(settings)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    return create_app(settings)


def check_workers(settings: Settings, workers: int) -> None:
    """Several processes need a Milvus they can share (ConfigError otherwise)."""
    if workers > 1 and "://" not in settings.milvus_uri:
        raise ConfigError(f"--workers {workers} needs a Milvus server URI (milvus_uri is "
                          f"{settings.milvus_uri!r}, a file one process opens)")


def run_serve(settings: Settings, host: str, port: int, workers: int = 1) -> int:
    import uvicorn  # noqa: PLC0415  (heavy imports only where used)

    from vidsearch.api.app import create_app  # noqa: PLC0415

    check_workers(settings, workers)
    configure_logging(settings)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    host, note = bind_host(settings, host)
    print(f"vidsearch serve: {page_url(host, port)} (API docs: {page_url(host, port)}docs); {note}"
          + (f"; {workers} processes" if workers > 1 else ""), file=sys.stderr, flush=True)
    options: dict[str, Any] = {"host": host, "port": port, "log_config": None, "access_log": False,
                               "server_header": False, "timeout_graceful_shutdown": 5}
    if workers > 1:
        uvicorn.run(WORKER_APP, factory=True, workers=workers, **options)
    else:
        uvicorn.run(create_app(settings), **options)
    return 0
