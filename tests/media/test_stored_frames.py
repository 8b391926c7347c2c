"""Frames of a clip whose media live in a bucket, served from the web host's cache (SeaweedFS)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from app.core.media_cache import MediaCache
from app.media.framecache import FrameCache, build_frame_cache
from app.media.stored import stored_frames
from tests.object_store import SeaweedServer


def test_cached_frames_are_served_without_asking_the_store_per_frame(
    object_store: SeaweedServer, clips: dict[str, Path], tmp_path: Path
) -> None:
    """Each request checks the clip's index (at most one HEAD, none while it is fresh) and
    reads its chunks from the host's copies: no GET or HEAD per frame, and the index is parsed
    once, however often the LRU marks the copies used."""
    storage = object_store.storage(MediaCache(tmp_path / "cache", 10**9, revalidate_after=0))
    built = tmp_path / "built"
    build_frame_cache(clips["vp9"], built / "frames", chunk_size=16)
    storage.publish_tree("clips/1/7", built, last=["frames/index.json"])
    local = FrameCache(built / "frames")
    calls: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        calls[event_name.rsplit(".", 1)[-1]] += 1

    storage.client.meta.events.register("before-call.s3", count)
    first = stored_frames(storage, "clips/1/7")
    assert [first.read_frame(n) for n in range(len(first))] == [
        local.read_frame(n) for n in range(len(local))
    ]
    fetched = calls["GetObject"]
    assert fetched == 1 + local.chunk_count  # the index and each chunk, once

    calls.clear()
    for n in range(len(local)):  # one request per frame, as the browser sends them
        again = stored_frames(storage, "clips/1/7")
        assert again is first
        assert again.read_frame(n) == local.read_frame(n)
    # Revalidation after 0 s: the index is checked on each request (HEAD), never a chunk.
    assert calls == Counter({"HeadObject": len(local)})
