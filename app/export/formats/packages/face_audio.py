"""The audio-driven face animation package: per shot and character, the face crop video and
face points of :mod:`~app.export.formats.packages.face` plus the shot's audio as 16 kHz mono
PCM WAV starting with the crop video's first frame, and the speech segments within the shot.

The audio is the clip's first audio stream decoded by PyAV and resampled to 16 kHz mono
(``av.AudioResampler``); the WAV holds exactly ``round(duration_s * 16000)`` samples (silence
pads a stream that ends early), so it lasts as long as the crop video to the sample.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from app.export.formats.bundle import ClipBundle, SnapshotContext, dumps
from app.export.formats.packages.face import FACE_FILES, FacePackage
from app.export.formats.packages.package import ShotFolder
from app.export.formats.packages.shots import clip_fps, shot_record, source_video
from app.media.decode import Pcm, read_audio

SAMPLE_RATE = 16000

FACE_AUDIO_README = f"""
# Audio-driven face package (subset `face_audio`)

One folder per shot, `<clip>_s<shot:03d>/`, with per character whose face is labelled in the
shot:
{FACE_FILES}
and once per shot:

* `audio.wav`: the shot's audio, 16 kHz mono 16-bit PCM, sample 0 at the crop video's first
  frame, `round(duration_s * 16000)` samples long (within one frame of the video's duration).
* `speech.json`: the speech segments overlapping the shot, `[{{"start", "end", "transcript"}}]`
  in seconds from the shot's start, cut to the shot.

Clips without an audio stream are left out. `manifest.jsonl` has one row per shot and
character: the face package's columns (`track`, `character`, `face_video`, `landmarks`,
`crop_box`, ...) and `audio`, `sample_rate`, `speech` (the path) and `speech_segments`.
"""


def write_wav(path: Path, samples: Pcm, rate: int = SAMPLE_RATE) -> None:
    """Mono 16-bit PCM WAV with the standard library's :mod:`wave`."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())


def audio_span(audio: Pcm, start_s: float, duration_s: float) -> Pcm:
    """``duration_s`` of ``audio`` from ``start_s``, padded with silence past its end."""
    first, count = round(start_s * SAMPLE_RATE), round(duration_s * SAMPLE_RATE)
    out = np.zeros(count, dtype=np.int16)
    piece = audio[first : first + count]
    out[: len(piece)] = piece
    return out


def speech_in(clip: ClipBundle, start_s: float, end_s: float) -> list[dict[str, Any]]:
    """The speech segments overlapping [start_s, end_s), cut to it, relative to start_s."""
    return [
        {"start": round(max(s["start_s"], start_s) - start_s, 4),
         "end": round(min(s["end_s"], end_s) - start_s, 4), "transcript": s["transcript"]}
        for s in clip.speech
        if s["end_s"] > start_s and s["start_s"] < end_s
    ]  # fmt: skip


class FaceAudioPackage(FacePackage):
    subset = "face_audio"
    readme = FACE_AUDIO_README

    def write_clip(self, clip: ClipBundle) -> Iterator[dict[str, Any]]:
        audio = read_audio(source_video(clip), SAMPLE_RATE, mono=True)
        if not len(audio):
            return
        fps = clip_fps(clip)
        written: dict[int, dict[str, Any]] = {}
        for face in self.face_shots(clip):
            shot = face.shot
            if shot.span.index not in written:
                written[shot.span.index] = self._audio(clip, shot, audio, float(fps))
            yield {**shot_record(clip, shot.span, self.subset), **face.files,
                   **written[shot.span.index]}  # fmt: skip

    def _audio(self, clip: ClipBundle, shot: ShotFolder, audio: Pcm, fps: float) -> dict[str, Any]:
        start_s, duration_s = shot.span.start / fps, shot.span.frames / fps
        write_wav(shot.path / "audio.wav", audio_span(audio, start_s, duration_s))
        segments = speech_in(clip, start_s, start_s + duration_s)
        (shot.path / "speech.json").write_text(dumps(segments) + "\n", encoding="utf-8")
        return {
            "audio": shot.entry("audio.wav"),
            "sample_rate": SAMPLE_RATE,
            "speech": shot.entry("speech.json"),
            "speech_segments": segments,
        }


def face_audio_package(out: Path, ctx: SnapshotContext) -> FaceAudioPackage:
    return FaceAudioPackage(out, ctx)
