from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from app.media.decode import iter_frames, read_audio, read_frame, video_timing
from tests.media import videos
from tests.media.conftest import FPS, FRAMES

FORMATS = ["h264", "vp9", "mpeg4", "cv_mp4v", "cv_mjpg"]
SPOT = [0, 1, 7, 8, 15, 16, 31, FRAMES - 1]


@pytest.mark.parametrize("name", FORMATS)
def test_iter_frames_yields_every_frame_once_in_display_order(
    clips: dict[str, Path], name: str
) -> None:
    frames = list(iter_frames(clips[name]))
    assert [videos.frame_index(f) for f in frames] == list(range(FRAMES))
    assert all(f.dtype == np.uint8 and f.shape == (64, 96, 3) for f in frames)


@pytest.mark.parametrize("name", FORMATS)
def test_frame_n_equals_opencv_seek_to_n(clips: dict[str, Path], name: str) -> None:
    frames = list(iter_frames(clips[name]))
    cap = cv2.VideoCapture(str(clips[name]))
    try:
        for n in SPOT:
            cap.set(cv2.CAP_PROP_POS_FRAMES, n)
            ok, bgr = cap.read()
            assert ok, n
            assert np.array_equal(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), frames[n]), n
    finally:
        cap.release()


@pytest.mark.parametrize("name", ["h264", "vp9", "cv_mjpg"])
def test_read_frame_seeks_to_the_exact_frame(clips: dict[str, Path], name: str) -> None:
    frames = list(iter_frames(clips[name]))
    for n in SPOT:
        assert np.array_equal(read_frame(clips[name], n), frames[n]), n
    for bad in (-1, FRAMES):
        with pytest.raises(IndexError):
            read_frame(clips[name], bad)


def test_read_frame_far_from_a_keyframe(tmp_path: Path) -> None:
    path = videos.write_pyav(tmp_path / "gop.mp4", frames=120, options={"g": "48"})
    for n in (47, 48, 95, 119):
        assert videos.frame_index(read_frame(path, n)) == n


def test_max_width_downscales_keeping_aspect(clips: dict[str, Path]) -> None:
    frame = next(iter_frames(clips["h264"], max_width=48))
    assert frame.shape == (32, 48, 3)
    assert next(iter_frames(clips["h264"], max_width=500)).shape == (64, 96, 3)


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_frames_are_rotated_as_players_show_them(tmp_path: Path, degrees: int) -> None:
    path = videos.write_rotated(tmp_path / f"rot{degrees}.mp4", degrees)
    frames = list(iter_frames(path))
    # undo the display rotation (counter-clockwise, as ffmpeg's autorotate applies it)
    upright = [np.rot90(f, -degrees // 90) for f in frames]
    assert [videos.frame_index(f) for f in upright] == list(range(10))
    assert frames[0].shape[:2] == ((96, 64) if degrees in (90, 270) else (64, 96))


def test_video_timing_of_constant_and_variable_rate(clips: dict[str, Path], tmp_path: Path) -> None:
    cfr = video_timing(clips["vp9"])  # WebM rounds timestamps to milliseconds
    assert cfr.fps == FPS and not cfr.variable and len(cfr.pts) == FRAMES
    vfr = video_timing(videos.write_pyav_timed(tmp_path / "vfr.mp4", [0, 1, 2, 6, 7, 8, 9, 14]))
    assert vfr.variable
    assert vfr.fps == pytest.approx(8 / 15 * FPS, rel=0.01)  # frames / covered time


def _dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[spectrum.argmax()])


@pytest.mark.parametrize("name", ["h264_audio", "vp9"])
def test_read_audio_resamples_to_int16_mono(clips: dict[str, Path], name: str) -> None:
    pcm = read_audio(clips[name], sample_rate=16000)
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    assert pcm.size == pytest.approx(16000 * FRAMES / FPS, rel=0.02)
    assert _dominant_hz(pcm, 16000) == pytest.approx(440, abs=2)
    stereo = read_audio(clips[name], sample_rate=8000, mono=False)
    assert stereo.ndim == 2 and stereo.shape[0] == pytest.approx(8000 * FRAMES / FPS, rel=0.02)


def test_read_audio_without_audio_is_empty(clips: dict[str, Path]) -> None:
    assert read_audio(clips["h264"]).size == 0
