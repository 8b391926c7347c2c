"""Probe and validate an uploaded video before anything else touches it.

:func:`probe_video` either returns a :class:`ProbeResult` or raises
:class:`ProbeError` with a short machine ``kind`` and a sentence a person can
act on. It never lets a library exception escape, and it checks every limit it
can from the header (file size, declared resolution, declared duration) before
decoding, so a hostile header cannot make it allocate huge frames.

Frame count rule: ``frame_count`` is the number of frames the decoder actually
yields, i.e. exactly what :func:`app.media.decode.iter_frames` and the frame
cache will contain; probing decodes the whole video once to find it (and to
find damage). ``declared_frame_count`` is what the file promises: the
container's own count when it has one (MP4 sample table, AVI header), else the
video stream's duration times its average frame rate (Matroska/WebM), else the
container's duration times the frame rate. The video is reported as truncated
when the decoder yields fewer frames than promised beyond a tolerance of one
frame for the first two sources and max(2 frames, 10 %) for the container
duration (which may include a longer audio track).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
import struct
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Literal

import av

from app.media.decode import VideoTiming, rotation_of, timing_from_pts

ProbeErrorKind = Literal[
    "unreadable",
    "empty",
    "not_a_video",
    "unsupported_format",
    "unsupported_codec",
    "no_video_stream",
    "truncated",
    "corrupt",
    "too_few_frames",
    "too_large",
    "too_long",
]

# FFmpeg demuxer names accepted as video containers (a demuxer reports a
# comma-separated list such as "mov,mp4,m4a,3gp,3g2,mj2").
SUPPORTED_CONTAINERS = frozenset(
    {
        "mov",
        "mp4",
        "matroska",
        "webm",
        "avi",
        "mpegts",
        "mpeg",
        "flv",
        "ogg",
        "gif",
        "asf",
        "mxf",
        "yuv4mpegpipe",
    }
)
_MAGIC_DESCRIPTIONS = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
)
_Y4M_HEADER = re.compile(rb"YUV4MPEG2 [^\n]*?\bW(\d+) H(\d+)")
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class ProbeLimits:
    """What the platform accepts; checked from the header before decoding where possible."""

    max_bytes: int
    max_pixels: int
    max_duration_s: float
    min_frames: int = 2


@dataclass(frozen=True)
class ProbeResult:
    """Facts about a readable video. width/height are as displayed (after rotation)."""

    container_format: str
    video_codec: str
    width: int
    height: int
    fps: float
    frame_count: int
    declared_frame_count: int | None
    duration_s: float
    bit_rate: int | None
    has_audio: bool
    audio_codec: str | None
    audio_sample_rate: int | None
    audio_channels: int | None
    variable_frame_rate: bool
    pix_fmt: str
    rotation: int
    size_bytes: int
    sha256: str


class ProbeError(Exception):
    """A file the platform cannot use; `message` is meant for the person who uploaded it."""

    def __init__(self, kind: ProbeErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: ProbeErrorKind = kind
        self.message = message

    def __repr__(self) -> str:
        return f"ProbeError({self.kind!r}, {self.message!r})"


def _size_text(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the end of the sample is still text
        if exc.start < len(head) - 3:
            return False
        text = head[: exc.start].decode("utf-8")
    printable = sum(ch.isprintable() or ch in "\r\n\t\f" for ch in text)
    return printable >= 0.95 * max(1, len(text))


def _mp4_is_cut(path: Path, size: int) -> bool | None:
    """Walk top-level ISO-BMFF boxes: True if one runs past the end or moov is missing.

    None when the file is not an MP4/MOV at all.
    """
    seen: set[bytes] = set()
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8 or head[4:8] not in (b"ftyp", b"moov", b"mdat", b"wide", b"free"):
            return None
        pos = 0
        while pos + 8 <= size:
            fh.seek(pos)
            box_size, box_type = struct.unpack(">I4s", fh.read(8))
            if box_size == 1:
                box_size = struct.unpack(">Q", fh.read(8))[0]
            elif box_size == 0:
                box_size = size - pos
            if box_size < 8:
                return True
            seen.add(box_type)
            pos += box_size
        return pos != size or b"moov" not in seen


def _check_header_pixels(width: int, height: int, limits: ProbeLimits) -> None:
    if width * height > limits.max_pixels:
        raise ProbeError(
            "too_large",
            f"The video is {width}x{height} pixels ({width * height:,} per frame); "
            f"the limit is {limits.max_pixels:,} pixels per frame.",
        )


def _sniff(path: Path, size: int, limits: ProbeLimits) -> None:
    """Reject obvious non-videos from their first bytes, before FFmpeg guesses a demuxer."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    match = _Y4M_HEADER.match(head)
    if match:
        _check_header_pixels(int(match.group(1)), int(match.group(2)), limits)
        return
    for magic, description in _MAGIC_DESCRIPTIONS:
        if head.startswith(magic):
            raise ProbeError(
                "not_a_video", f"This file is not a video: it looks like {description}."
            )
    if _looks_like_text(head):
        raise ProbeError(
            "not_a_video",
            "This file is not a video container that can be read (looks like plain text).",
        )


def _open(path: Path, size: int) -> av.container.InputContainer:
    try:
        return av.open(str(path), metadata_errors="replace")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        if _mp4_is_cut(path, size):
            raise ProbeError(
                "truncated",
                "The MP4 file is incomplete (its index is missing or cut off) "
                "— the upload may have been interrupted.",
            ) from exc
        raise ProbeError(
            "not_a_video",
            "This file is not a video container that can be read (unknown format or damaged data).",
        ) from exc


def _check_container(container: av.container.InputContainer) -> av.VideoStream:
    format_names = set(container.format.name.split(","))
    if not container.streams.video:
        if container.streams.audio:
            raise ProbeError("no_video_stream", "The file has an audio stream but no video stream.")
        raise ProbeError("not_a_video", "This file contains no video or audio that can be read.")
    if any(name.endswith("_pipe") or name == "image2" for name in format_names):
        raise ProbeError("not_a_video", "This file is a single image, not a video.")
    if not format_names & SUPPORTED_CONTAINERS:
        raise ProbeError(
            "unsupported_format",
            f"The container format '{container.format.long_name}' is not supported; "
            "upload MP4, MOV, WebM, MKV or AVI.",
        )
    stream = container.streams.video[0]
    if stream.codec_context is None or not stream.codec_context.is_decoder:
        raise ProbeError(
            "unsupported_codec",
            f"The video codec ({stream.codec_context.name if stream.codec_context else 'unknown'}) "
            "cannot be decoded here; re-encode the clip as H.264 or VP9.",
        )
    return stream


def _declared_duration(
    container: av.container.InputContainer, stream: av.VideoStream
) -> tuple[float | None, bool]:
    """Video duration the file promises, and whether it is the video stream's own."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base), True
    tag = stream.metadata.get("DURATION", "")  # Matroska per-track statistics tag
    match = re.fullmatch(r"(\d+):(\d\d):(\d\d(?:\.\d+)?)", tag)
    if match:
        h, m, sec = match.groups()
        return int(h) * 3600 + int(m) * 60 + float(sec), True
    if container.duration:
        return container.duration / av.time_base, False
    return None, False


Damage = Literal["truncated", "corrupt"]


@dataclass
class _DecodeStats:
    frames: int = 0
    pts: list[int] = field(default_factory=list)  # of the packets that make frames
    discarded: int = 0  # packets an MP4 edit list hides (counted in the sample table)
    damage: Damage | None = None
    error: str = ""
    pix_fmt: str | None = None
    rotation: int = 0
    coded_size: tuple[int, int] = (0, 0)

    def fail(self, damage: Damage, error: str) -> None:
        self.damage, self.error = damage, error

    def add(self, frames: list[av.VideoFrame]) -> None:
        for frame in frames:
            if frame.is_corrupt:
                self.fail("corrupt", f"frame {self.frames} is damaged")
                return
            if self.frames == 0:
                self.pix_fmt = frame.format.name
                self.rotation = rotation_of(frame)
                self.coded_size = (frame.width, frame.height)
            self.frames += 1


def _reason(exc: av.FFmpegError) -> str:
    return str(getattr(exc, "strerror", None) or exc)


def _decode_all(
    stream: av.VideoStream,
    container: av.container.InputContainer,
    limits: ProbeLimits,
    max_frames: int,
) -> _DecodeStats:
    """Decode every video packet (no pixel conversion), stopping at the first damage.

    A packet cut short by the end of the file means truncation; anything the
    demuxer or decoder rejects before that means corrupt data.
    """
    stats = _DecodeStats()
    stream.thread_type = "AUTO"
    # refuse frames larger than the limit inside FFmpeg, before it allocates them
    stream.codec_context.options = {"max_pixels": str(limits.max_pixels)}
    packets = container.demux(stream)
    while stats.damage is None and stats.frames <= max_frames:
        try:
            packet = next(packets, None)
        except av.FFmpegError as exc:
            stats.fail("corrupt", f"unreadable container data: {_reason(exc)}")
            break
        if packet is None:
            break
        if packet.is_discard:
            stats.discarded += 1
        elif packet.size and packet.pts is not None:
            stats.pts.append(packet.pts)
        if packet.is_corrupt:
            stats.fail("truncated", "the file ends in the middle of a frame")
            break
        try:
            stats.add(packet.decode())
        except av.ArgumentError as exc:
            if stats.frames == 0:  # avcodec_open2 refused: coded size above max_pixels
                raise ProbeError(
                    "too_large",
                    f"The video's frames are larger than the limit of "
                    f"{limits.max_pixels:,} pixels.",
                ) from exc
            stats.fail("corrupt", _reason(exc))
        except av.FFmpegError as exc:
            stats.fail("corrupt", _reason(exc))
    if stats.damage == "truncated":
        # frames already inside the decoder were decodable: count them too
        with contextlib.suppress(av.FFmpegError):
            stats.add(stream.codec_context.decode(None))
    return stats


def _expected_frames(
    stream: av.VideoStream,
    stats: _DecodeStats,
    timing: VideoTiming,
    declared_s: float | None,
    own_duration: bool,
) -> tuple[int | None, bool]:
    """Frames the file promises, and whether the decoded video falls short (module doc)."""
    if stream.frames > 0:
        expected = stream.frames - stats.discarded
        return expected, stats.frames < expected - 1
    if declared_s is None or not timing.fps or not timing.pts:
        return None, False
    # compare time covered rather than counts so variable-rate files are judged fairly
    pts, fps = timing.pts, float(timing.fps)
    deltas = [b - a for a, b in pairwise(pts)]
    frame_s = float(sorted(deltas)[len(deltas) // 2] * timing.time_base) if deltas else 1 / fps
    covered_s = float((pts[-1] - pts[0]) * timing.time_base) + frame_s
    slack_s = 1.01 * frame_s if own_duration else max(2 * frame_s, 0.1 * declared_s)
    return round(declared_s * fps), covered_s < declared_s - slack_s


def probe_video(path: str | Path, limits: ProbeLimits) -> ProbeResult:
    """Describe a video file or raise ProbeError (kind + human message); never anything else."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size == 0:
            raise ProbeError("empty", "The file is empty (0 bytes).")
        if size > limits.max_bytes:
            raise ProbeError(
                "too_large",
                f"The file is {_size_text(size)}; the limit is {_size_text(limits.max_bytes)}.",
            )
        _sniff(path, size, limits)
        sha256 = _sha256(path)
        with _open(path, size) as container:
            return _probe_open(container, path, size, sha256, limits)
    except ProbeError:
        raise
    except OSError as exc:
        raise ProbeError("unreadable", f"The file could not be read ({exc.strerror}).") from exc
    except Exception as exc:  # last line of defence: a bad upload must never crash a worker
        raise ProbeError(
            "corrupt", f"The video could not be read: {type(exc).__name__}: {exc}"
        ) from exc


def _probe_open(
    container: av.container.InputContainer, path: Path, size: int, sha256: str, limits: ProbeLimits
) -> ProbeResult:
    stream = _check_container(container)
    cc = stream.codec_context
    _check_header_pixels(cc.width, cc.height, limits)
    declared_s, own_duration = _declared_duration(container, stream)
    if declared_s is not None and declared_s > limits.max_duration_s:
        raise ProbeError(
            "too_long",
            f"The video is {declared_s:.1f} s long; the limit is {limits.max_duration_s:g} s.",
        )
    rate = float(stream.average_rate or stream.guessed_rate or 0) or 240.0
    max_frames = math.ceil(limits.max_duration_s * rate * 1.05) + 10
    stats = _decode_all(stream, container, limits, max_frames)
    timing = timing_from_pts(stats.pts, stream.time_base, stream.average_rate)
    fps = float(timing.fps)
    if stats.frames > max_frames or (fps and stats.frames / fps > limits.max_duration_s * 1.05):
        raise ProbeError(
            "too_long",
            f"The video is longer than the limit of {limits.max_duration_s:g} s "
            f"(more than {stats.frames} frames at {fps:.3g} fps).",
        )

    declared_frames, truncated = _expected_frames(stream, stats, timing, declared_s, own_duration)
    of_total = f" of {'' if stream.frames > 0 else '~'}{declared_frames}" if declared_frames else ""
    if stats.damage == "corrupt":
        raise ProbeError(
            "corrupt",
            f"The video data is damaged: decoding stopped after {stats.frames}{of_total} "
            f"frames ({stats.error}). Export or upload the clip again.",
        )
    if truncated or stats.damage == "truncated":
        raise ProbeError(
            "truncated",
            f"The video ends early: only {stats.frames}{of_total} frames could be decoded "
            "— the upload may be incomplete.",
        )
    if stats.frames < limits.min_frames:
        raise ProbeError(
            "too_few_frames",
            f"The video has only {stats.frames} decodable frame"
            f"{'' if stats.frames == 1 else 's'}; at least {limits.min_frames} are needed.",
        )

    width, height = stats.coded_size
    _check_header_pixels(width, height, limits)
    if stats.rotation in (90, 270):
        width, height = height, width
    audio = container.streams.audio[0] if container.streams.audio else None
    acc = audio.codec_context if audio is not None else None
    duration_s = declared_s if declared_s is not None else stats.frames / (fps or 1)
    return ProbeResult(
        container_format=container.format.name,
        video_codec=cc.name,
        width=width,
        height=height,
        fps=fps,
        frame_count=stats.frames,
        declared_frame_count=declared_frames,
        duration_s=duration_s,
        bit_rate=container.bit_rate or (round(size * 8 / duration_s) if duration_s else None),
        has_audio=audio is not None,
        audio_codec=acc.name if acc is not None else None,
        audio_sample_rate=acc.sample_rate if acc is not None else None,
        audio_channels=acc.layout.nb_channels if acc is not None else None,
        variable_frame_rate=timing.variable,
        pix_fmt=stats.pix_fmt or cc.pix_fmt or "unknown",
        rotation=stats.rotation,
        size_bytes=size,
        sha256=sha256,
    )
