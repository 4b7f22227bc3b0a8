"""Where the archive's files live: a local directory or S3-compatible object storage.

Both speak pyarrow's filesystem interface; this module is the only one that touches it and
translates its errors (``OSError`` and ``pyarrow.ArrowException``) into ``ArchiveError`` /
``ArchiveUnavailableError``. A file is committed in one step, so a reader never sees half of it:

* local: written under a hidden temporary name, fsynced, renamed to its name, the directory fsynced;
* object storage: one upload (pyarrow uses a multipart upload; the object appears only when it
  completes, whole).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs

from pipeline.errors import ArchiveError, ArchiveUnavailableError, ConfigError
from pipeline.settings import Settings

T = TypeVar("T")
TMP_PREFIX = ".tmp-"
"""Local files being written; never listed, and removed by ``compact`` once stale."""
S3_ATTEMPTS = 3


@dataclass(frozen=True)
class FileInfo:
    path: str
    """Relative to the archive's root, with ``/`` separators."""
    size: int
    mtime_s: float


def archive_location(settings: Settings) -> str:
    """The archive URL the settings ask for ("" when the archive is off)."""
    if settings.archive_url is None:
        return str(Path(settings.data_dir).expanduser().resolve() / "archive")
    return settings.archive_url.strip()


@contextmanager
def translated(action: str) -> Iterator[None]:
    """Turn pyarrow's and the OS's errors of ``action`` into the archive's."""
    try:
        yield
    except ArchiveError:
        raise
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise ArchiveError(f"archive: {action}: {exc}") from exc
    except (OSError, pa.ArrowException) as exc:
        raise ArchiveUnavailableError(f"archive: {action}: {exc}") from exc


class ArchiveFiles:
    """Files under one root: list, read, commit whole, delete."""

    def __init__(self, fs: pafs.FileSystem, root: str, url: str, *, local: bool) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.url = url
        self.local = local

    @classmethod
    def from_settings(cls, settings: Settings) -> ArchiveFiles | None:
        url = archive_location(settings)
        if not url:
            return None
        parsed = urlparse(url)
        if parsed.scheme == "s3":
            return cls(_s3(settings), f"{parsed.netloc}{parsed.path}", url, local=False)
        if parsed.scheme == "file":
            return cls(pafs.LocalFileSystem(), parsed.path, url, local=True)
        if parsed.scheme:
            raise ConfigError(f"archive_url {url!r}: use a directory, file:///dir or s3://bucket/prefix")
        return cls(pafs.LocalFileSystem(), str(Path(url).expanduser().resolve()), url, local=True)

    def full(self, path: str) -> str:
        return f"{self.root}/{path}" if path else self.root

    # --- reading ------------------------------------------------------------------------------------
    def ping(self) -> None:
        """Check the root can be written (local) or reached (object storage), creating it if missing."""
        with translated(f"reach {self.url}"):
            if self.local:
                os.makedirs(self.root, exist_ok=True)
                if not os.access(self.root, os.W_OK) or not os.path.isdir(self.root):
                    raise ArchiveUnavailableError(f"archive: {self.root} is not a writable directory")
            else:
                self.fs.get_file_info(self.root)

    def listing(self, under: str = "") -> list[FileInfo]:
        """Committed files under ``under`` (recursive; temporary files left out)."""
        start = self.full(under)
        with translated(f"list {start}"):
            if self.fs.get_file_info(start).type == pafs.FileType.NotFound:
                return []
            infos = self.fs.get_file_info(pafs.FileSelector(start, recursive=True, allow_not_found=True))
        cut = len(self.root) + 1
        return [
            FileInfo(i.path[cut:], i.size or 0, _mtime(i))
            for i in infos
            if i.type == pafs.FileType.File and not i.base_name.startswith(TMP_PREFIX)
        ]

    def children(self) -> list[str]:
        """Names of the root's immediate directories."""
        with translated(f"list {self.root}"):
            if self.fs.get_file_info(self.root).type == pafs.FileType.NotFound:
                return []
            infos = self.fs.get_file_info(pafs.FileSelector(self.root, allow_not_found=True))
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)

    def read_bytes(self, path: str) -> bytes | None:
        full = self.full(path)
        with translated(f"read {full}"):
            try:
                with self.fs.open_input_stream(full) as stream:
                    return bytes(stream.read())
            except FileNotFoundError:
                return None

    def reader(self, path: str, use: Callable[[pa.NativeFile], T]) -> T:
        """``use`` an open random-access file (Parquet readers want one)."""
        full = self.full(path)
        with translated(f"read {full}"), self.fs.open_input_file(full) as handle:
            return use(handle)

    def reader_if_present(self, path: str, use: Callable[[pa.NativeFile], T]) -> T | None:
        """``reader``, or ``None`` when the file is gone (removed by a compaction meanwhile)."""
        full = self.full(path)
        with translated(f"read {full}"):
            try:
                handle = self.fs.open_input_file(full)
            except FileNotFoundError:
                return None
            with handle:
                return use(handle)

    # --- writing ------------------------------------------------------------------------------------
    def commit(self, path: str, data: bytes | pa.Buffer) -> None:
        """Write ``path`` whole: durable and visible at once when this returns."""
        full = self.full(path)
        with translated(f"write {full}"):
            if self.local:
                _commit_local(full, data)
            else:
                with self.fs.open_output_stream(full) as out:
                    out.write(data)

    def delete(self, paths: list[str]) -> None:
        for path in paths:
            full = self.full(path)
            with translated(f"delete {full}"), suppress(FileNotFoundError):
                self.fs.delete_file(full)

    def remove_stale_temporaries(self, under: str, older_than_s: float) -> int:
        """Remove local temporary files a crashed writer left (none exist on object storage)."""
        if not self.local:
            return 0
        base = Path(self.full(under))
        removed = 0
        with translated(f"clean {base}"):
            for tmp in base.rglob(f"{TMP_PREFIX}*"):
                if time.time() - tmp.stat().st_mtime > older_than_s:
                    tmp.unlink(missing_ok=True)
                    removed += 1
        return removed


def _commit_local(full: str, data: bytes | pa.Buffer) -> None:
    directory = os.path.dirname(full)
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f"{TMP_PREFIX}{uuid.uuid4().hex}")
    try:
        with open(tmp, "wb") as out:
            out.write(memoryview(data))
            out.flush()
            _datasync(out.fileno())
        os.replace(tmp, full)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_datasync = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync


def _mtime(info: pafs.FileInfo) -> float:
    mtime = info.mtime
    return mtime.timestamp() if mtime is not None else 0.0


def _s3(settings: Settings) -> pafs.S3FileSystem:
    """pyarrow's S3 client, bounded: ``archive_timeout_s`` per request, ``S3_ATTEMPTS`` attempts."""
    endpoint = settings.archive_s3_endpoint
    options: dict[str, object] = {
        "region": settings.archive_s3_region or "us-east-1",
        "connect_timeout": min(settings.archive_timeout_s, 3.0),
        "request_timeout": settings.archive_timeout_s,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=S3_ATTEMPTS),
    }
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
        options["endpoint_override"] = parsed.netloc
        options["scheme"] = parsed.scheme
    if settings.archive_s3_access_key:
        secret = settings.archive_s3_secret_key
        options["access_key"] = settings.archive_s3_access_key
        options["secret_key"] = secret.get_secret_value() if secret else ""
    with translated("connect to object storage"):
        return pafs.S3FileSystem(**options)
