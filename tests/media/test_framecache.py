from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.batches import claims
from app.clips.models import ClipState
from app.media.decode import iter_frames
from app.media.framecache import FrameCache, build_frame_cache
from tests.factories import (
    clip_media_dir,
    create_batch,
    create_clip,
    create_project,
    create_user,
    login,
)
from tests.media import videos
from tests.media.conftest import FPS, FRAMES


def decode_jpeg(data: bytes) -> np.ndarray:
    return cv2.cvtColor(
        cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
    )


def mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b).mean())


@pytest.fixture(scope="module")
def source_frames(clips: dict[str, Path]) -> list[np.ndarray]:
    return list(iter_frames(clips["vp9"]))


@pytest.fixture(scope="module")
def cache(clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> FrameCache:
    out = tmp_path_factory.mktemp("clip") / "frames"
    build_frame_cache(clips["vp9"], out, chunk_size=16)
    return FrameCache(out)


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 31, 32, FRAMES - 1])
def test_cached_frame_n_is_source_frame_n(
    cache: FrameCache, source_frames: list[np.ndarray], n: int
) -> None:
    image = decode_jpeg(cache.read_frame(n))
    assert videos.frame_index(image) == n
    diffs = [mean_diff(image, f) for f in source_frames]
    assert diffs[n] < 3.0  # JPEG at quality 88
    assert int(np.argmin(diffs)) == n  # closer to frame n than to any neighbour


def test_index_describes_chunks(cache: FrameCache) -> None:
    index = json.loads((cache.directory / "index.json").read_text())
    assert index["count"] == cache.count == len(cache) == FRAMES
    assert (index["width"], index["height"], index["fps"]) == (96, 64, FPS)
    assert index["mime"] == "image/jpeg" and index["chunk_size"] == 16
    assert sorted(p.name for p in cache.directory.iterdir()) == [
        "chunk_00000.bin",
        "chunk_00001.bin",
        "chunk_00002.bin",
        "index.json",
    ]
    assert [f[0] for f in index["frames"]] == [n // 16 for n in range(FRAMES)]
    # a chunk is exactly its frames back to back
    chunk = cache.read_chunk(1)
    pieces = [chunk[o : o + length] for o, length in cache.chunk_frames(1)]
    assert pieces == [cache.read_frame(n) for n in range(16, 32)]
    assert b"".join(pieces) == chunk


def test_out_of_range_raises_index_error(cache: FrameCache) -> None:
    for bad in (-1, FRAMES):
        with pytest.raises(IndexError):
            cache.read_frame(bad)
        with pytest.raises(IndexError):
            cache.etag(bad)
    with pytest.raises(IndexError):
        cache.read_chunk(3)


def test_etags_are_per_frame_and_stable(
    cache: FrameCache, clips: dict[str, Path], tmp_path: Path
) -> None:
    assert len({cache.etag(n) for n in range(FRAMES)}) == FRAMES
    other = FrameCache(build_frame_cache(clips["vp9"], tmp_path / "f", chunk_size=16).directory)
    assert other.etag(5) == cache.etag(5)
    lower = FrameCache(build_frame_cache(clips["vp9"], tmp_path / "q", quality=40).directory)
    assert lower.etag(5) != cache.etag(5)


def test_reading_a_frame_is_fast(cache: FrameCache) -> None:
    start = time.perf_counter()
    for i in range(2000):
        cache.read_frame(i % FRAMES)
    assert (time.perf_counter() - start) / 2000 < 0.001


def test_building_twice_gives_identical_files(clips: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "frames"
    build_frame_cache(clips["h264"], out)
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    build_frame_cache(clips["h264"], out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    assert sorted(os.listdir(tmp_path)) == ["frames"]  # no temporary leftovers


def test_on_frame_sees_every_source_frame_once(clips: dict[str, Path], tmp_path: Path) -> None:
    seen: list[tuple[int, tuple[int, ...], int]] = []
    info = build_frame_cache(
        clips["h264"],
        tmp_path / "frames",
        max_width=48,
        on_frame=lambda i, rgb: seen.append((i, rgb.shape, videos.frame_index(rgb))),
    )
    assert seen == [(i, (64, 96, 3), i) for i in range(FRAMES)]  # full resolution
    assert (info.width, info.height, info.source_width, info.source_height) == (48, 32, 96, 64)
    assert decode_jpeg(FrameCache(info.directory).read_frame(3)).shape == (32, 48, 3)


def test_a_failed_build_leaves_no_cache_that_looks_complete(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "frames"

    def crash(i: int, _rgb: np.ndarray) -> None:
        if i == 20:
            raise RuntimeError("worker killed")

    with pytest.raises(RuntimeError):
        build_frame_cache(clips["h264"], out, chunk_size=8, on_frame=crash)
    assert os.listdir(tmp_path) == []
    # with an existing cache, a failed rebuild keeps the old one intact
    build_frame_cache(clips["h264"], out, chunk_size=8)
    before = FrameCache(out).read_frame(30)
    with pytest.raises(RuntimeError):
        build_frame_cache(clips["h264"], out, chunk_size=4, on_frame=crash)
    assert os.listdir(tmp_path) == ["frames"]
    assert FrameCache(out).info.chunk_size == 8 and FrameCache(out).read_frame(30) == before


def test_stale_leftovers_of_a_crashed_build_are_removed(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    stale, fresh = tmp_path / ".frames.tmp-dead", tmp_path / ".frames.tmp-running"
    for d in (stale, fresh):
        d.mkdir()
        (d / "chunk_00000.bin").write_bytes(b"x")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    build_frame_cache(clips["h264"], tmp_path / "frames")
    assert sorted(os.listdir(tmp_path)) == [".frames.tmp-running", "frames"]


def test_frame_endpoint_serves_assigned_frames_with_revalidation(
    client: TestClient, db: Session, clips: dict[str, Path]
) -> None:
    project = create_project(db)
    clip = create_clip(db, project, state=ClipState.ready, frame_count=FRAMES)
    frames_dir = clip_media_dir(clip) / "frames"
    build_frame_cache(clips["h264"], frames_dir, chunk_size=8)
    annotator = create_user(db)
    url = f"/media/clips/{clip.id}/frames/7.jpg"
    login(client, db, annotator)
    assert client.get(url).status_code == 404  # not in this annotator's queue
    claims.assign_clips(db, create_batch(db, project, [clip]).id, annotator, 1)

    first = client.get(url)
    assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    assert first.content == FrameCache(frames_dir).read_frame(7)
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{16}-7"', etag)  # one strong tag, quoted once
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert client.get(f"/media/clips/{clip.id}/frames/{FRAMES}.jpg").status_code == 404

    # A rebuilt cache is served at once, under a new tag (no stale parse of the old index).
    build_frame_cache(clips["h264"], frames_dir, chunk_size=8, quality=30)
    rebuilt = client.get(url, headers={"If-None-Match": etag})
    assert rebuilt.status_code == 200 and rebuilt.headers["etag"] != etag
    assert rebuilt.content == FrameCache(frames_dir).read_frame(7) != first.content
