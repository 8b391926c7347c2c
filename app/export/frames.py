"""The annotated frames' images in a snapshot, under the names the annotation files use.

A frame goes to ``<image root>/<split>/<clip key>/<frame:06d>.<jpg|png>``, numbered from 0
as CelLabel numbers frames; the image root is ``yolo/images`` when the snapshot has YOLO
labels (Ultralytics pairs ``images/`` with ``labels/``) and ``images`` otherwise, and COCO's
``file_name`` is relative to ``<image root>/<split>``. The bytes are the frame cache's JPEG
when the cache is at the source size and the export asks for its quality; otherwise the
source is decoded frame-exactly (PyAV, the cache's decoder) and encoded. Frames are written
one at a time as they are read, so memory does not grow with the number of frames.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import cv2

from app.core.errors import Invalid
from app.core.storage import clip_prefix, get_storage
from app.core.storage_api import Storage
from app.export.formats.bundle import ClipBundle, SnapshotContext, wholebody_frames
from app.export.formats.yolo import YOLO_IMAGES
from app.media.decode import Image, iter_frames, read_frame
from app.media.framecache import FrameCache, encode_jpeg
from app.media.stored import stored_frames

IMAGE_FORMATS = frozenset({"coco_wholebody", "coco_person", "yolo"})  # files naming frames


def image_root(formats: Sequence[str]) -> str:
    return YOLO_IMAGES if "yolo" in formats else "images"


def frame_folder(root: str, split: str, key: str) -> str:
    """The folder of a clip's frame images inside the snapshot."""
    return f"{root}/{split}/{key}"


def encode(rgb: Image, ext: str, quality: int) -> bytes:
    if ext == "jpg":
        return encode_jpeg(rgb, quality)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def frame_cache_of(clip: Mapping[str, Any]) -> FrameCache | None:
    """The clip's frame cache when it is built and holds frames at the source size."""
    try:
        cache = stored_frames(get_storage(), clip_prefix(clip["project_id"], clip["id"]))
    except FileNotFoundError:
        return None
    return cache if cache.info.width == cache.info.source_width else None


def read_frames(
    clip: Mapping[str, Any], store: Storage, frames: Sequence[int], ext: str, quality: int
) -> Iterator[tuple[int, bytes]]:
    """(frame, encoded image) of each of ``frames`` (ascending), one at a time, from the frame
    cache or else the source video in ``store`` (`ClipBundle.store`); Invalid when the clip's
    frames cannot be read."""
    cache = frame_cache_of(clip)
    if cache is not None and ext == "jpg" and cache.info.quality == quality:
        if frames and frames[-1] >= cache.count:
            raise Invalid(f"Clip {clip['id']} has {cache.count} frames, not {frames[-1] + 1}.")
        for n in frames:
            yield n, cache.read_frame(n)
        return
    wanted, found = set(frames), 0
    try:
        source = store.local_file(str(clip["storage_key"]))
        for index, rgb in enumerate(iter_frames(source)):
            if index in wanted:
                yield index, encode(rgb, ext, quality)
                found += 1
                if found == len(wanted):
                    return
    except Exception as exc:  # any decoder failure: PyAV raises its own error types
        raise Invalid(
            f"Cannot read the frames of clip {clip['id']} ({type(exc).__name__}: {exc}); "
            "export without frames, or restore its file."
        ) from exc
    if found < len(wanted):
        raise Invalid(f"Clip {clip['id']} has fewer frames than its annotation.")


def frame_image(clip: Mapping[str, Any], store: Storage, frame: int) -> Image:
    """One frame of the clip as BGR (for drawing), from the cache when it holds the frame at
    the source size, else from the source video in ``store``; Invalid when it cannot be read."""
    cache = frame_cache_of(clip)
    try:
        if cache is not None:
            return cast(Image, cv2.cvtColor(cache.image(frame), cv2.COLOR_RGB2BGR))
        rgb = read_frame(store.local_file(str(clip["storage_key"])), frame)
    except Exception as exc:  # any decoder failure: PyAV raises its own error types
        raise Invalid(f"Cannot read frame {frame} of clip {clip['id']}: {exc}") from exc
    return cast(Image, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


class FramesWriter:
    """Writes each clip's annotated frames (those the COCO and YOLO files name)."""

    def __init__(self, out: Path, ctx: SnapshotContext, quality: int) -> None:
        self.out = out
        self.ctx = ctx
        self.quality = quality
        self.count = 0

    def add(self, clip: ClipBundle) -> None:
        frames = [frame for frame, _ in wholebody_frames(clip)]
        folder = self.out / frame_folder(self.ctx.image_root, clip.split, clip.key)
        if frames:
            folder.mkdir(parents=True, exist_ok=True)
        frames_read = read_frames(clip.clip, clip.store, frames, self.ctx.image_ext, self.quality)
        for frame, data in frames_read:
            (folder / f"{frame:06d}.{self.ctx.image_ext}").write_bytes(data)
            self.count += 1

    def close(self) -> None:
        pass
