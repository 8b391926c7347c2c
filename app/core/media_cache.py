"""A bounded cache on this host's disk of objects read from the object store.

Tools that need a path (OpenCV, PyAV) get a copy here (`Storage.local_file`). Several worker
and web processes on one host share one cache folder, so every change is a rename and every
download runs under a file lock (fcntl) for its key: two processes asking for the same object
download it once. Each copy records the object's ETag; one last checked more than
``revalidate_after`` seconds ago is checked again (one HEAD) and fetched anew if the object
was replaced, so a step re-run on another host is seen here within that time.

Layout under ``root``: ``data/<key>`` the bytes (atime = last use, for LRU eviction; the mtime
stays that of the download, so a reader can tell a copy replaced from one merely used),
``meta/<key>`` the ETag (mtime = last check), ``locks/`` a fixed set of lock files keys hash
onto, ``tmp/`` downloads in progress, ``scratch/`` folders derived media are built in (same
filesystem, so adopting a built file is a rename), ``usage`` the running byte total. Files in
``tmp/`` and ``scratch/`` start with their host name and process id: a cache opened later on
the same host removes those of processes no longer alive.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from app.core.config import Settings
from app.core.storage_api import check_key

LOCK_STRIPES = 256
EVICT_DOWN_TO = 0.9
ORPHAN_AFTER = 24 * 3600  # a download or scratch folder this old lost its process


class MediaCache:
    """Objects by key under ``root``, evicted least recently used first past ``max_bytes``."""

    def __init__(
        self,
        root: Path,
        max_bytes: int,
        *,
        revalidate_after: float = 10.0,
        keep_recent: float = 5.0,
    ) -> None:
        self.root = root.resolve()
        self.max_bytes = max_bytes
        self.revalidate_after = revalidate_after
        self.keep_recent = keep_recent  # files used this recently are never evicted
        for part in ("data", "meta", "locks", "tmp", "scratch"):
            (self.root / part).mkdir(parents=True, exist_ok=True)
        self._remove_orphans()

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaCache:
        """This host's cache: STORAGE_CACHE_DIR, _BYTES and _KEEP_RECENT_S."""
        return cls(
            settings.effective_storage_cache_dir,
            settings.storage_cache_bytes,
            keep_recent=settings.storage_cache_keep_recent_s,
        )

    def get(self, key: str, fetch: Callable[[Path], str], etag: Callable[[], str]) -> Path:
        """The cached copy of ``key``: ``fetch(path)`` writes the object to ``path`` and returns
        its ETag; ``etag()`` is the object's current ETag (FileNotFoundError once it is gone)."""
        data, meta = self._paths(key)
        if self._fresh(meta) and data.exists():
            return self._touch(data)
        with self._lock(self._stripe(key)):
            recorded = self._recorded(data, meta)
            if recorded is not None:
                if self._fresh(meta):
                    return self._touch(data)
                try:
                    current = etag()
                except FileNotFoundError:
                    self.invalidate(key)
                    raise
                if current == recorded:
                    os.utime(meta)
                    return self._touch(data)
            fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", prefix=self._owner)
            os.close(fd)
            try:
                self._store(data, meta, Path(tmp), fetch(Path(tmp)))
            finally:
                Path(tmp).unlink(missing_ok=True)
        return data

    def put(self, key: str, path: Path, etag: str) -> Path:
        """Adopt the local file ``path`` (just written to the store as ``key``) as its copy."""
        data, meta = self._paths(key)
        with self._lock(self._stripe(key)):
            self._store(data, meta, path, etag)
        return data

    def invalidate(self, prefix: str) -> None:
        """Forget ``prefix`` and everything under it (its objects were replaced or deleted)."""
        data, meta = self._paths(prefix)
        with self._lock("global"):
            freed = 0
            if data.is_dir():
                freed = sum(p.stat().st_size for p in data.rglob("*") if p.is_file())
                shutil.rmtree(data, ignore_errors=True)
                shutil.rmtree(meta, ignore_errors=True)
            elif data.exists():
                freed = data.stat().st_size
                data.unlink(missing_ok=True)
                meta.unlink(missing_ok=True)
            self._write_usage(max(0, self._read_usage() - freed))

    @contextmanager
    def scratch(self) -> Iterator[Path]:
        """A temporary folder on the cache's filesystem, removed on exit."""
        folder = Path(tempfile.mkdtemp(dir=self.root / "scratch", prefix=self._owner))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _remove_orphans(self) -> None:
        """Remove the scratch folders and downloads left by processes that died on this host
        (a worker killed mid-build), and anyone's older than ORPHAN_AFTER: nothing else ever
        would, and they are not counted."""
        old = time.time() - ORPHAN_AFTER
        for left in [*(self.root / "scratch").iterdir(), *(self.root / "tmp").iterdir()]:
            host, _, rest = left.name.partition("~")
            pid = rest.partition("~")[0]
            with suppress(FileNotFoundError):
                ours = host == socket.gethostname()
                alive = pid.isdigit() and _alive(int(pid))
                if (not ours or alive) and left.stat().st_mtime >= old:
                    continue  # another host's (a shared folder) or running, and recent
                if left.is_dir():
                    shutil.rmtree(left, ignore_errors=True)
                else:
                    left.unlink(missing_ok=True)

    @property
    def _owner(self) -> str:
        """The prefix of this process's temporary files, which names it for _remove_orphans."""
        return f"{socket.gethostname()}~{os.getpid()}~"

    def usage(self) -> int:
        """Bytes the cached copies take, as counted (exact after each eviction pass)."""
        return self._read_usage()

    def _paths(self, key: str) -> tuple[Path, Path]:
        rel = check_key(key)
        return self.root / "data" / rel, self.root / "meta" / rel

    def _fresh(self, meta: Path) -> bool:
        try:
            return time.time() - meta.stat().st_mtime <= self.revalidate_after
        except FileNotFoundError:
            return False

    @staticmethod
    def _recorded(data: Path, meta: Path) -> str | None:
        """The ETag of the copy, or None when there is no complete copy."""
        try:
            return meta.read_text() if data.exists() else None
        except FileNotFoundError:
            return None

    @staticmethod
    def _touch(data: Path) -> Path:
        """Mark ``data`` used now (its atime), keeping its mtime: readers that parse a copy
        once (a frame index) key the parse on it."""
        with suppress(FileNotFoundError):  # evicted meanwhile: the caller's open will say so
            os.utime(data, ns=(time.time_ns(), data.stat().st_mtime_ns))
        return data

    def _store(self, data: Path, meta: Path, source: Path, etag: str) -> None:
        """Rename ``source`` in as the copy, then its ETag (a crash between the two leaves an
        old ETag beside new bytes: the next check fetches again, never the reverse)."""
        old = data.stat().st_size if data.exists() else 0
        size = source.stat().st_size
        data.parent.mkdir(parents=True, exist_ok=True)
        meta.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, data)
        except OSError:  # another filesystem (a scratch folder elsewhere)
            shutil.move(source, data)
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", prefix=self._owner)
        with os.fdopen(fd, "w") as out:
            out.write(etag)
        os.replace(tmp, meta)
        self._account(size - old)

    def _account(self, delta: int) -> None:
        with self._lock("global"):
            total = self._read_usage() + delta
            if total > self.max_bytes:
                total = self._evict()
            self._write_usage(total)

    def _evict(self) -> int:
        """Remove least recently used copies until the total is under 90 % of the limit, and
        what killed processes left in tmp/ and scratch/; returns the total counted on disk.
        Runs under the global lock."""
        self._remove_orphans()
        entries: list[tuple[float, int, Path]] = []
        for folder, _dirs, files in os.walk(self.root / "data"):
            for name in files:
                path = Path(folder) / name
                with suppress(FileNotFoundError):
                    st = path.stat()
                    entries.append((st.st_atime, st.st_size, path))
        total = sum(size for _, size, _ in entries)
        recent = time.time() - self.keep_recent
        for used, size, path in sorted(entries):
            if total <= self.max_bytes * EVICT_DOWN_TO or used > recent:
                break
            path.unlink(missing_ok=True)
            (self.root / "meta" / path.relative_to(self.root / "data")).unlink(missing_ok=True)
            total -= size
        return total

    def _read_usage(self) -> int:
        try:
            return int((self.root / "usage").read_text() or 0)
        except FileNotFoundError:
            return 0

    def _write_usage(self, total: int) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", prefix=self._owner)
        with os.fdopen(fd, "w") as out:
            out.write(str(total))
        os.replace(tmp, self.root / "usage")

    @staticmethod
    def _stripe(key: str) -> str:
        return f"{zlib.crc32(key.encode()) % LOCK_STRIPES:03x}"

    @contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        """An exclusive lock across processes (and threads: one open file each)."""
        with (self.root / "locks" / f"{name}.lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (signal 0 only checks it exists)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
