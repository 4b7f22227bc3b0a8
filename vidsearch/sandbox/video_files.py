"""Real, small video files for catalog entries, so that a demo's cards play what a search found.

``GET /_sandbox/media/{host}/{path}`` serves the catalog entry ``https://{host}/{path}`` (or
``http://``) as an H.264 MP4 that a browser plays: 320 x 180 at 2 frames per second, a key frame
every second (so a seek lands within a second), as long as the entry's duration; each scene drawn
on a background of its own colour with its words, the title and a running clock, the time between
scenes in grey. A URL that is not in the catalog, or whose entry is an error, is a 404.

``catalog.media_url(base, url)`` is the address of an entry's file on a sandbox at ``base``, and
``catalog.catalog_url(media_url)`` its inverse: a task created for a media URL embeds the catalog
entry's scenes, so the file a person plays is the video the search scored.

Files are rendered once (PyAV's FFmpeg and Pillow, both wheels: nothing to install beyond Python)
into ``--media-dir`` (default ``{tmp}/vidsearch-sandbox-media``), named by a digest of the entry
and the renderer's version, written to a temporary name and renamed, so concurrent requests and
later runs reuse them. Aiohttp's ``FileResponse`` answers range requests (a browser seeks with them).
"""

from __future__ import annotations

import asyncio
import colorsys
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiohttp import web

from vidsearch.sandbox.catalog import MEDIA_PREFIX, Entry, Scene
from vidsearch.sandbox.errors import ApiFailure
from vidsearch.sandbox.state import SANDBOX, Sandbox

RENDER_VERSION = "1"
WIDTH, HEIGHT, FPS = 320, 180, 2
GAP_COLOUR = (60, 64, 72)
LOCKS: web.AppKey[dict[Path, asyncio.Lock]] = web.AppKey("media_locks", dict)
"""One lock per file being rendered (set by ``server.make_app``)."""


def default_dir() -> Path:
    return Path(tempfile.gettempdir()) / "vidsearch-sandbox-media"


# --- drawing ---------------------------------------------------------------------------------
def scene_colour(scene: Scene) -> tuple[int, int, int]:
    """A colour of the scene's own, a pure function of its words."""
    digest = hashlib.blake2b(" ".join(scene.words).encode(), digest_size=2).digest()
    r, g, b = colorsys.hsv_to_rgb(int.from_bytes(digest, "little") / 65536, 0.55, 0.62)
    return round(r * 255), round(g * 255), round(b * 255)


def _clock(t: float) -> str:
    return f"{int(t // 60)}:{int(t % 60):02d}"


def _scene_at(entry: Entry, t: float) -> Scene | None:
    return next((s for s in entry.scenes if s.start <= t < s.end), None)


def frames(entry: Entry, duration: float) -> Iterator[Any]:
    """The PIL images of the video, ``FPS`` a second."""
    from PIL import Image, ImageDraw, ImageFont  # noqa: PLC0415  (only a media request needs them)

    big, small = ImageFont.load_default(size=22), ImageFont.load_default(size=13)
    for i in range(max(1, round(duration * FPS))):
        t = i / FPS
        scene = _scene_at(entry, t)
        image = Image.new("RGB", (WIDTH, HEIGHT), scene_colour(scene) if scene else GAP_COLOUR)
        draw = ImageDraw.Draw(image)
        draw.text((12, 10), entry.title or "", font=small, fill=(235, 235, 235))
        if scene is not None:
            draw.multiline_text((12, 60), _wrap(" ".join(scene.words)), font=big, fill="white")
            draw.text((12, HEIGHT - 22), f"scene {_clock(scene.start)}-{_clock(scene.end)}",
                      font=small, fill=(235, 235, 235))
        draw.text((WIDTH - 48, HEIGHT - 22), _clock(t), font=small, fill="white")
        yield image


def _wrap(text: str, width: int = 24) -> str:
    lines: list[str] = [""]
    for word in text.split():
        if lines[-1] and len(lines[-1]) + 1 + len(word) > width:
            lines.append("")
        lines[-1] = f"{lines[-1]} {word}".strip()
    return "\n".join(lines)


def render(entry: Entry, duration: float, path: Path) -> None:
    """Write the MP4 of ``entry`` to ``path`` (through a temporary file, then a rename)."""
    import av  # noqa: PLC0415

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    os.close(fd)
    try:
        with av.open(tmp, "w", format="mp4", options={"movflags": "+faststart"}) as out:
            stream = out.add_stream("libx264", rate=FPS)
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            stream.options = {"g": str(FPS), "preset": "veryfast", "crf": "30"}
            for image in frames(entry, duration):
                frame = av.VideoFrame.from_image(image)  # type: ignore[no-untyped-call]  # PyAV has no stub here
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def file_name(entry: Entry, duration: float) -> str:
    scenes = [[s.start, s.end, list(s.words)] for s in entry.scenes]
    material = json.dumps([RENDER_VERSION, entry.url, entry.title, duration, scenes])
    return hashlib.sha256(material.encode()).hexdigest()[:24] + ".mp4"


# --- the route -------------------------------------------------------------------------------
def _entry(box: Sandbox, host: str, path: str) -> Entry:
    for scheme in ("https", "http"):
        entry = box.catalog.get(f"{scheme}://{host}/{path}")
        if entry is not None and not entry.error:
            return entry
    raise ApiFailure(404, "resource_not_found", f"no catalog video at {host}/{path}")


async def serve(request: web.Request) -> web.StreamResponse:
    box = request.app[SANDBOX]
    entry = _entry(box, request.match_info["host"], request.match_info["path"])
    duration = box.media(entry.url, entry.url).duration
    root = Path(box.config.media_dir) if box.config.media_dir else default_dir()
    path = root / file_name(entry, duration)
    if not path.exists():
        async with request.app[LOCKS].setdefault(path, asyncio.Lock()):
            if not path.exists():
                await asyncio.to_thread(render, entry, duration, path)
    return web.FileResponse(path, headers={"Content-Type": "video/mp4",
                                           "Cache-Control": "public, max-age=3600"})


def routes() -> list[tuple[str, str, Any]]:
    return [("GET", MEDIA_PREFIX + "{host}/{path:.+}", serve)]
