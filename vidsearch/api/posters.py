"""Poster frames: the frame of an ingested video at a hit's moment, as a small JPEG.

``GET /v1/posters?url=U&t=S`` (``routes_posters.py``) answers ``Poster.frame(url, t)``. The rules,
so that the route cannot make the server fetch anything:

- ``url`` passes the manifests' URL rule (``normalize_url``: http(s), public hosts only unless
  ``allow_private_hosts``), else 400; and it must be an ingested video (its item, under the
  configured embedding spec, is ``done``), else 404. Nothing is fetched before both checks.
- The fetch reads only the byte ranges the decoder asks for (HTTP range requests through a file
  object PyAV seeks in), follows no redirect, and stops at ``poster_max_bytes`` read or
  ``poster_timeout_s`` elapsed; at most ``poster_concurrency`` fetches run at once (a request
  that waits longer than the time limit for a turn gets the placeholder).
- Any failure (unreachable, not a video, over a limit) answers a placeholder image, marked by
  ``X-Vidsearch-Poster: placeholder`` and never cached; a frame is cached in
  ``{data_dir}/posters/`` (``X-Vidsearch-Poster: frame``), so a video is fetched once per moment.

The search answer never waits for a poster: the page asks for each card's poster after rendering.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import PosterError
from pipeline.settings import Settings

CHUNK_BYTES = 256 * 1024
WIDTH, HEIGHT = 320, 180
MAX_DECODED_FRAMES = 600
PLACEHOLDER = (
    f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
    f'viewBox="0 0 {WIDTH} {HEIGHT}"><rect width="100%" height="100%" fill="#2a303b"/>'
    '<text x="50%" y="50%" fill="#9aa3b2" font-family="sans-serif" font-size="14" '
    'text-anchor="middle" dominant-baseline="middle">no preview</text></svg>'
).encode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:  # a redirect is an error
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


AVSEEK_SIZE = 0x10000
"""FFmpeg's "tell me the size" whence."""


class RangeFile(io.RawIOBase):
    """A read-only, seekable file over HTTP range requests, within a byte and a time budget."""

    def __init__(self, url: str, max_bytes: int, deadline: float) -> None:
        super().__init__()
        self.url, self.max_bytes, self.deadline = url, max_bytes, deadline
        self.fetched = self.pos = self.size = 0
        self._chunk_at, self._chunk = -1, b""

    def open(self) -> io.IOBase:
        """Probe the first chunk: ``self`` for a server that answers ranges, else the whole body
        in memory (within the byte budget)."""
        status, data, total = self._get(0, CHUNK_BYTES - 1)
        if status == 206 and total:
            self.size, self._chunk_at, self._chunk = total, 0, data
            return self
        return io.BytesIO(data)

    def _get(self, start: int, end: int) -> tuple[int, bytes, int]:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise PosterError(f"{self.url}: over the time limit")
        request = urllib.request.Request(self.url, headers={"Range": f"bytes={start}-{end}"})
        try:
            with _OPENER.open(request, timeout=remaining) as response:
                data = self._body(response, self.max_bytes - self.fetched + 1)
                status, header = response.status, response.headers.get("Content-Range", "")
        except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError, HTTPError (a
            # redirect too), timeouts, a malformed or cut answer
            raise PosterError(f"{self.url}: {exc}") from exc
        self.fetched += len(data)
        if self.fetched > self.max_bytes:
            raise PosterError(f"{self.url}: over the byte limit")
        total = header.rpartition("/")[2]
        return status, data, int(total) if total.isdigit() else 0

    def _body(self, response: Any, most: int) -> bytes:
        """Up to ``most`` bytes, one receive at a time, so that a server dripping bytes cannot hold
        the read past the deadline (each receive waits at most the time left)."""
        pieces: list[bytes] = []
        got = 0
        while got < most:
            if time.monotonic() > self.deadline:
                raise PosterError(f"{self.url}: over the time limit")
            piece = response.read1(min(CHUNK_BYTES, most - got))
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
        return b"".join(pieces)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence & AVSEEK_SIZE:
            return self.size
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer: Any) -> int:
        if self.pos >= self.size:
            return 0
        if not self._chunk_at <= self.pos < self._chunk_at + len(self._chunk):
            end = min(self.size, self.pos + max(CHUNK_BYTES, len(buffer))) - 1
            _, self._chunk, _ = self._get(self.pos, end)
            self._chunk_at = self.pos
            if not self._chunk:
                return 0
        part = self._chunk[self.pos - self._chunk_at:][: len(buffer)]
        buffer[: len(part)] = part
        self.pos += len(part)
        return len(part)


def frame_jpeg(source: Any, at_s: float) -> bytes:
    """The JPEG of the first frame at or after ``at_s`` (the last one decoded if none is)."""
    import av  # noqa: PLC0415  (only a poster needs FFmpeg)

    try:
        with av.open(source, mode="r") as container:
            stream = container.streams.video[0]
            if at_s > 0 and stream.time_base:
                container.seek(int(at_s / stream.time_base), stream=stream, backward=True)
            image = None
            for i, frame in enumerate(container.decode(stream)):
                image = frame.to_image()
                if (frame.time is not None and frame.time >= at_s - 0.05) or i >= MAX_DECODED_FRAMES:
                    break
    except (av.FFmpegError, IndexError, ValueError) as exc:
        raise PosterError(f"not a decodable video: {exc}") from exc
    if image is None:
        raise PosterError("no video frame")
    image.thumbnail((WIDTH, HEIGHT))
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=80)
    return out.getvalue()


@dataclass
class Poster:
    """The posters of one server: the cache directory, the limits, the fetch slots."""

    settings: Settings
    _slots: threading.BoundedSemaphore = field(init=False)

    def __post_init__(self) -> None:
        self._slots = threading.BoundedSemaphore(self.settings.poster_concurrency)

    @property
    def cache_dir(self) -> Path:
        return self.settings.data_dir / "posters"

    def cache_path(self, url: str, at_s: float) -> Path:
        digest = hashlib.blake2b(f"{url}\n{at_s:.1f}".encode(), digest_size=16).hexdigest()
        return self.cache_dir / f"{digest}.jpg"

    def frame(self, url: str, at_s: float) -> bytes | None:
        """The cached or freshly cut JPEG of ``url`` at ``at_s``; None: use the placeholder."""
        path = self.cache_path(url, at_s)
        if path.exists():
            return path.read_bytes()
        s = self.settings
        if not self._slots.acquire(timeout=s.poster_timeout_s):
            return None
        try:
            source = RangeFile(url, s.poster_max_bytes, time.monotonic() + s.poster_timeout_s).open()
            jpeg = frame_jpeg(source, at_s)
        except PosterError:
            return None
        finally:
            self._slots.release()
        _write(path, jpeg)
        return jpeg


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
