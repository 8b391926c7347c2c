"""Broken and awkward media files for probe/ingest tests, with the failure each should cause."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.samples.audio import SAMPLE_RATE, SpeechPlan, synthesise
from app.samples.encoder import ClipWriter
from app.samples.generator import make_clip

HUGE_SIDE = 16_000
EXPECTED_KINDS = {
    "empty": "zero-byte file",
    "truncated": "container cut short; the index is missing",
    "not_a_video": "not a media file at all",
    "no_video_stream": "media file without a video stream",
    "too_few_frames": "video with a single frame",
    "too_large": "declared frame size beyond any limit",
}


@dataclass(frozen=True)
class BadFile:
    path: Path
    kind: str  # a key of EXPECTED_KINDS
    note: str


def _audio_only(path: Path) -> None:
    import av

    plan = SpeechPlan(((0.2, 1.2),), 4.0, 150.0, 1)
    samples = synthesise(plan, 1.5)
    with av.open(str(path), "w") as c:
        a = c.add_stream("aac", rate=SAMPLE_RATE)
        a.layout = "mono"
        from fractions import Fraction

        for k in range(0, len(samples), 1024):
            f = av.AudioFrame.from_ndarray(samples[None, k : k + 1024], format="flt", layout="mono")
            f.sample_rate, f.pts, f.time_base = SAMPLE_RATE, k, Fraction(1, SAMPLE_RATE)
            c.mux(a.encode(f))
        c.mux(a.encode(None))


def make_bad_files(out_dir: str | Path) -> list[BadFile]:
    """Write the bad files and ``expected.json`` (file name -> failure kind) into out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: list[BadFile] = []

    empty = out / "empty.mp4"
    empty.write_bytes(b"")
    files.append(BadFile(empty, "empty", "zero bytes"))

    with tempfile.TemporaryDirectory() as tmp:
        good = make_clip(
            tmp,
            "whole",
            seed=4242,
            width=320,
            fps=24,
            seconds=2.0,
            aspect=16 / 9,
            subsets=["i2v"],
            kinds=["creature"],
            timing="ones",
            shots=1,
        )
        data = good.path.read_bytes()
    truncated = out / "truncated.mp4"
    truncated.write_bytes(data[: int(len(data) * 0.4)])
    files.append(
        BadFile(
            truncated,
            "truncated",
            "a valid 2 s clip cut to 40% of its bytes; the index (moov) is lost",
        )
    )

    text = out / "not_a_video.mp4"
    text.write_text("This is a plain text file that only pretends to be a video.\n" * 20)
    files.append(BadFile(text, "not_a_video", "text with an .mp4 name"))

    audio = out / "audio_only.m4a"
    _audio_only(audio)
    files.append(BadFile(audio, "no_video_stream", "an AAC stream and nothing else"))

    single = out / "single_frame.mp4"
    w = ClipWriter(single, 320, 180, 24, audio=False)
    w.frame(np.full((180, 320, 3), 200, np.uint8))
    w.close(None)
    files.append(BadFile(single, "too_few_frames", "one H.264 frame"))

    # A YUV4MPEG2 header is plain text, so it can declare any size; ffmpeg opens the header as
    # long as av_image_check_size accepts it ((w+128)*(h+128) < INT_MAX/8), which 16000x16000
    # does (256 Mpx, 384 MB per frame) while 50000x50000 is refused outright. The payload is
    # a stub, so nothing decodes either.
    huge = out / "too_large.y4m"
    header = f"YUV4MPEG2 W{HUGE_SIDE} H{HUGE_SIDE} F24:1 Ip A1:1 C420jpeg\n".encode()
    huge.write_bytes(header + b"FRAME\n" + bytes(4096))
    files.append(BadFile(huge, "too_large", f"y4m header declaring {HUGE_SIDE}x{HUGE_SIDE}"))

    expected = {f.path.name: f.kind for f in files}
    (out / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")
    return files
