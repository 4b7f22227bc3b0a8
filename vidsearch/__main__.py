"""``python -m vidsearch`` is the ``vidsearch`` command."""

from vidsearch.cli.main import main

raise SystemExit(main())
