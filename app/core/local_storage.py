"""The embedded default: media under MEDIA_ROOT on this host's disk."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from app.core.errors import Forbidden, TooLarge
from app.core.storage_api import ObjectInfo, check_key

CHUNK = 1024 * 1024
# A scratch folder this old belongs to a build whose process died; the next scratch removes it.
SCRATCH_LEFT_BEHIND_S = 3600


class LocalStorage:
    """`app.core.storage_api.Storage` on a folder; writes are atomic renames."""

    on_this_disk = True

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path(self, key: str) -> Path:
        """The absolute path of ``key``; refuses anything that would leave the media root
        (symbolic links included: the resolved path must stay inside)."""
        full = (self.root / check_key(key)).resolve()
        if full != self.root and self.root not in full.parents:
            raise Forbidden("That media path is not allowed.")
        return full

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            st = self.path(key).stat()
        except FileNotFoundError:
            return None
        etag = f"{st.st_mtime_ns:x}-{st.st_size:x}"
        modified = datetime.fromtimestamp(st.st_mtime, UTC)
        return ObjectInfo(key=key, size=st.st_size, etag=etag, modified=modified)

    @contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        with self.path(key).open("rb") as fh:
            yield fh

    def read_range(self, key: str, start: int, length: int) -> bytes:
        fd = os.open(self.path(key), os.O_RDONLY)
        try:
            return os.pread(fd, length, start)
        finally:
            os.close(fd)

    def save_stream(
        self, key: str, stream: BinaryIO, *, max_bytes: int | None = None
    ) -> tuple[int, str]:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise TooLarge(f"The file is larger than the limit of {max_bytes:,} bytes.")
                    digest.update(chunk)
                    out.write(chunk)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size, digest.hexdigest()

    def move(self, source: str, target: str) -> None:
        destination = self.path(target)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path(source), destination)

    def local_file(self, key: str) -> Path:
        path = self.path(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        return path

    @contextmanager
    def scratch(self) -> Iterator[Path]:
        """Under the root, so that `publish` is a rename on the same filesystem."""
        base = self.root / ".scratch"
        base.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - SCRATCH_LEFT_BEHIND_S
        for left in base.iterdir():
            with contextlib.suppress(OSError):
                if left.stat().st_mtime < cutoff:
                    shutil.rmtree(left, ignore_errors=True)
        folder = Path(tempfile.mkdtemp(dir=base))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def publish(self, key: str, path: Path) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, target)
        except OSError:  # another filesystem: copy beside the target, then rename
            with path.open("rb") as fh:
                self.save_stream(key, fh)
            path.unlink()

    def publish_tree(self, prefix: str, folder: Path, *, last: Sequence[str] = ()) -> None:
        """Swapped in whole: the old tree is renamed aside, the new one renamed in."""
        target = self.path(prefix)
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.new-"))
        shutil.rmtree(staged)
        try:
            os.replace(folder, staged)
        except OSError:
            shutil.copytree(folder, staged)
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        if target.exists():
            os.replace(target, old)
        os.replace(staged, target)
        shutil.rmtree(old, ignore_errors=True)

    def delete_tree(self, prefix: str) -> None:
        path = self.path(prefix)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)

    def iter_objects(self, prefix: str, *, after: str = "") -> Iterator[ObjectInfo]:
        base = self.path(prefix)
        if not base.is_dir():
            return
        keys = sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )
        for key in keys:
            if key > after and (info := self.stat(key)) is not None:
                yield info

    def object_url(self, key: str) -> str | None:
        return None

    def presigned_get(self, key: str, *, filename: str | None = None) -> str | None:
        return None
