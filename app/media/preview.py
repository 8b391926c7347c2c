"""Browser-playable preview, thumbnail and filmstrip of a clip.

The preview is re-encoded frame by frame from :func:`app.media.decode.iter_frames`
at a constant frame rate, so preview frame i is source frame i and is shown
from ``i / fps`` to ``(i + 1) / fps``: the player's ``currentTime`` maps to a
frame index with ``floor(currentTime * fps + 1e-6)``. The app should use the
default H.264/AAC MP4 (Debian's Chromium plays it; see docs/media-layout.md);
``codec="vp9"`` writes VP9/Opus WebM for browsers without H.264.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal, cast

import av
import cv2
import numpy as np

from app.media.decode import Image, Pcm, iter_audio, iter_frames, video_timing
from app.media.encode import H264_OPTIONS, add_video_stream, encode_rgb
from app.media.framecache import FrameCache, encode_jpeg

PreviewCodec = Literal["h264", "vp9"]

# (container format, video encoder, encoder options, audio encoder)
_ENCODERS: dict[str, tuple[str, str, dict[str, str], str]] = {
    "h264": (
        "mp4",
        "libx264",
        H264_OPTIONS,
        "aac",
    ),
    "vp9": (
        "webm",
        "libvpx-vp9",
        {"deadline": "realtime", "cpu-used": "8", "row-mt": "1", "crf": "32", "b": "0"},
        "libopus",
    ),
}
_AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_AUDIO_CHUNK_S = 0.1


@dataclass(frozen=True)
class PreviewInfo:
    path: Path
    codec: PreviewCodec
    mime: str  # full type with codecs, for <source type> and canPlayType
    width: int
    height: int
    fps: float
    frame_count: int
    has_audio: bool
    size_bytes: int


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    width: int
    height: int


@dataclass(frozen=True)
class FilmstripInfo:
    path: Path
    indices: list[int]  # source frame index of each tile, left to right
    tile_width: int
    tile_height: int
    width: int
    height: int


@contextlib.contextmanager
def _atomic_path(out_path: Path) -> Iterator[Path]:
    """A temp path beside `out_path`, renamed over it only if the block succeeds."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)


def _even_size(width: int, height: int, max_height: int) -> tuple[int, int]:
    target_h = min(height, max_height)
    target_w = width * target_h / height
    return max(2, round(target_w / 2) * 2), max(2, round(target_h / 2) * 2)


def _codecs_string(path: Path, codec: PreviewCodec, has_audio: bool) -> str:
    """RFC 6381 type of the written file, e.g. video/mp4; codecs="avc1.64000d, mp4a.40.2"."""
    if codec == "vp9":
        return f'video/webm; codecs="vp9{", opus" if has_audio else ""}"'
    with av.open(str(path)) as container:
        avcc = container.streams.video[0].codec_context.extradata or b""
    # avcC box: version, profile_idc, constraint flags, level_idc
    video = f"avc1.{avcc[1:4].hex()}" if len(avcc) >= 4 and avcc[0] == 1 else "avc1.640028"
    return f'video/mp4; codecs="{video}{", mp4a.40.2" if has_audio else ""}"'


def _audio_frames(source: Path, rate: int, layout: str) -> Iterator[tuple[av.AudioFrame, float]]:
    """Source audio as frames at `rate`, with each frame's start time in seconds."""
    mono = layout == "mono"
    pending = np.zeros((0, 1 if mono else 2), np.int16)
    sent = 0
    step = int(rate * _AUDIO_CHUNK_S)
    chunks = iter_audio(source, rate, mono)
    while True:
        chunk = next(chunks, None)
        if chunk is not None:
            chunk = chunk.reshape(-1, 1) if mono else _stereo(chunk)
            pending = np.concatenate([pending, chunk])
        while len(pending) >= step or (chunk is None and len(pending)):
            block, pending = pending[:step], pending[step:]
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(block).reshape(1, -1), format="s16", layout=layout
            )
            frame.sample_rate = rate
            frame.pts = sent
            frame.time_base = Fraction(1, rate)
            yield frame, sent / rate
            sent += len(block)
        if chunk is None:
            return


def _stereo(chunk: Pcm) -> Pcm:
    if chunk.shape[1] == 2:
        return chunk
    if chunk.shape[1] == 1:
        return np.repeat(chunk, 2, axis=1)
    return chunk[:, :2]  # more than two channels: keep front left/right


def make_preview(
    video_path: str | Path,
    out_path: str | Path,
    *,
    max_height: int = 720,
    codec: PreviewCodec = "h264",
) -> PreviewInfo:
    """Re-encode to a constant-rate, browser-playable file with the source's frames and audio."""
    source, out_path = Path(video_path), Path(out_path)
    container_format, video_encoder, options, audio_encoder = _ENCODERS[codec]
    fps = video_timing(source).fps
    if not fps:
        raise ValueError(f"{source}: cannot determine a frame rate")
    with av.open(str(source)) as probe:
        source_audio = probe.streams.audio[0].codec_context if probe.streams.audio else None
        audio_rate = source_audio.sample_rate if source_audio else 0
        audio_channels = source_audio.layout.nb_channels if source_audio else 0
    frame_count, size = 0, (0, 0)
    with _atomic_path(out_path) as tmp:
        container_options = {"movflags": "+faststart"} if container_format == "mp4" else {}
        with av.open(str(tmp), "w", format=container_format, options=container_options) as out:
            audio: Iterator[tuple[av.AudioFrame, float]] = iter(())
            if source_audio is not None:
                rate = 48000 if codec == "vp9" or audio_rate not in _AAC_RATES else audio_rate
                layout = "mono" if audio_channels == 1 else "stereo"
                audio_stream = cast(av.AudioStream, out.add_stream(audio_encoder, rate=rate))
                audio_stream.layout = layout
                audio = _audio_frames(source, rate, layout)
            pending = next(audio, None)

            def write_audio(until_s: float) -> None:
                nonlocal pending
                while pending is not None and pending[1] < until_s:
                    out.mux(audio_stream.encode(pending[0]))
                    pending = next(audio, None)

            video_stream = None
            for rgb in iter_frames(source):
                if video_stream is None:
                    size = _even_size(rgb.shape[1], rgb.shape[0], max_height)
                    video_stream = add_video_stream(out, video_encoder, options, fps, size)
                write_audio(float(frame_count / fps))  # interleave by time
                frame = encode_rgb(rgb, size)
                frame.pts = frame_count
                frame.time_base = 1 / fps
                out.mux(video_stream.encode(frame))
                frame_count += 1
            if video_stream is None:
                raise ValueError(f"{source} has no decodable frames")
            out.mux(video_stream.encode(None))
            if source_audio is not None:
                write_audio(float("inf"))
                out.mux(audio_stream.encode(None))
        mime = _codecs_string(tmp, codec, source_audio is not None)
    return PreviewInfo(
        path=out_path,
        codec=codec,
        mime=mime,
        width=size[0],
        height=size[1],
        fps=float(fps),
        frame_count=frame_count,
        has_audio=source_audio is not None,
        size_bytes=out_path.stat().st_size,
    )


def _write_jpeg(rgb: Image, out_path: Path, quality: int = 85) -> None:
    with _atomic_path(out_path) as tmp:
        tmp.write_bytes(encode_jpeg(rgb, quality))


def _resize_to_height(rgb: Image, height: int) -> Image:
    width = max(1, round(rgb.shape[1] * height / rgb.shape[0]))
    return cast(Image, cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA))


def make_thumbnail(rgb: Image, out_path: str | Path, width: int = 320) -> ImageInfo:
    """JPEG of one frame scaled to `width` (never enlarged)."""
    out_path = Path(out_path)
    if rgb.shape[1] > width:
        rgb = _resize_to_height(rgb, max(1, round(rgb.shape[0] * width / rgb.shape[1])))
    _write_jpeg(rgb, out_path)
    return ImageInfo(out_path, rgb.shape[1], rgb.shape[0])


def filmstrip_indices(count: int, n: int) -> list[int]:
    """`n` evenly spaced frames: the middle frame of each of n equal segments."""
    if count <= n:
        return list(range(count))
    return [int((i + 0.5) * count / n) for i in range(n)]


def make_filmstrip(
    frames: FrameCache | Sequence[Image], out_path: str | Path, n: int = 10, height: int = 72
) -> FilmstripInfo:
    """One JPEG strip of up to `n` evenly spaced frames, each `height` pixels tall."""
    out_path = Path(out_path)
    count = len(frames)
    if count == 0:
        raise ValueError("no frames for a filmstrip")
    indices = filmstrip_indices(count, n)
    tiles = [
        _resize_to_height(frames.image(i) if isinstance(frames, FrameCache) else frames[i], height)
        for i in indices
    ]
    strip = np.concatenate(tiles, axis=1)
    _write_jpeg(strip, out_path)
    return FilmstripInfo(
        path=out_path,
        indices=indices,
        tile_width=tiles[0].shape[1],
        tile_height=height,
        width=strip.shape[1],
        height=height,
    )
