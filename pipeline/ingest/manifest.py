"""Streaming manifest reader: one ``ManifestLine`` or ``Rejected`` per non-blank record.

Manifests are CSV (header row with ``url``, ``category``, optional ``title``; other columns become
metadata) or JSON Lines (one object per line with the same keys). Files are read in binary, one
physical line at a time (each line capped at ``MAX_LINE_BYTES``), so memory does not grow with the
file. A line that is not valid UTF-8, too long, malformed or fails validation becomes a ``Rejected``
with its 1-based physical line number and a reason; the rest of the file proceeds. Blank lines are
skipped. A file that cannot be read at all (missing, unreadable, no usable CSV header) raises
``ManifestError`` when ``read_manifest`` is called, before any line is yielded.
Duplicates are not removed here: the producer dedupes by item key.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from pipeline.errors import ManifestError
from pipeline.ingest.urls import InvalidUrl, normalize_url
from pipeline.settings import Settings

__all__ = ["MAX_LINE_BYTES", "LineRules", "ManifestLine", "Rejected", "read_manifest"]

MAX_LINE_BYTES = 64 * 1024
MAX_TITLE_CHARS = 512
BOM = b"\xef\xbb\xbf"
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson", ".json"})
TOO_LONG = f"line longer than {MAX_LINE_BYTES} bytes"
BAD_UTF8 = "invalid UTF-8"
# Stands in for an unusable physical line so that csv still counts it as one line.
_PLACEHOLDER = "\n"

Format = Literal["csv", "jsonl"]


@dataclass(frozen=True, slots=True)
class ManifestLine:
    """An accepted manifest record; ``url`` is normalized."""

    file: str
    line: int
    url: str
    category: str
    title: str
    metadata: dict[str, str]


@dataclass(frozen=True, slots=True)
class Rejected:
    """A manifest record that cannot be used, with the reason."""

    file: str
    line: int
    reason: str


@dataclass(frozen=True)
class LineRules:
    """What a manifest line must satisfy (taken from the settings)."""

    category_pattern: str
    max_url_length: int
    allow_private_hosts: bool
    default_category: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, default_category: str | None = None) -> LineRules:
        return cls(
            category_pattern=settings.category_pattern,
            max_url_length=settings.max_url_length,
            allow_private_hosts=settings.allow_private_hosts,
            default_category=default_category,
        )


Record = ManifestLine | Rejected


class _LineBuilder:
    """Validates one record's values against the rules (regex compiled once)."""

    def __init__(self, file: str, rules: LineRules) -> None:
        self.file = file
        self.default = (rules.default_category or "").strip()
        self.category = re.compile(rules.category_pattern)
        self.max_length = rules.max_url_length
        self.allow_private = rules.allow_private_hosts

    def build(self, line: int, url: str, category: str, title: str, metadata: dict[str, str]) -> Record:
        if not url or url.isspace():
            return Rejected(self.file, line, "missing url")
        try:
            url = normalize_url(url, max_length=self.max_length, allow_private_hosts=self.allow_private)
        except InvalidUrl as exc:
            return Rejected(self.file, line, f"invalid url: {exc.reason}")
        category = category.strip() or self.default
        if not category:
            return Rejected(self.file, line, "missing category")
        if self.category.fullmatch(category) is None:
            return Rejected(self.file, line, f"invalid category {category[:80]!r}")
        title = title.strip()[:MAX_TITLE_CHARS]
        return ManifestLine(self.file, line, url, category, title, metadata)


# --- physical lines --------------------------------------------------------------------------


def _physical_lines(stream: IO[bytes]) -> Iterator[bytes | None]:
    """Every physical line (BOM removed from the first); ``None`` for one over the size cap."""
    read = stream.readline
    limit = MAX_LINE_BYTES + 1
    first = True
    while raw := read(limit):
        if len(raw) == limit and not raw.endswith(b"\n"):
            _skip_rest_of_line(read, limit)
            yield None
            continue
        if first:
            first = False
            raw = raw.removeprefix(BOM)
        yield raw


def _skip_rest_of_line(read: Callable[[int], bytes], limit: int) -> None:
    while (piece := read(limit)) and not piece.endswith(b"\n"):
        pass


def _open(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {path}: {exc.strerror or exc}") from exc


# --- CSV -------------------------------------------------------------------------------------


class _CsvSource:
    """Feeds csv one decoded physical line at a time and notes the lines it could not decode."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.bad: dict[int, str] = {}

    def lines(self) -> Iterator[str]:
        number = 0
        for raw in _physical_lines(self.stream):
            number += 1
            if raw is None:
                self.bad[number] = TOO_LONG
                yield _PLACEHOLDER
                continue
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                self.bad[number] = BAD_UTF8
                yield _PLACEHOLDER

    def take_bad(self, end: int) -> tuple[int, str] | None:
        """The first unusable line up to ``end``, forgetting all of them."""
        found = [number for number in self.bad if number <= end]
        if not found:
            return None
        first = min(found)
        reason = self.bad[first]
        for number in found:
            del self.bad[number]
        return first, reason


@dataclass(frozen=True, slots=True)
class _Columns:
    """Where each field sits in a CSV row."""

    url: int
    category: int
    title: int
    metadata: tuple[tuple[int, str], ...]

    def pick(self, row: list[str]) -> tuple[str, str, str, dict[str, str]]:
        size = len(row)
        url = row[self.url] if self.url < size else ""
        category = row[self.category] if 0 <= self.category < size else ""
        title = row[self.title] if 0 <= self.title < size else ""
        metadata = {name: row[i].strip() for i, name in self.metadata if i < size}
        return url, category, title, metadata


def _columns(file: str, header: list[str], has_default: bool) -> _Columns:
    names = [name.strip() for name in header]
    lowered = [name.lower() for name in names]
    if "url" not in lowered:
        raise ManifestError(f"{file}: the CSV header has no 'url' column")
    if "category" not in lowered and not has_default:
        raise ManifestError(f"{file}: the CSV header has no 'category' column and no default")
    known = {"url", "category", "title"}
    metadata = tuple((i, name) for i, name in enumerate(names) if name and lowered[i] not in known)
    return _Columns(
        url=lowered.index("url"),
        category=lowered.index("category") if "category" in lowered else -1,
        title=lowered.index("title") if "title" in lowered else -1,
        metadata=metadata,
    )


def _is_blank(row: list[str]) -> bool:
    return not row or (len(row) == 1 and (not row[0] or row[0].isspace()))


def _read_header(file: str, source: _CsvSource, reader: Iterator[list[str]]) -> list[str]:
    for row in reader:
        if source.bad:
            number, reason = min(source.bad.items())
            raise ManifestError(f"{file}: header line {number}: {reason}")
        if not _is_blank(row):
            return row
    raise ManifestError(f"{file}: empty CSV, no header row")


def _csv_header(file: str, stream: IO[bytes], has_default: bool) -> tuple[_CsvSource, Any, _Columns]:
    source = _CsvSource(stream)
    reader = csv.reader(source.lines())
    try:
        header = _read_header(file, source, reader)
    except csv.Error as exc:
        raise ManifestError(f"{file}: unreadable CSV header: {exc}") from exc
    return source, reader, _columns(file, header, has_default)


class _CsvRecords:
    """Turns csv rows into records, tracking physical line numbers and unusable lines."""

    def __init__(self, file: str, stream: IO[bytes], builder: _LineBuilder) -> None:
        self.file = file
        self.builder = builder
        self.source, self.reader, self.columns = _csv_header(file, stream, bool(builder.default))

    def __iter__(self) -> Iterator[Record]:
        reader = self.reader
        end = reader.line_num
        while True:
            start = end + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                end = reader.line_num
                self.source.take_bad(end)
                yield Rejected(self.file, start, f"malformed CSV: {exc}")
                continue
            end = reader.line_num
            record = self.record(row, start, end)
            if record is not None:
                yield record

    def record(self, row: list[str], start: int, end: int) -> Record | None:
        if self.source.bad:
            bad = self.source.take_bad(end)
            if bad is not None:
                return Rejected(self.file, bad[0], bad[1])
        if _is_blank(row):
            return None
        return self.builder.build(start, *self.columns.pick(row))


def _read_csv(file: str, stream: IO[bytes], builder: _LineBuilder) -> Iterator[Record]:
    return iter(_CsvRecords(file, stream, builder))


# --- JSON Lines ------------------------------------------------------------------------------


def _read_jsonl(file: str, stream: IO[bytes], builder: _LineBuilder) -> Iterator[Record]:
    for number, raw in enumerate(_physical_lines(stream), 1):
        record = _jsonl_record(file, number, raw, builder)
        if record is not None:
            yield record


def _jsonl_record(file: str, number: int, raw: bytes | None, builder: _LineBuilder) -> Record | None:
    if raw is None:
        return Rejected(file, number, TOO_LONG)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Rejected(file, number, BAD_UTF8)
    if not text or text.isspace():
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return Rejected(file, number, f"invalid JSON: {str(exc)[:120]}")
    if not isinstance(value, dict):
        return Rejected(file, number, "not a JSON object")
    return _json_object(file, number, value, builder)


def _json_object(file: str, number: int, obj: dict[str, Any], builder: _LineBuilder) -> Record:
    fields: dict[str, Any] = {}
    metadata: dict[str, str] = {}
    for key, value in obj.items():
        lowered = key.strip().lower()
        if lowered in ("url", "category", "title"):
            fields.setdefault(lowered, value)
        else:
            metadata[key] = _json_text(value).strip()
    for name in ("url", "category"):
        if not isinstance(fields.get(name, ""), str):
            return Rejected(file, number, f"{name} is not a string")
    title = fields.get("title")
    return builder.build(
        number,
        fields.get("url") or "",
        fields.get("category") or "",
        "" if title is None else _json_text(title),
        metadata,
    )


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# --- entry point -----------------------------------------------------------------------------


def _sniff(stream: IO[bytes]) -> Format:
    for raw in _physical_lines(stream):
        if raw is None:
            return "csv"
        text = raw.decode("utf-8", errors="replace").strip()
        if text:
            return "jsonl" if text.startswith("{") else "csv"
    return "csv"


def _format(path: Path, stream: IO[bytes]) -> Format:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    return _sniff(stream)


def _records(path: Path, fmt: Format, rules: LineRules, file: str) -> Iterator[Record]:
    read = _read_jsonl if fmt == "jsonl" else _read_csv
    try:
        with _open(path) as stream:
            yield from read(file, stream, _LineBuilder(file, rules))
    except OSError as exc:
        raise ManifestError(f"error while reading manifest {path}: {exc}") from exc


def read_manifest(
    path: Path, rules: LineRules, label: str | None = None
) -> Iterator[ManifestLine | Rejected]:
    """Stream the records of one manifest (CSV or JSON Lines, by extension or content).

    ``label`` names the manifest in rejects and errors (default: the path; an upload's temporary
    file is labelled with the name its client gave, whose extension also picks the format).
    Raises ``ManifestError`` at once when the file cannot be read or a CSV has no usable header.
    """
    path = Path(path)
    file = label or str(path)
    try:
        with _open(path) as stream:
            fmt = _format(Path(file) if label else path, stream)
            if fmt == "csv":
                stream.seek(0)
                _csv_header(file, stream, bool((rules.default_category or "").strip()))
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {file}: {exc}") from exc
    return _records(path, fmt, rules, file)


def count_records(records: Iterable[Record]) -> tuple[int, int]:
    """(accepted, rejected) counts of a record stream; a small helper for callers and tests."""
    accepted = rejected = 0
    for record in records:
        if isinstance(record, ManifestLine):
            accepted += 1
        else:
            rejected += 1
    return accepted, rejected
