"""Milvus filter expressions: the one place they are built and their values escaped.

A filter is the boolean expression Milvus parses for a search, query, count or delete
(``scope == "clip" and item_key in ["a", "b"]``); the empty expression restricts nothing. Every
string value goes through :func:`quote`, every field name must be an identifier and numbers are
written from ``int`` only, so no value can end its literal early and widen the filter: an item key
``x"] or scope in ["clip`` matches the rows whose key is that text and no others.

:func:`quote` escapes what ends a literal or breaks its line: a backslash and a double quote get a
backslash, a line feed and a carriage return become ``\\n`` and ``\\r`` (both engines refuse a raw
line break inside a literal). Every other character goes as it is, control characters and
non-ASCII text included: Milvus Lite 3.x knows no ``\\x`` or ``\\u`` escape, and both engines match
those characters raw (Milvus Lite 3.2.2 and Milvus 2.3.5, ``tests/pipeline/milvus/test_filters.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"})
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def quote(value: str) -> str:
    """A double-quoted Milvus string literal that reads back as exactly ``value``."""
    return '"' + value.translate(_ESCAPES) + '"'


def _field(name: str) -> str:
    if not _FIELD.fullmatch(name):
        raise ValueError(f"not a Milvus field name: {name!r}")
    return name


def _literals(values: Sequence[str]) -> str:
    if isinstance(values, str) or not values:
        raise ValueError(f"a list filter needs a non-empty sequence of strings, got {values!r}")
    return "[" + ", ".join(quote(v) for v in values) + "]"


def equals(field: str, value: str) -> str:
    """``field == "value"``."""
    return f"{_field(field)} == {quote(value)}"


def one_of(field: str, values: Sequence[str]) -> str:
    """``field in ["a", "b"]`` (``values`` not empty)."""
    return f"{_field(field)} in {_literals(values)}"


def none_of(field: str, values: Sequence[str]) -> str:
    """``field not in ["a", "b"]`` (``values`` not empty)."""
    return f"{_field(field)} not in {_literals(values)}"


def at_least(field: str, value: int) -> str:
    """``field >= value`` for an integer field."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"at_least takes an int, got {value!r}")
    return f"{_field(field)} >= {value}"


def all_of(*parts: str) -> str:
    """The conjunction of expressions built here (none has a top-level ``or``; empty ones are left
    out)."""
    return " and ".join(p for p in parts if p)


@dataclass(frozen=True, slots=True)
class Filter:
    """What a search or query is restricted to (empty fields restrict nothing)."""

    categories: Sequence[str] = ()
    options: Sequence[str] = ()
    scope: str | None = "clip"
    urls: Sequence[str] = ()
    exclude_urls: Sequence[str] = ()

    def expression(self) -> str:
        """The boolean filter expression; every value is quoted and escaped."""
        return all_of(
            one_of("category", self.categories) if self.categories else "",
            _options(self.options),
            equals("scope", self.scope) if self.scope is not None else "",
            one_of("url", self.urls) if self.urls else "",
            none_of("url", self.exclude_urls) if self.exclude_urls else "",
        )


def _options(options: Sequence[str]) -> str:
    if len(options) == 1:
        return equals("option", options[0])
    return one_of("option", options) if options else ""
