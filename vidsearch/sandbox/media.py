"""What a media source "contains": its duration, its concepts over time, whether it is media at all.

Without a catalog entry, a URL's duration is a blake2b hash of the URL mapped into
[min_duration_s, max_duration_s] (0.1 s steps), and its concepts are the words of its file name,
present throughout. With an entry, the catalog's duration, title and scenes win: a segment's
concepts are the title words at a light weight plus the words of every scene that overlaps it,
weighted by the share of the segment the scene covers.

A URL that is plainly a web page (``.html``, ``.txt``, ``.php``..., or a watch page on a video
site) is accepted at create and its task fails later, as the real service does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from vidsearch.sandbox.catalog import Entry, Scene
from vidsearch.sandbox.vectors import words

TITLE_WEIGHT = 0.3
PAGE_EXTENSIONS = frozenset({
    ".html", ".htm", ".xhtml", ".txt", ".php", ".asp", ".aspx", ".jsp", ".json", ".xml", ".md",
})
PAGE_HOSTS = frozenset({
    "youtube.com", "youtu.be", "vimeo.com", "dailymotion.com", "tiktok.com", "facebook.com",
    "instagram.com", "twitch.tv", "drive.google.com", "dropbox.com",
})
MEDIA_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg",
                              ".ts", ".flv", ".wmv", ".3gp"})
NOT_MEDIA_MESSAGE = (
    "failed to fetch or materialize source media: {url} is not a media file "
    "(it looks like a web page or a text document); provide a direct link to the video file"
)


@dataclass(frozen=True)
class Media:
    """A media source as the sandbox imagines it."""

    source: str
    url: str | None
    duration: float
    title_words: tuple[str, ...] = ()
    scenes: tuple[Scene, ...] = field(default_factory=tuple)
    error: str | None = None
    size_mb: float | None = None
    resolution: tuple[int, int] | None = None

    def concepts(self, start: float, end: float, option: str | None = None) -> dict[str, float]:
        """Concept word -> weight over [start, end], as embedding option ``option`` sees it."""
        if not self.scenes:
            return dict.fromkeys(self.title_words, 1.0)
        weights = dict.fromkeys(self.title_words, TITLE_WEIGHT)
        span = max(end - start, 1e-9)
        for scene in self.scenes:
            overlap = min(end, scene.end) - max(start, scene.start)
            if overlap <= 0:
                continue
            for word in scene.words_for(option):
                weights[word] = weights.get(word, 0.0) + overlap / span
        return weights


def hashed_duration(source: str, low: float, high: float) -> float:
    """A duration in [low, high], a pure function of ``source``."""
    digest = hashlib.blake2b(source.encode(), digest_size=8).digest()
    fraction = int.from_bytes(digest, "little") / 2**64
    return round(low + fraction * (high - low), 1)


def url_words(url: str) -> tuple[str, ...]:
    """Concept words of a URL: its file name's words, else its path's words."""
    path = urlsplit(url).path
    name = PurePosixPath(path).name
    found = words(name) or words(path)
    return tuple(dict.fromkeys(found))


def image_words(url: str, entry: Entry | None) -> tuple[str, ...]:
    """What an image "shows": its catalog entry's title and visual scene words, else its file name's."""
    if entry is None:
        return url_words(url)
    found = list(words(entry.title)) if entry.title else []
    for scene in entry.scenes:
        found += scene.words_for("visual")
    return tuple(dict.fromkeys(found)) or url_words(url)


def is_web_page(url: str) -> bool:
    """True when ``url`` is plainly not a media file."""
    parts = urlsplit(url)
    suffix = PurePosixPath(parts.path).suffix.lower()
    if suffix in PAGE_EXTENSIONS:
        return True
    host = (parts.hostname or "").removeprefix("www.").removeprefix("m.")
    return host in PAGE_HOSTS and suffix not in MEDIA_EXTENSIONS


def describe(source: str, url: str | None, entry: Entry | None, low: float, high: float) -> Media:
    """The ``Media`` behind ``source`` (a URL, or a key for base64 and asset sources)."""
    if entry is None:
        return _from_url(source, url, low, high)
    title = tuple(words(entry.title)) if entry.title else url_words(url or "")
    duration = entry.duration or hashed_duration(source, low, high)
    return Media(source=source, url=url, duration=duration, title_words=title,
                 scenes=entry.scenes, error=entry.error, size_mb=entry.size_mb,
                 resolution=entry.resolution)


def _from_url(source: str, url: str | None, low: float, high: float) -> Media:
    error = NOT_MEDIA_MESSAGE.format(url=url) if url and is_web_page(url) else None
    return Media(source=source, url=url, duration=hashed_duration(source, low, high),
                 title_words=url_words(url) if url else (), error=error)
