"""The one video/audio decoder every pipeline step shares (PyAV).

Frame numbering is the decoder's output order (display order): frame N is the
N-th picture :func:`iter_frames` yields, which is also what
``cv2.VideoCapture`` returns after ``CAP_PROP_POS_FRAMES = N`` for constant
frame rate files. Frames come out the way a player shows them: rotated by the
container's display matrix (multiples of 90 degrees), RGB uint8, HxWx3.
Decoding errors (``av.FFmpegError``) propagate; :mod:`app.media.probe` is
where a file is validated before the pipeline decodes it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import islice, pairwise
from pathlib import Path
from typing import cast

import av
import cv2
import numpy as np
import numpy.typing as npt

StrPath = str | Path
Image = npt.NDArray[np.uint8]
"""A picture: height x width x 3 (RGB, or BGR where OpenCV draws) or height x width grey.
OpenCV's stubs type every result as ``MatLike``: the modules cast what it returns to this."""
Pcm = npt.NDArray[np.int16]
"""Audio samples as int16 PCM: 1-D mono, or (samples, channels)."""


def rotation_of(frame: av.VideoFrame) -> int:
    """Display rotation of a decoded frame, counter-clockwise, snapped to 0/90/180/270."""
    return round(frame.rotation / 90.0) % 4 * 90


def _to_rgb(frame: av.VideoFrame, max_width: int | None) -> Image:
    rgb = cast(Image, frame.to_ndarray(format="rgb24"))
    quarter_turns = rotation_of(frame) // 90
    if quarter_turns:
        rgb = np.ascontiguousarray(np.rot90(rgb, quarter_turns))
    height, width = rgb.shape[:2]
    if max_width is not None and width > max_width:
        new_height = max(1, round(height * max_width / width))
        rgb = cast(Image, cv2.resize(rgb, (max_width, new_height), interpolation=cv2.INTER_AREA))
    return rgb


def _open_video(path: StrPath) -> tuple[av.container.InputContainer, av.VideoStream]:
    container = av.open(str(path))
    if not container.streams.video:
        container.close()
        raise ValueError(f"{path} has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


@dataclass(frozen=True)
class VideoTiming:
    """Timestamps of the frames and the constant rate a re-encode should play them at."""

    pts: list[int]  # sorted presentation timestamps of frame-carrying packets
    time_base: Fraction
    fps: Fraction
    variable: bool  # frame durations differ by more than timestamp rounding


def timing_from_pts(
    pts: Sequence[int], time_base: Fraction | None, average_rate: Fraction | None
) -> VideoTiming:
    """Detect variable frame rate from pts deltas; its fps keeps the total duration.

    Rounding jitter of 1 tick or 1 ms (WebM stores milliseconds) is not variable.
    """
    ordered = sorted(pts)
    tb = time_base or Fraction(1, 1000)
    deltas = [b - a for a, b in pairwise(ordered)]
    variable = False
    fps = average_rate or Fraction(0)
    if deltas:
        median = sorted(deltas)[len(deltas) // 2]
        tolerance = max(1, math.ceil(Fraction(1, 1000) / tb))
        variable = any(abs(d - median) > tolerance for d in deltas)
        span = (ordered[-1] - ordered[0] + median) * tb
        if (variable or not fps) and span > 0:
            fps = (len(ordered) / span).limit_denominator(1001)
    return VideoTiming(list(ordered), tb, fps, variable)


def _timing(container: av.container.InputContainer, stream: av.VideoStream) -> VideoTiming:
    pts = [
        packet.pts
        for packet in container.demux(stream)
        if packet.size and packet.pts is not None and not packet.is_discard
    ]
    return timing_from_pts(pts, stream.time_base, stream.average_rate)


def video_timing(path: StrPath) -> VideoTiming:
    """Demux (without decoding) the first video stream's timestamps."""
    container, stream = _open_video(path)
    with container:
        return _timing(container, stream)


def iter_frames(path: StrPath, *, max_width: int | None = None) -> Iterator[Image]:
    """Yield every frame once, in display order, as RGB uint8 (downscaled to `max_width`)."""
    container, stream = _open_video(path)
    with container:
        for frame in container.decode(stream):
            yield _to_rgb(frame, max_width)


def read_frame(path: StrPath, n: int, *, max_width: int | None = None) -> Image:
    """Frame `n` exactly as :func:`iter_frames` numbers it, by seeking (for spot checks).

    Frame n has the n-th smallest packet pts, so we demux (no decoding) to find
    that pts, seek to the keyframe before it and decode forward to it. Streams
    without timestamps or without a seek index fall back to decoding from the
    start. Raises IndexError when the video has no frame `n`.
    """
    if n < 0:
        raise IndexError(f"frame {n} out of range")
    container, stream = _open_video(path)
    with container:
        pts = _timing(container, stream).pts
        if pts and n >= len(pts):
            raise IndexError(f"frame {n} out of range (video has {len(pts)} frames)")
        if pts:
            target = pts[n]
            try:
                container.seek(target, stream=stream, backward=True)
                for frame in container.decode(stream):
                    if frame.pts == target:
                        return _to_rgb(frame, max_width)
                    if frame.pts is not None and frame.pts > target:
                        break
            except av.FFmpegError:
                pass
    found = next(islice(iter_frames(path, max_width=max_width), n, None), None)
    if found is None:
        raise IndexError(f"frame {n} out of range")
    return found


def iter_audio(path: StrPath, sample_rate: int = 16000, mono: bool = True) -> Iterator[Pcm]:
    """Yield the first audio stream as int16 PCM chunks resampled to `sample_rate`.

    Mono chunks are 1-D; otherwise (samples, channels) with the source layout.
    A file without audio yields nothing.
    """
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(
            format="s16", layout="mono" if mono else None, rate=sample_rate
        )
        for frame in container.decode(stream):
            yield from _pcm(resampler.resample(frame), mono)
        yield from _pcm(resampler.resample(None), mono)


def _pcm(frames: list[av.AudioFrame], mono: bool) -> Iterator[Pcm]:
    for frame in frames:
        samples = cast(Pcm, frame.to_ndarray())  # packed s16: shape (1, samples * channels)
        yield samples.reshape(-1) if mono else samples.reshape(-1, frame.layout.nb_channels)


def read_audio(path: StrPath, sample_rate: int = 16000, mono: bool = True) -> Pcm:
    """The whole first audio stream as int16 PCM (empty when the file has no audio)."""
    chunks = list(iter_audio(path, sample_rate, mono))
    if chunks:
        return np.concatenate(chunks)
    return np.zeros(0 if mono else (0, 2), np.int16)
