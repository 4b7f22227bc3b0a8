"""The exit codes of every ``vidsearch`` command (docs/cli.md lists them)."""

EXIT_OK = 0
"""Success: every item done (or nothing new to do)."""
EXIT_FAILED = 1
"""Some items failed (``vidsearch failures JOB``), or ``verify`` found a discrepancy."""
EXIT_BAD_INPUT = 2
"""Bad input or settings: no or unreadable manifest, invalid setting (a ``VidsearchError``)."""
EXIT_LOCKED = 3
"""Another backfill with the same name holds the lock; nothing was submitted."""
EXIT_TIMEOUT = 4
"""A backfill's ``--wait-timeout`` passed before its job finished; the job keeps running."""
EXIT_REDIS = 5
"""Redis could not be reached (or was lost)."""
EXIT_INTERRUPTED = 130
"""Interrupted (Ctrl-C)."""
