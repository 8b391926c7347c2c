"""Tiny synthetic test videos whose frames carry their own index.

Each frame is a flat "cartoon" scene (sky, ground, a moving ball) with the
frame index written as 8 black/white bits in big blocks along the top row, so
any decoder output can be mapped back to the frame it came from even after
lossy compression (see :func:`frame_index`).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

BITS = 8
BLOCK = 8  # block edge in pixels; frames must be at least BITS * BLOCK wide


def scene(index: int, width: int = 96, height: int = 64) -> np.ndarray:
    """RGB frame number `index`: flat colours, a moving ball, index bits on top."""
    img = np.empty((height, width, 3), np.uint8)
    img[:] = (110, 170, 235)  # sky
    img[height * 2 // 3 :] = (70, 150, 60)  # ground
    cx = BLOCK + (index * 5) % max(1, width - 2 * BLOCK)
    cv2.circle(img, (cx, height // 2 + 4), height // 6, (230, 60, 50), -1, cv2.LINE_AA)
    for bit in range(BITS):
        on = (index >> bit) & 1
        img[0:BLOCK, bit * BLOCK : (bit + 1) * BLOCK] = 255 if on else 0
    return img


def frame_index(rgb: np.ndarray) -> int:
    """Read back the index drawn by :func:`scene` (robust to lossy codecs)."""
    value = 0
    for bit in range(BITS):
        block = rgb[1 : BLOCK - 1, bit * BLOCK + 1 : (bit + 1) * BLOCK - 1]
        if block.mean() > 127:
            value |= 1 << bit
    return value


def write_pyav(
    path: Path,
    *,
    codec: str = "libx264",
    frames: int = 30,
    width: int = 96,
    height: int = 64,
    fps: int = 25,
    audio_seconds: float | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Encode `frames` numbered frames with PyAV (optionally plus a sine tone)."""
    with av.open(str(path), "w", options=container_options or {}) as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height = width, height
        vs.pix_fmt = "yuv420p"
        vs.options = options or {}
        astream = None
        if audio_seconds is not None:
            acodec = "libopus" if path.suffix == ".webm" else "aac"
            astream = out.add_stream(acodec, rate=48000)
            astream.layout = "mono"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(scene(i, width, height), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        if astream is not None and audio_seconds is not None:
            _write_tone(out, astream, audio_seconds)
    return path


def _write_tone(out: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    rate = 48000
    t = np.arange(int(rate * seconds)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    for start in range(0, samples.size, 960):
        chunk = samples[start : start + 960].reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def write_opencv(
    path: Path,
    *,
    fourcc: str = "mp4v",
    frames: int = 30,
    width: int = 96,
    height: int = 64,
    fps: float = 25.0,
) -> Path:
    """Encode numbered frames with OpenCV's VideoWriter (mp4v in .mp4, MJPG in .avi)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} to {path}"
    for i in range(frames):
        writer.write(cv2.cvtColor(scene(i, width, height), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_pyav_timed(path: Path, pts: list[int], *, fps: int = 25, codec: str = "libx264") -> Path:
    """Numbered frames at arbitrary timestamps (in 1/fps units): variable frame rate."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = 96, 64, "yuv420p"
        vs.codec_context.time_base = Fraction(1, fps)
        for i, t in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(scene(i), format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, fps)
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
    return path


def write_rotated(path: Path, degrees: int, frames: int = 10) -> Path:
    """An H.264 MP4 whose display matrix asks players to rotate it."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 96, 64, "yuv420p"
        vs.set_display_rotation(degrees)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(scene(i), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
    return path


def write_audio_only(path: Path, seconds: float = 1.0) -> Path:
    """An AAC-in-MP4 file with no video stream."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=48000)
        stream.layout = "mono"
        _write_tone(out, stream, seconds)
    return path
