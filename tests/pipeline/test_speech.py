"""Speech segments on synthesised voice-like audio with known intervals."""

from __future__ import annotations

import numpy as np
import pytest

from app.pipeline.speech import SAMPLE_RATE, speech_segments

SR = SAMPLE_RATE


def resonate(x: np.ndarray, freq: float, bandwidth: float) -> np.ndarray:
    """Two-pole resonator (a formant), written out to stay independent of scipy."""
    r = np.exp(-np.pi * bandwidth / SR)
    a1, a2 = 2 * r * np.cos(2 * np.pi * freq / SR), -r * r
    y = np.zeros_like(x)
    y1 = y2 = 0.0
    for i, v in enumerate(x):
        y1, y2 = (1 - r) * v + a1 * y1 + a2 * y2, y1
        y[i] = y1
    return y


def voice(duration: float, f0: float = 140.0) -> np.ndarray:
    """Formant-filtered glottal pulses with a wobbling pitch and a ~4 Hz syllable envelope."""
    t = np.arange(int(duration * SR)) / SR
    phase = np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 3 * t)) / SR)
    pulses = np.diff(np.floor(phase), prepend=0.0)
    source = np.convolve(pulses, 0.95 ** np.arange(64))[: len(t)]
    y = sum(resonate(source, f, b) for f, b in ((700, 110), (1200, 120), (2600, 160)))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t - np.pi / 2)
    y = np.asarray(y) * envelope
    return y / np.abs(y).max()


def mix(duration: float, segments: list[tuple[float, float]], seed: int = 0, **voice_kw):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.003, int(duration * SR))  # near-silence
    for a, b in segments:
        x[int(a * SR) : int(a * SR) + int((b - a) * SR)] += 0.5 * voice(b - a, **voice_kw)
    return (x * 32767).astype(np.int16)


@pytest.mark.parametrize("f0", [120.0, 240.0])
def test_segments_match_truth_within_a_tenth_of_a_second(f0: float):
    truth = [(0.5, 1.6), (2.4, 3.1), (4.0, 5.5)]
    found = speech_segments(mix(6.0, truth, f0=f0))
    assert len(found) == len(truth)
    for (a, b), (ta, tb) in zip(found, truth, strict=True):
        assert abs(a - ta) <= 0.1 and abs(b - tb) <= 0.1


def test_short_gaps_are_bridged_and_blips_dropped():
    # A 0.2 s pause inside a phrase is one segment; a 0.09 s blip is not speech.
    audio = mix(4.0, [(0.5, 1.2), (1.4, 2.0), (3.0, 3.09)])
    found = speech_segments(audio)
    assert len(found) == 1
    assert abs(found[0][0] - 0.5) <= 0.1 and abs(found[0][1] - 2.0) <= 0.1
    assert len(speech_segments(audio, min_gap_s=0.05)) == 2


@pytest.mark.parametrize("level", [0.0, 0.003, 0.05, 0.2])
def test_noise_and_silence_give_no_speech(level: float):
    rng = np.random.default_rng(1)
    noise = (rng.normal(0, level, 3 * SR) * 32767).clip(-32768, 32767).astype(np.int16)
    assert speech_segments(noise) == []


def test_rejects_unsupported_frame_size_and_handles_short_input():
    with pytest.raises(ValueError):
        speech_segments(np.zeros(SR, np.int16), frame_ms=25)
    assert speech_segments(np.zeros(100, np.int16)) == []
