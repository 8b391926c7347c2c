from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from app.media.decode import iter_frames, read_audio
from app.media.framecache import FrameCache, build_frame_cache
from app.media.preview import (
    PreviewCodec,
    filmstrip_indices,
    make_filmstrip,
    make_preview,
    make_thumbnail,
)
from tests.media import videos
from tests.media.conftest import FPS, FRAMES


def read_back(path: Path) -> tuple[av.VideoStream, list[av.VideoFrame], list[str]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        return stream, frames, [a.codec_context.name for a in container.streams.audio]


def top_level_boxes(path: Path) -> list[bytes]:
    data, pos, boxes = path.read_bytes(), 0, []
    while pos + 8 <= len(data):
        boxes.append(data[pos + 4 : pos + 8])
        pos += int.from_bytes(data[pos : pos + 4], "big")
    return boxes


@pytest.mark.parametrize(
    ("codec", "suffix", "video_codec", "audio_codec"),
    [("h264", "mp4", "h264", "aac"), ("vp9", "webm", "vp9", "opus")],
)
def test_preview_keeps_every_frame_at_a_constant_rate_with_audio(
    clips: dict[str, Path],
    tmp_path: Path,
    codec: PreviewCodec,
    suffix: str,
    video_codec: str,
    audio_codec: str,
) -> None:
    source = clips["h264_audio"]
    info = make_preview(source, tmp_path / f"preview.{suffix}", codec=codec)
    stream, frames, audio = read_back(info.path)
    assert stream.codec_context.name == video_codec and audio == [audio_codec]
    assert info.frame_count == len(frames) == FRAMES and info.fps == FPS
    assert stream.average_rate == FPS
    assert [videos.frame_index(f.to_ndarray(format="rgb24")) for f in frames] == list(range(FRAMES))
    assert all(f.format.name == "yuv420p" for f in frames)
    starts = [float(f.time) for f in frames]
    assert np.allclose(np.diff(starts), 1 / FPS, atol=1e-3)  # constant frame rate
    assert read_audio(info.path).size == pytest.approx(read_audio(source).size, rel=0.01)
    assert info.has_audio and info.size_bytes == info.path.stat().st_size


def test_h264_preview_is_faststart_with_a_precise_codecs_string(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    info = make_preview(clips["h264_audio"], tmp_path / "preview.mp4")
    boxes = top_level_boxes(info.path)
    assert boxes.index(b"moov") < boxes.index(b"mdat")
    with av.open(str(info.path)) as container:
        cc = container.streams.video[0].codec_context
        profile_idc = {"High": 0x64, "Main": 0x4D}[cc.profile]
        assert info.mime == (
            f'video/mp4; codecs="avc1.{profile_idc:02x}00{cc.level:02x}, mp4a.40.2"'
        )


def test_preview_without_audio_and_odd_size_is_scaled_to_even_dims(tmp_path: Path) -> None:
    source = videos.write_opencv(tmp_path / "odd.avi", fourcc="MJPG", width=150, height=99)
    info = make_preview(source, tmp_path / "preview.mp4", max_height=50)
    stream, frames, audio = read_back(info.path)
    assert (info.width, info.height) == (stream.width, stream.height) == (76, 50)
    assert audio == [] and not info.has_audio and "mp4a" not in info.mime
    assert len(frames) == 30


def test_variable_rate_source_becomes_constant_rate_same_duration(tmp_path: Path) -> None:
    pts = [0, 1, 2, 3, 8, 9, 10, 11, 12, 20]
    source = videos.write_pyav_timed(tmp_path / "vfr.mp4", pts)
    info = make_preview(source, tmp_path / "preview.mp4")
    _, frames, _ = read_back(info.path)
    assert [videos.frame_index(f.to_ndarray(format="rgb24")) for f in frames] == list(range(10))
    assert len(frames) / info.fps == pytest.approx(21 / FPS, rel=0.02)


def test_thumbnail_is_scaled_but_never_enlarged(tmp_path: Path) -> None:
    big = cv2.resize(videos.scene(3), (640, 360), interpolation=cv2.INTER_NEAREST)
    info = make_thumbnail(big, tmp_path / "thumb.jpg")
    assert (info.width, info.height) == (320, 180)
    assert cv2.imread(str(info.path)).shape == (180, 320, 3)
    small = make_thumbnail(videos.scene(3), tmp_path / "small.jpg")
    assert (small.width, small.height) == (96, 64)


def test_filmstrip_from_a_cache_uses_evenly_spaced_frames(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    cache = FrameCache(build_frame_cache(clips["h264"], tmp_path / "frames").directory)
    info = make_filmstrip(cache, tmp_path / "filmstrip.jpg", n=10, height=72)
    assert info.indices == [2, 6, 10, 14, 18, 22, 26, 30, 34, 38]
    strip = cv2.cvtColor(cv2.imread(str(info.path)), cv2.COLOR_BGR2RGB)
    assert strip.shape == (72, 10 * info.tile_width, 3) and info.tile_width == 108
    for k, n in enumerate(info.indices):
        tile = strip[:, k * info.tile_width : (k + 1) * info.tile_width]
        assert videos.frame_index(cv2.resize(tile, (96, 64), interpolation=cv2.INTER_AREA)) == n


def test_filmstrip_from_frames_with_fewer_frames_than_tiles(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    frames = list(iter_frames(clips["h264"]))[:4]
    info = make_filmstrip(frames, tmp_path / "strip.jpg", n=10, height=32)
    assert info.indices == [0, 1, 2, 3] and info.width == 4 * 48


def test_filmstrip_indices_cover_the_clip_without_repeats() -> None:
    for count in (10, 11, 97, FRAMES):
        indices = filmstrip_indices(count, 10)
        assert len(set(indices)) == 10 and indices == sorted(indices)
        assert 0 <= indices[0] < count / 10 and count - count / 10 <= indices[-1] < count
