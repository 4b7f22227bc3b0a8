"""``python -m vidsearch.sandbox``: run the Twelve Labs sandbox server."""

from __future__ import annotations

import sys

from vidsearch.sandbox.server import main

if __name__ == "__main__":
    sys.exit(main())
