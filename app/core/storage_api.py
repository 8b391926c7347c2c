"""What every media store offers: local folder (the embedded default) or S3-compatible bucket.

Keys are relative POSIX paths in today's layout (docs/media-layout.md); `check_key` refuses any
that could leave the store's root. Callers never assume the bytes sit on this host's disk: a
tool that needs a file (OpenCV, PyAV) asks `local_file`, which for a bucket is a copy in the
host's bounded cache, and derived media are built in `scratch()` and handed to `publish`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from app.core.errors import Forbidden


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object: its key, size in bytes, an entity tag and when it was written."""

    key: str
    size: int
    etag: str
    modified: datetime


def check_key(key: str) -> PurePosixPath:
    """``key`` as a relative path; Forbidden for absolute paths, ``..``, NUL or nothing."""
    rel = PurePosixPath(key)
    if rel.is_absolute() or ".." in rel.parts or "\x00" in key or not key.strip():
        raise Forbidden("That media path is not allowed.")
    return rel


class Storage(Protocol):
    """The operations media code may use; both backends pass tests/core/test_storage.py."""

    @property
    def on_this_disk(self) -> bool:
        """True when keys are files of this host's disk: `local_file` gives the stored file
        itself, and the files of its folder beside it."""

    def exists(self, key: str) -> bool: ...

    def stat(self, key: str) -> ObjectInfo | None:
        """Size, ETag and time of ``key``; None when there is no such object."""

    def open(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A streaming reader (never the whole object in memory); FileNotFoundError if absent."""

    def read_range(self, key: str, start: int, length: int) -> bytes: ...

    def save_stream(
        self, key: str, stream: BinaryIO, *, max_bytes: int | None = None
    ) -> tuple[int, str]:
        """Write ``stream`` to ``key`` (atomically; multipart in a bucket): (bytes, sha256 hex).
        TooLarge, with nothing stored, once more than ``max_bytes`` arrive."""

    def move(self, source: str, target: str) -> None:
        """Rename ``source`` to ``target`` inside the store (a server-side copy in a bucket:
        no bytes pass through this host)."""

    def local_file(self, key: str) -> Path:
        """A file on this host with the bytes of ``key`` for tools that need a path (OpenCV,
        PyAV): the file itself, or a copy in the bounded cache. FileNotFoundError if absent."""

    def scratch(self) -> AbstractContextManager[Path]:
        """A temporary folder on this host to build derived media in, removed on exit."""

    def publish(self, key: str, path: Path) -> None:
        """Move the local file ``path`` (made in `scratch`) to ``key``, replacing any object."""

    def publish_tree(self, prefix: str, folder: Path, *, last: Sequence[str] = ()) -> None:
        """Replace everything under ``prefix`` with the files of ``folder`` (recursively); the
        relative names in ``last`` are written after the rest (an index readers wait for)."""

    def delete_tree(self, prefix: str) -> None:
        """Remove ``prefix`` and everything under it (a missing prefix is not an error)."""

    def iter_objects(self, prefix: str, *, after: str = "") -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` in key order, starting after key ``after``, page by page."""

    def object_url(self, key: str) -> str | None:
        """``s3://bucket/key``, the address other tools read ``key`` by in a bucket; None for
        a local folder, where ``key`` is the path under MEDIA_ROOT."""

    def presigned_get(self, key: str, *, filename: str | None = None) -> str | None:
        """A short-lived URL a browser can download ``key`` from directly (as ``filename``),
        or None when the store has no such URLs (a local folder: the web streams it)."""
