"""Frame-exact image cache the browser editor reads instead of seeking a video.

A video is decoded once; every frame is stored as a JPEG, ``chunk_size``
frames concatenated per ``chunk_NNNNN.bin`` file, and ``index.json`` records
where each frame lives (chunk, byte offset, length). Serving frame N is then
one open + pread, and the browser can also fetch a whole chunk and slice it
with the offsets from the index. See docs/media-layout.md for the layout and
for why JPEG (not WebP).

The cache directory appears only once complete: it is built in a hidden
sibling directory and renamed into place, so a crash never leaves a
half-written cache that looks finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import cv2
import numpy as np

from app.media.decode import Image, iter_frames, video_timing

INDEX_NAME = "index.json"
FORMAT_VERSION = 1
MIME = "image/jpeg"
_STALE_AFTER_S = 3600  # leftovers of crashed builds older than this are removed
_OPEN_CACHES = 512  # parsed indexes a process keeps (a few hundred frames each)

FrameCallback = Callable[[int, Image], None]
# Where a cache file (index or chunk) is on this host, given its name; a bucket-backed cache
# fetches the file into the host's media cache on first use.
FileFetch = Callable[[str], Path]


@dataclass(frozen=True)
class FrameCacheInfo:
    """Summary of a built cache (the same numbers as its index.json)."""

    directory: Path
    count: int
    width: int  # of the cached images
    height: int
    source_width: int  # of the decoded frames (coordinates of annotations)
    source_height: int
    fps: float
    chunk_size: int
    chunk_count: int
    mime: str
    total_bytes: int
    content_sha256: str
    quality: int  # the JPEG quality the frames were encoded at


def chunk_name(k: int) -> str:
    return f"chunk_{k:05d}.bin"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _scaled(rgb: Image, max_width: int | None) -> Image:
    height, width = rgb.shape[:2]
    if max_width is None or width <= max_width:
        return rgb
    size = (max_width, max(1, round(height * max_width / width)))
    return cast(Image, cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))


def encode_jpeg(rgb: Image, quality: int) -> bytes:
    """JPEG bytes of an RGB frame (OpenCV; deterministic for identical input)."""
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def _write_cache(
    video_path: Path,
    tmp: Path,
    chunk_size: int,
    quality: int,
    max_width: int | None,
    on_frame: FrameCallback | None,
) -> dict[str, Any]:
    frames: list[tuple[int, int, int]] = []
    chunk_sizes: list[int] = []
    digest = hashlib.sha256()
    source_size = cache_size = (0, 0)
    chunk: BinaryIO | None = None
    try:
        for index, rgb in enumerate(iter_frames(video_path)):
            if on_frame is not None:
                on_frame(index, rgb)
            small = _scaled(rgb, max_width)
            data = encode_jpeg(small, quality)
            if index % chunk_size == 0:
                if chunk is not None:
                    chunk.close()
                chunk = (tmp / chunk_name(len(chunk_sizes))).open("wb")
                chunk_sizes.append(0)
                source_size = (rgb.shape[1], rgb.shape[0])
                cache_size = (small.shape[1], small.shape[0])
            assert chunk is not None
            chunk.write(data)
            frames.append((len(chunk_sizes) - 1, chunk_sizes[-1], len(data)))
            chunk_sizes[-1] += len(data)
            digest.update(data)
    finally:
        if chunk is not None:
            chunk.close()
    if not frames:
        raise ValueError(f"{video_path} has no decodable frames")
    return {
        "version": FORMAT_VERSION,
        "count": len(frames),
        "width": cache_size[0],
        "height": cache_size[1],
        "source_width": source_size[0],
        "source_height": source_size[1],
        "fps": float(video_timing(video_path).fps),
        "chunk_size": chunk_size,
        "chunks": chunk_sizes,
        "mime": MIME,
        "quality": quality,
        "content_sha256": digest.hexdigest(),
        "frames": frames,
    }


def _remove_stale(out_dir: Path) -> None:
    """Delete hidden leftovers of builds that crashed (old enough not to be running)."""
    cutoff = time.time() - _STALE_AFTER_S
    for pattern in (f".{out_dir.name}.tmp-*", f".{out_dir.name}.old-*"):
        for leftover in out_dir.parent.glob(pattern):
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    shutil.rmtree(leftover, ignore_errors=True)


def _swap_in(tmp: Path, out_dir: Path) -> None:
    """Rename the finished build over `out_dir`; retried if a concurrent build raced us."""
    for _ in range(5):
        old = None
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            with contextlib.suppress(FileNotFoundError):
                os.replace(out_dir, old / out_dir.name)
        try:
            os.rename(tmp, out_dir)
        except OSError:  # another build put its directory in place between our two renames
            continue
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        _fsync(out_dir.parent)
        return
    raise OSError(f"could not move the frame cache into {out_dir}")


def build_frame_cache(
    video_path: str | Path,
    out_dir: str | Path,
    *,
    chunk_size: int = 32,
    quality: int = 88,
    max_width: int | None = None,
    on_frame: FrameCallback | None = None,
) -> FrameCacheInfo:
    """Decode `video_path` once into a JPEG chunk cache at `out_dir` (replaced atomically).

    `on_frame(index, rgb)` sees every decoded frame at source resolution (before
    `max_width` scaling), so other steps can share this decoding pass.
    Deterministic: building the same video twice gives byte-identical files.
    """
    if chunk_size < 1 or not 1 <= quality <= 100:
        raise ValueError("chunk_size must be >= 1 and quality within 1..100")
    video_path, out_dir = Path(video_path), Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(out_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        index = _write_cache(video_path, tmp, chunk_size, quality, max_width, on_frame)
        (tmp / INDEX_NAME).write_text(json.dumps(index, separators=(",", ":")))
        for path in tmp.iterdir():
            _fsync(path)
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return FrameCache(out_dir).info


class FrameCache:
    """Read side of a built cache. A snapshot: reopen after the cache is rebuilt.

    ``fetch`` finds a cache file on this host by name (default: in ``directory``)."""

    def __init__(self, directory: str | Path, fetch: FileFetch | None = None) -> None:
        self.directory = Path(directory)
        self._fetch = fetch or self.directory.joinpath
        self._copies = fetch is not None  # chunks are copies in a host cache evicting by atime
        index = json.loads(self._fetch(INDEX_NAME).read_text())
        if index.get("version") != FORMAT_VERSION:
            raise ValueError(f"{self.directory}: unsupported frame cache version")
        self.count: int = index["count"]
        self.mime: str = index["mime"]
        self._frames: list[tuple[int, int, int]] = [tuple(f) for f in index["frames"]]
        self._chunk_names = [chunk_name(k) for k in range(len(index["chunks"]))]
        self._chunk_paths: dict[int, Path] = {}
        self.info = FrameCacheInfo(
            directory=self.directory,
            count=self.count,
            width=index["width"],
            height=index["height"],
            source_width=index["source_width"],
            source_height=index["source_height"],
            fps=index["fps"],
            chunk_size=index["chunk_size"],
            chunk_count=len(index["chunks"]),
            mime=self.mime,
            total_bytes=sum(index["chunks"]),
            content_sha256=index["content_sha256"],
            quality=index["quality"],
        )

    def __len__(self) -> int:
        return self.count

    @property
    def chunk_count(self) -> int:
        return len(self._chunk_names)

    def _chunk_path(self, chunk: int) -> Path:
        """Where chunk ``chunk`` is on this host, found once for this parsed index: the index
        was checked against the store, so its chunks are not checked again on every frame (in a
        bucket, that was a media-cache lookup per frame and a HEAD per chunk every few seconds)."""
        path = self._chunk_paths.get(chunk)
        if path is None:
            path = self._chunk_paths[chunk] = self._fetch(self._chunk_names[chunk])
        return path

    def _pread(self, chunk: int, offset: int, length: int) -> bytes:
        path = self._chunk_path(chunk)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # a bucket's copy evicted from the host cache: fetch again
            self._chunk_paths.pop(chunk, None)
            path = self._chunk_path(chunk)
            fd = os.open(path, os.O_RDONLY)
        try:
            if self._copies:  # used now, for the cache's LRU (its mtime stays the download's)
                os.utime(fd, ns=(time.time_ns(), os.fstat(fd).st_mtime_ns))
            data = os.pread(fd, length, offset)
        finally:
            os.close(fd)
        if len(data) != length:
            raise OSError(f"{path} is shorter than its index says")
        return data

    def read_frame(self, n: int) -> bytes:
        """Encoded image of frame `n` (IndexError outside 0..count-1)."""
        if not 0 <= n < self.count:
            raise IndexError(f"frame {n} out of range 0..{self.count - 1}")
        return self._pread(*self._frames[n])

    def read_chunk(self, k: int) -> bytes:
        """All encoded frames of chunk `k`, concatenated; slice with :meth:`chunk_frames`."""
        if not 0 <= k < self.chunk_count:
            raise IndexError(f"chunk {k} out of range 0..{self.chunk_count - 1}")
        return self._fetch(self._chunk_names[k]).read_bytes()

    def chunk_frames(self, k: int) -> list[tuple[int, int]]:
        """(offset, length) of each frame inside chunk `k`, in frame order."""
        if not 0 <= k < self.chunk_count:
            raise IndexError(f"chunk {k} out of range 0..{self.chunk_count - 1}")
        return [(offset, length) for chunk, offset, length in self._frames if chunk == k]

    def image(self, n: int) -> Image:
        """Frame `n` decoded to RGB (for thumbnails and filmstrips)."""
        bgr = cv2.imdecode(np.frombuffer(self.read_frame(n), np.uint8), cv2.IMREAD_COLOR)
        return cast(Image, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    def etag(self, n: int) -> str:
        """Strong HTTP ETag for frame `n`; changes whenever the cached images change."""
        if not 0 <= n < self.count:
            raise IndexError(f"frame {n} out of range 0..{self.count - 1}")
        return f'"{self.info.content_sha256[:16]}-{n}"'


_opened: OrderedDict[tuple[str, int, int], FrameCache] = OrderedDict()
_opened_lock = threading.Lock()  # requests run in a thread pool


def open_frame_cache(
    directory: str | Path, fetch: FileFetch | None = None, *, index: Path | None = None
) -> FrameCache:
    """The cache at `directory`, its index parsed once per build and process (see FrameCache
    for ``fetch``; ``index``: the index file, when the caller has already found it).

    A rebuild swaps in a new index file (a new inode), so a stale parse is never served;
    FileNotFoundError when the cache is not built.
    """
    if index is None:
        index = fetch(INDEX_NAME) if fetch else Path(directory) / INDEX_NAME
    stat = os.stat(index)
    key = (str(directory), stat.st_ino, stat.st_mtime_ns)
    with _opened_lock:
        if (cache := _opened.get(key)) is not None:
            _opened.move_to_end(key)
            return cache
    cache = FrameCache(directory, fetch)
    with _opened_lock:
        _opened[key] = cache
        while len(_opened) > _OPEN_CACHES:
            _opened.popitem(last=False)
    return cache
