"""``python -m vidsearch`` is the ``vidsearch`` command."""

from vidsearch.cli import main

raise SystemExit(main())
