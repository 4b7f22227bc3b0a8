"""The ledger's Lua scripts: one file each in ``scripts/``, read through ``importlib.resources``.

A script whose first line is ``-- uses: a, b`` runs with the helper files ``a.lua`` and ``b.lua``
(local functions several scripts share, such as ``split`` and ``queue``) prepended in that order,
so each helper is written once; helpers use no other helper. A script file documents its KEYS,
ARGV and return value in its leading comments. The files ship as package data (``pyproject.toml``:
``ledger/scripts/*.lua``); ``source`` reads each file once per process.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from importlib.resources.abc import Traversable

_USES = re.compile(r"\A-- uses: (.+)\n")


def _folder() -> Traversable:
    return resources.files("pipeline.ledger") / "scripts"


def names() -> list[str]:
    """Every file in ``scripts/`` (scripts and helpers), without ``.lua``."""
    return sorted(f.name.removesuffix(".lua") for f in _folder().iterdir() if f.name.endswith(".lua"))


@functools.cache
def read(name: str) -> str:
    """The text of ``scripts/<name>.lua`` as written (read once per process)."""
    return (_folder() / f"{name}.lua").read_text(encoding="utf-8")


def helpers(name: str) -> list[str]:
    """The helpers the script ``name`` names on its ``-- uses:`` line."""
    match = _USES.match(read(name))
    return [h.strip() for h in match.group(1).split(",")] if match else []


def source(name: str) -> str:
    """The script ``name`` as Redis runs it: its helpers, then its own text."""
    return "".join(read(h) for h in helpers(name)) + read(name)
