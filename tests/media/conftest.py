"""Small numbered test videos, written once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.media import videos

FRAMES = 40
FPS = 25


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media-videos")


@pytest.fixture(scope="session")
def clips(media_dir: Path) -> dict[str, Path]:
    """name -> file: every source format the decoder must number identically."""
    d = media_dir
    return {
        # libx264 defaults use B-frames, so decode order differs from display order
        "h264": videos.write_pyav(d / "h264.mp4", frames=FRAMES, fps=FPS),
        "h264_audio": videos.write_pyav(
            d / "h264_audio.mp4", frames=FRAMES, fps=FPS, audio_seconds=FRAMES / FPS
        ),
        "vp9": videos.write_pyav(
            d / "vp9.webm", codec="libvpx-vp9", frames=FRAMES, fps=FPS, audio_seconds=FRAMES / FPS
        ),
        "mpeg4": videos.write_pyav(d / "mpeg4.mp4", codec="mpeg4", frames=FRAMES, fps=FPS),
        "cv_mp4v": videos.write_opencv(d / "cv_mp4v.mp4", frames=FRAMES, fps=FPS),
        "cv_mjpg": videos.write_opencv(d / "cv_mjpg.avi", fourcc="MJPG", frames=FRAMES, fps=FPS),
    }
