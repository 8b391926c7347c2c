"""A clip's derived media read through the media store (a local folder or a bucket)."""

from __future__ import annotations

from pathlib import Path

from app.core.storage_api import Storage
from app.media.framecache import INDEX_NAME, FrameCache, open_frame_cache


def frames_key(prefix: str, name: str = INDEX_NAME) -> str:
    """The key of a frame-cache file of the clip whose media live under ``prefix``."""
    return f"{prefix}/frames/{name}"


def stored_frames(storage: Storage, prefix: str) -> FrameCache:
    """The frame cache of the clip under ``prefix``; its files are fetched on first use into
    this host's cache when they live in a bucket. FileNotFoundError while it is not built.

    On this host's disk the chunks are read beside the index, whose path the store checked:
    checking each chunk's key again would cost a path resolution on every frame served."""
    index = storage.local_file(frames_key(prefix))
    if storage.on_this_disk:
        return open_frame_cache(index.parent)

    def fetch(name: str) -> Path:
        return storage.local_file(frames_key(prefix, name))

    return open_frame_cache(index.parent, fetch, index=index)
