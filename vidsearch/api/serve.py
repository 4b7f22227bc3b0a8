"""``vidsearch serve``: the app on uvicorn, loopback-only when no API key is configured."""

from __future__ import annotations

import sys

from pipeline.logs import configure_logging
from pipeline.settings import Settings
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


def run_serve(settings: Settings, host: str, port: int) -> int:
    import uvicorn  # noqa: PLC0415  (heavy imports only where used)

    from vidsearch.api.app import create_app  # noqa: PLC0415

    configure_logging(settings)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    host, note = bind_host(settings, host)
    print(f"vidsearch serve: {page_url(host, port)} (API docs: {page_url(host, port)}docs); {note}",
          file=sys.stderr, flush=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None, access_log=False,
                server_header=False, timeout_graceful_shutdown=5)
    return 0
