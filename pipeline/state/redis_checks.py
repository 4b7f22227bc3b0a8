"""Start-up checks: refuse to run against settings that lose work, warn where it may be lost.

Every long-lived process (worker, writer, beat, ``serve``, the metrics exporter) and every CLI
command that writes calls ``check_redis`` before it starts, and the Celery processes also call
``check_timing``:

- ``maxmemory-policy`` other than ``noeviction`` refuses (``UnsafeSettingsError``, CLI exit 2).
  Any evicting policy, ``volatile-*`` too, can drop the ledger's keys, leases and locks (they carry
  TTLs), and an item that vanishes is paid for again.
- No persistence (``appendonly no`` and no ``save`` points) is logged as a warning
  (``redis_persistence_off``): a restart of Redis loses every job.
- A Redis that forbids ``CONFIG GET`` (managed services do) is logged as a warning
  (``redis_config_unreadable``) and the process starts: the operator must check the policy there.
- The broker's visibility timeout must exceed every delay a message may wait or run (``longest
  delays``) and Celery's soft shutdown must be on, or the process refuses.
"""

from __future__ import annotations

import redis

from pipeline.errors import UnsafeSettingsError
from pipeline.logs import get_logger
from pipeline.settings import Settings, env_name

log = get_logger("vidsearch.checks")

SAFE_POLICY = "noeviction"
DELAY_SETTINGS = (
    "create_lease_s", "poll_lease_s", "poll_max_s", "retry_total_s", "writer_drain_s",
    "writer_claim_idle_s", "worker_soft_shutdown_s",
)
"""Settings bounding how long a message may wait for, or run as, a task: its create or poll lease,
the longest poll interval, one call with its retries, one drain, a dead writer's reclaim, and a
soft shutdown. The code schedules no countdown or ETA; these are its longest delays."""


def check_redis(client: redis.Redis[bytes]) -> None:
    """Refuse an evicting Redis, warn when it keeps nothing on disk or hides its config."""
    try:
        config = _config(client)
    except redis.ResponseError as exc:
        log.warning("redis_config_unreadable", error=str(exc),
                    hint="check that maxmemory-policy is noeviction and persistence is on")
        return
    policy = config.get("maxmemory-policy", SAFE_POLICY)
    if policy != SAFE_POLICY:
        raise UnsafeSettingsError(
            f"Redis maxmemory-policy is {policy!r}: under memory pressure it can evict vidsearch's "
            f"ledger keys, leases and locks (items vanish and are paid for again); set "
            f"`maxmemory-policy noeviction` (redis.conf, or CONFIG SET maxmemory-policy noeviction, "
            f"or your managed Redis's parameter group)"
        )
    if config.get("appendonly", "no") == "no" and not config.get("save", "").strip():
        log.warning("redis_persistence_off",
                    hint="set `appendonly yes` (or save points): a Redis restart loses every job")


def _config(client: redis.Redis[bytes]) -> dict[str, str]:
    raw = client.config_get("maxmemory-policy", "appendonly", "save")
    return {_text(k): _text(v) for k, v in raw.items()}


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def longest_delay(settings: Settings) -> tuple[str, float]:
    """The setting (and value) of the longest delay a broker message may see."""
    return max(((name, float(getattr(settings, name))) for name in DELAY_SETTINGS),
               key=lambda pair: pair[1])


def check_timing(settings: Settings, visibility_timeout_s: float, soft_shutdown_s: float) -> None:
    """Refuse a visibility timeout at or under the longest delay, and a soft shutdown that is off."""
    if soft_shutdown_s <= 0:
        raise UnsafeSettingsError(
            f"Celery's soft shutdown is off (worker_soft_shutdown_timeout={soft_shutdown_s:g}): a cold "
            f"shutdown would kill running tasks at once; set {env_name('worker_soft_shutdown_s')} "
            f"above 0"
        )
    name, delay = longest_delay(settings)
    if visibility_timeout_s <= delay:
        raise UnsafeSettingsError(
            f"the broker visibility timeout ({visibility_timeout_s:g} s) does not exceed {name} "
            f"({delay:g} s): Redis would hand a message to a second worker while the first still "
            f"holds it; set {env_name('visibility_timeout_s')} above {delay:g} (or lower {name})"
        )
