from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.media.probe import ProbeError, ProbeLimits, probe_video
from tests.media import videos
from tests.media.conftest import FPS, FRAMES

LIMITS = ProbeLimits(max_bytes=50_000_000, max_pixels=1920 * 1080, max_duration_s=60)
pytestmark = pytest.mark.timeout(60)  # garbage must never hang the prober


def probe_kind(path: Path, limits: ProbeLimits = LIMITS) -> str:
    with pytest.raises(ProbeError) as info:
        probe_video(path, limits)
    assert info.value.message and info.value.message[0].isupper()  # a sentence for a person
    return info.value.kind


@pytest.mark.parametrize(
    ("name", "codec", "audio"),
    [
        ("h264", "h264", None),
        ("h264_audio", "h264", "aac"),
        ("vp9", "vp9", "opus"),
        ("mpeg4", "mpeg4", None),
        ("cv_mp4v", "mpeg4", None),
        ("cv_mjpg", "mjpeg", None),
    ],
)
def test_probe_describes_valid_videos(
    clips: dict[str, Path], name: str, codec: str, audio: str | None
) -> None:
    path = clips[name]
    result = probe_video(path, LIMITS)
    cap = cv2.VideoCapture(str(path))  # an independent reader for the basic numbers
    assert (
        (result.width, result.height)
        == (
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        == (96, 64)
    )
    cap.release()
    assert result.video_codec == codec
    assert result.frame_count == result.declared_frame_count == FRAMES
    assert result.fps == pytest.approx(FPS)
    assert result.duration_s == pytest.approx(FRAMES / FPS, abs=0.02)
    assert not result.variable_frame_rate
    assert result.rotation == 0
    assert result.pix_fmt in ("yuv420p", "yuvj420p")
    assert result.has_audio is (audio is not None)
    assert result.audio_codec == audio
    if audio:
        assert (result.audio_sample_rate, result.audio_channels) == (48000, 1)
    assert result.size_bytes == path.stat().st_size
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert result.bit_rate and result.bit_rate > 0


def test_variable_frame_rate_is_detected_and_not_mistaken_for_truncation(tmp_path: Path) -> None:
    pts = [0, 1, 2, 3, 8, 9, 10, 11, 12, 20, 21, 22]
    for suffix in ("mp4", "mkv"):
        result = probe_video(videos.write_pyav_timed(tmp_path / f"vfr.{suffix}", pts), LIMITS)
        assert result.variable_frame_rate
        assert result.frame_count == len(pts)
        assert result.duration_s == pytest.approx(23 / FPS, abs=0.05)


def test_rotation_is_reported_with_display_dimensions(tmp_path: Path) -> None:
    result = probe_video(videos.write_rotated(tmp_path / "rot.mp4", 90), LIMITS)
    assert (result.rotation, result.width, result.height) == (90, 64, 96)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(ProbeError) as info:
        probe_video(tmp_path / "empty.mp4", LIMITS)
    assert (info.value.kind, info.value.message) == ("empty", "The file is empty (0 bytes).")


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    assert probe_kind(tmp_path / "nope.mp4") == "unreadable"


@pytest.mark.parametrize("name", ["notes.txt", "notes.mp4"])
def test_text_file_is_not_a_video(tmp_path: Path, name: str) -> None:
    # FFmpeg's "tty" demuxer would happily play a .txt file as ANSI art
    path = tmp_path / name
    path.write_text("Scene 1: the fox runs. ünïcode too.\n" * 40, encoding="utf-8")
    with pytest.raises(ProbeError) as info:
        probe_video(path, LIMITS)
    assert info.value.kind == "not_a_video"
    assert "plain text" in info.value.message


def test_image_is_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "frame.png"
    cv2.imwrite(str(path), videos.scene(0))
    assert probe_kind(path) == "not_a_video"


@pytest.mark.parametrize("seed", range(6))
def test_random_bytes_are_rejected(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "random.mp4"
    path.write_bytes(np.random.default_rng(seed).bytes(30_000))
    assert probe_kind(path) in ("not_a_video", "no_video_stream", "unsupported_format")


def test_damaged_bytes_never_escape_as_other_exceptions(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    rng = np.random.default_rng(7)
    for name in ("h264", "vp9", "cv_mjpg"):
        data = bytearray(clips[name].read_bytes())
        for trial in range(4):
            damaged = bytearray(data)
            for pos in rng.integers(len(data) // 4, len(data), size=20):
                damaged[pos] = int(rng.integers(0, 256))
            path = tmp_path / f"damaged{trial}{clips[name].suffix}"
            path.write_bytes(bytes(damaged))
            try:
                result = probe_video(path, LIMITS)
            except ProbeError as exc:
                assert exc.kind not in ("unreadable", "empty", "too_large", "too_long"), exc
            else:
                assert result.frame_count > 0


def test_mp4_cut_before_its_index(clips: dict[str, Path], tmp_path: Path) -> None:
    data = clips["h264"].read_bytes()  # default muxing: moov at the end
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    assert probe_kind(path) == "truncated"


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
def test_faststart_mp4_cut_reports_how_much_is_missing(tmp_path: Path, fraction: float) -> None:
    full = videos.write_pyav(
        tmp_path / "fs.mp4",
        frames=90,
        width=160,
        height=96,
        container_options={"movflags": "+faststart"},
    )
    data = full.read_bytes()
    path = tmp_path / "fs_cut.mp4"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ProbeError) as info:
        probe_video(path, LIMITS)
    assert info.value.kind == "truncated"
    decoded = int(info.value.message.split("only ")[1].split(" of")[0])
    assert decoded < 90 * fraction + 5  # frames are about equal in size here
    assert "of 90 frames" in info.value.message


@pytest.mark.parametrize("name", ["vp9", "cv_mjpg"])
def test_webm_and_avi_cut_in_half_are_truncated(
    clips: dict[str, Path], tmp_path: Path, name: str
) -> None:
    data = clips[name].read_bytes()
    path = tmp_path / f"half{clips[name].suffix}"
    path.write_bytes(data[: len(data) // 2])
    assert probe_kind(path) == "truncated"


def test_audio_only_file(tmp_path: Path) -> None:
    path = videos.write_audio_only(tmp_path / "voice.m4a")
    with pytest.raises(ProbeError) as info:
        probe_video(path, LIMITS)
    assert info.value.kind == "no_video_stream"
    assert info.value.message == "The file has an audio stream but no video stream."


def test_one_frame_video_has_too_few_frames(tmp_path: Path) -> None:
    path = videos.write_pyav(tmp_path / "one.mp4", frames=1)
    assert probe_kind(path) == "too_few_frames"
    assert probe_video(path, ProbeLimits(10**9, 10**7, 60, min_frames=1)).frame_count == 1


def test_file_over_the_byte_limit(clips: dict[str, Path]) -> None:
    limits = ProbeLimits(max_bytes=1000, max_pixels=10**7, max_duration_s=60)
    assert probe_kind(clips["h264"], limits) == "too_large"


def test_resolution_over_the_pixel_limit(clips: dict[str, Path]) -> None:
    limits = ProbeLimits(max_bytes=10**9, max_pixels=96 * 64 - 1, max_duration_s=60)
    with pytest.raises(ProbeError) as info:
        probe_video(clips["h264"], limits)
    assert info.value.kind == "too_large" and "96x64" in info.value.message


def test_duration_over_the_limit(clips: dict[str, Path]) -> None:
    limits = ProbeLimits(max_bytes=10**9, max_pixels=10**7, max_duration_s=1.0)
    assert probe_kind(clips["vp9"], limits) == "too_long"


@pytest.mark.parametrize("side", [60000, 16000])
def test_absurd_declared_resolution_is_refused_without_allocating(
    tmp_path: Path, side: int
) -> None:
    path = tmp_path / "huge.y4m"
    path.write_bytes(
        f"YUV4MPEG2 W{side} H{side} F25:1 Ip A1:1 C420jpeg\nFRAME\n".encode() + b"\x80" * 4096
    )
    script = textwrap.dedent(f"""
        from app.media.probe import ProbeError, ProbeLimits, probe_video
        try:
            probe_video({str(path)!r}, ProbeLimits(10**9, 1920 * 1080, 60))
        except ProbeError as exc:
            print(exc.kind)
        # VmHWM is this process's own peak: ru_maxrss would keep the forking parent's size.
        status = open("/proc/self/status").read()
        print(int(status.split("VmHWM:")[1].split()[0]) // 1024)
    """)
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
        timeout=60,
    ).stdout.split()
    assert out[0] == "too_large"
    assert int(out[1]) < 400  # MB; one 16000x16000 frame alone would be 384 MB
