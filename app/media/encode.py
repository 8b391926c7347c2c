"""Writing RGB frames as an H.264 MP4 that browsers and training loaders read alike.

One concept: a constant-rate, yuv420p, even-sized H.264 stream (libx264 through PyAV), frame
i shown from ``i / fps``. The browser preview (:mod:`app.media.preview`) and the export's
training packages both encode through :func:`add_video_stream`; :class:`Mp4Writer` is the
video-only file the packages write one frame at a time.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import cast

import av

from app.media.decode import Image

H264_OPTIONS = {"preset": "veryfast", "crf": "20", "tune": "animation"}


def add_video_stream(
    out: av.container.OutputContainer,
    encoder: str,
    options: dict[str, str],
    fps: Fraction,
    size: tuple[int, int],
) -> av.VideoStream:
    """A yuv420p video stream tagged BT.709 limited range, a keyframe every second."""
    stream = cast(av.VideoStream, out.add_stream(encoder, rate=fps, options=options))
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    cc = stream.codec_context
    cc.gop_size = max(1, round(fps))  # a keyframe every second keeps seeking snappy
    # tag BT.709 limited range, matching the RGB->YUV conversion of encode_rgb
    cc.colorspace = cc.color_primaries = cc.color_trc = 1
    cc.color_range = 1
    return stream


def even_size(width: int, height: int) -> tuple[int, int]:
    """The size rounded down to even numbers (yuv420p halves both), at least 2 x 2."""
    return max(2, width // 2 * 2), max(2, height // 2 * 2)


def as_fps(fps: float) -> Fraction:
    """A stored float rate (29.97...) as the fraction an encoder wants (30000/1001)."""
    return Fraction(fps).limit_denominator(1001)


class Mp4Writer:
    """A video-only H.264 MP4 written one RGB frame at a time at a constant ``fps``.

    Frames of another size are scaled to ``size`` (which must be even); ``frames`` counts
    what was written. Use as a context manager: leaving it flushes the encoder and closes
    the file."""

    def __init__(self, path: Path, size: tuple[int, int], fps: Fraction) -> None:
        if size[0] % 2 or size[1] % 2:
            raise ValueError(f"yuv420p needs an even size, got {size}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.size = size
        self.fps = fps
        self.frames = 0
        self.out = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
        self.stream = add_video_stream(self.out, "libx264", H264_OPTIONS, fps, size)

    def write(self, rgb: Image) -> None:
        frame = encode_rgb(rgb, self.size)
        frame.pts = self.frames
        frame.time_base = 1 / self.fps
        self.out.mux(self.stream.encode(frame))
        self.frames += 1

    def close(self) -> None:
        self.out.mux(self.stream.encode(None))
        self.out.close()

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def encode_rgb(rgb: Image, size: tuple[int, int]) -> av.VideoFrame:
    """An RGB picture as a BT.709 yuv420p frame of ``size`` (area-scaled when it differs)."""
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        *size, "yuv420p", dst_colorspace="ITU709", interpolation="AREA"
    )
