"""Example Celery beat schedule: a nightly backfill of a directory.

The recommended way to run backfills is NOT this file but the host's scheduler (cron, a systemd
timer, a Kubernetes CronJob, or ``docker compose run --rm backfill`` from cron) calling
``vidsearch backfill``: see config/README.md. This file is for fleets that have nothing but Celery.

How it works: beat sends ``vidsearch.ops.spawn_backfill`` at 02:15 UTC; the worker that receives
it starts ``vidsearch backfill ...`` as a separate, detached process and returns at once, so no
worker slot waits hours for the job (invariant 2). The backfill's own lock makes a second start
harmless (it exits 3 while a run is going), and its logs and exit code go to its log file
(set VIDSEARCH_LOG_FILE for the worker, or read the job with ``vidsearch jobs``).

Use it (beat, and the workers of the queue the spawn task is routed to, load the same file):

    vidsearch beat --schedule config/beat_schedule.py
    vidsearch worker --queues polling --schedule config/beat_schedule.py

or with Celery's own command, from the repository root (this module exposes ``app``):

    celery -A config.beat_schedule beat
    celery -A config.beat_schedule worker -Q polling

Run exactly one beat per fleet (two would start the backfill twice; its lock makes the second
exit 3). Beat sends nothing else: every worker runs the scheduler tick itself (one leads by lease),
so Flower's task history holds the pipeline's creates, polls and writes, not a clock.
"""

from __future__ import annotations

import subprocess

from celery.schedules import crontab

from workers.app import app

BACKFILL_DIRECTORY = "/manifests"
BACKFILL_QUEUE = "polling"
BACKFILL_ARGV = [
    "vidsearch", "backfill", BACKFILL_DIRECTORY, "--name", "nightly", "--wait-timeout", "21600",
]
"""What the nightly entry runs: every manifest in the directory, new items only, 6 h at most."""


@app.task(name="vidsearch.ops.spawn_backfill", ignore_result=True)  # type: ignore[untyped-decorator]  # Celery is untyped
def spawn_backfill(argv: list[str]) -> None:
    """Start ``argv`` (a ``vidsearch backfill`` command) detached and return at once.

    The shell forks the command into the background and exits, so the backfill is reparented to
    init (no zombie in the worker) and lives on if the worker restarts.
    """
    if argv[:2] != ["vidsearch", "backfill"]:
        raise ValueError(f"spawn_backfill runs `vidsearch backfill` only, not {argv[:2]}")
    subprocess.run(  # fixed program; argv comes from this schedule
        ["/bin/sh", "-c", '"$@" </dev/null >/dev/null 2>&1 &', "spawn-backfill", *argv],
        check=True, timeout=30,
    )


BEAT_SCHEDULE = {
    "nightly-backfill": {
        "task": "vidsearch.ops.spawn_backfill",
        "schedule": crontab(hour=2, minute=15),
        "args": [BACKFILL_ARGV],
        "options": {"queue": BACKFILL_QUEUE, "expires": 3600},
    },
}

app.conf.beat_schedule = {**app.conf.beat_schedule, **BEAT_SCHEDULE}

__all__ = ["BACKFILL_ARGV", "BEAT_SCHEDULE", "app", "spawn_backfill"]
