"""The optional catalog file: what the sandbox knows about particular URLs.

JSON or YAML, either a mapping ``url -> entry`` or a list of entries that carry ``url``::

    https://cdn.example.com/v/clip-001.mp4:
      duration: 60
      title: Beach day
      scenes:
        - {start: 0, end: 20, words: [city, traffic]}
        - {start: 20, end: 40, words: "surfing dog"}
        - {start: 40, end: 60, words: [crowd], audio: [cheering], speech: "what a goal"}
      error: null            # optional: the task ends failed with this message
      size_mb: 120           # optional: the file's size (over the limit, the task ends failed)
      resolution: 320x180    # optional: width x height (outside 360x360..5184x2160, the task fails)

A scene's ``words`` describe it in every modality; ``visual``, ``audio`` and ``speech`` add words
seen only by that embedding option (``visual``; ``audio``; ``transcription``).

URLs absent from the catalog get a hashed duration and the words of their file name.

A sandbox serves each entry as a real video file (``video_files.py``) at ``media_url(base, url)``;
``catalog_url`` maps such an address back to its entry's URL, so a task created for it embeds that
entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import yaml

from vidsearch.sandbox.vectors import words


@dataclass(frozen=True)
class Scene:
    """A time range of a video and the words that describe it."""

    start: float
    end: float
    words: tuple[str, ...]
    visual: tuple[str, ...] = ()
    audio: tuple[str, ...] = ()
    speech: tuple[str, ...] = ()

    def words_for(self, option: str | None) -> tuple[str, ...]:
        """The scene's words as embedding option ``option`` sees them (None: every modality's)."""
        if option is None:
            return self.words + self.visual + self.audio + self.speech
        extra: tuple[str, ...] = getattr(self, MODALITY_OF.get(option, "visual"))
        return self.words + extra


@dataclass(frozen=True)
class Entry:
    """What the catalog says about one URL."""

    url: str
    duration: float | None = None
    title: str | None = None
    scenes: tuple[Scene, ...] = field(default_factory=tuple)
    error: str | None = None
    size_mb: float | None = None
    resolution: tuple[int, int] | None = None


MODALITY_OF = {"visual": "visual", "visual-text": "visual", "audio": "audio",
               "transcription": "speech"}
"""Embedding option -> the scene field of the words only it sees."""


MEDIA_PREFIX = "/_sandbox/media/"


def media_url(base: str, url: str) -> str:
    """The address on the sandbox at ``base`` of the video file of catalog entry ``url``."""
    parts = urlsplit(url)
    return f"{base.rstrip('/')}{MEDIA_PREFIX}{parts.netloc}{quote(parts.path)}"


def catalog_url(url: str) -> str | None:
    """The catalog URL a sandbox media address stands for (None: not such an address)."""
    path = urlsplit(url).path
    if not path.startswith(MEDIA_PREFIX):
        return None
    host, _, rest = unquote(path.removeprefix(MEDIA_PREFIX)).partition("/")
    return f"https://{host}/{rest}" if host and rest else None


class CatalogError(ValueError):
    """The catalog file cannot be read or has a bad entry."""


def load(path: str | Path) -> dict[str, Entry]:
    """Entries of the catalog at ``path`` by URL."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        raw = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise CatalogError(f"{path}: {exc}") from exc
    items = _items(raw)
    return {entry.url: entry for entry in (_entry(url, value) for url, value in items)}


def _items(raw: Any) -> list[tuple[str, Any]]:
    if isinstance(raw, dict):
        return [(str(url), value or {}) for url, value in raw.items()]
    if isinstance(raw, list):
        return [(str(item.get("url", "")), item) for item in raw if isinstance(item, dict)]
    raise CatalogError("a catalog is a mapping url -> entry or a list of entries with url")


def _entry(url: str, value: Any) -> Entry:
    if not url or not isinstance(value, dict):
        raise CatalogError(f"bad catalog entry for {url!r}")
    duration = value.get("duration")
    scenes = tuple(_scene(url, s) for s in value.get("scenes") or [])
    return Entry(
        url=url,
        duration=float(duration) if duration is not None else None,
        title=value.get("title"),
        scenes=scenes,
        error=value.get("error"),
        size_mb=float(value["size_mb"]) if value.get("size_mb") is not None else None,
        resolution=_resolution(url, value.get("resolution")),
    )


def _resolution(url: str, raw: Any) -> tuple[int, int] | None:
    """``WIDTHxHEIGHT`` (e.g. ``320x180``) as (width, height)."""
    if raw is None:
        return None
    width, _, height = str(raw).lower().partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise CatalogError(f"{url}: resolution must be WIDTHxHEIGHT, got {raw!r}")
    return int(width), int(height)


def _scene(url: str, raw: Any) -> Scene:
    try:
        start, end = float(raw["start"]), float(raw["end"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CatalogError(f"{url}: a scene needs numeric start and end") from exc
    if end <= start:
        raise CatalogError(f"{url}: scene end {end} is not after start {start}")
    per_modality = {name: _tokens(raw.get(name)) for name in ("visual", "audio", "speech")}
    return Scene(start=start, end=end, words=_tokens(raw.get("words") or raw.get("text")),
                 **per_modality)


def _tokens(given: Any) -> tuple[str, ...]:
    if not given:
        return ()
    if isinstance(given, str):
        return tuple(words(given))
    return tuple(w for g in given for w in words(str(g)))
