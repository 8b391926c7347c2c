"""Speech timing shared by the mouth and the soundtrack, and a voice-like synthesiser.

The same :class:`SpeechPlan` drives the drawn mouth opening and the audio amplitude, so the
speech intervals in the ground truth line up with both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

SAMPLE_RATE = 24_000
NOISE_FLOOR = 1e-4  # about -80 dBFS of white noise between utterances


@dataclass(frozen=True)
class SpeechPlan:
    segments: tuple[tuple[float, float], ...]
    syllable_rate: float
    pitch: float
    seed: int

    def envelope(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        """Loudness / mouth opening in [0, 1]: syllable bumps inside utterances, 0 outside."""
        out = np.zeros_like(t, dtype=np.float64)
        for i, (t0, t1) in enumerate(self.segments):
            m = (t >= t0) & (t < t1)
            u = t[m] - t0
            k = np.floor(u * self.syllable_rate)
            amp = 0.55 + 0.45 * np.abs(np.sin(k * 12.9898 + self.seed * 0.37 + i * 4.1))
            bump = 0.5 - 0.5 * np.cos(2 * np.pi * u * self.syllable_rate)
            edge = np.clip(np.minimum(u, t1 - t[m]) / 0.04, 0, 1)
            out[m] = np.clip(0.15 + 0.85 * bump, 0, 1) * amp * edge
        return out

    def mouth(self, t: float) -> float:
        return float(self.envelope(np.array([t]))[0])


def plan_speech(rng: np.random.Generator, duration: float, seed: int) -> SpeechPlan:
    """Utterances of 0.6-2 s separated by 0.35-0.9 s pauses, starting after a short lead-in."""
    segs: list[tuple[float, float]] = []
    t = float(rng.uniform(0.2, 0.5))
    while t + 0.5 < duration - 0.15:
        end = min(t + float(rng.uniform(0.6, 2.0)), duration - 0.15)
        segs.append((round(t, 3), round(end, 3)))
        t = end + float(rng.uniform(0.35, 0.9))
    if not segs:
        segs.append((round(0.1 * duration, 3), round(0.9 * duration, 3)))
    return SpeechPlan(tuple(segs), float(rng.uniform(3.5, 5.5)), float(rng.uniform(110, 230)), seed)


def synthesise(plan: SpeechPlan, duration: float) -> NDArray[np.float32]:
    """Mono float32 samples: a harmonic buzz with gliding pitch and shifting vowel colour."""
    n = math.ceil(duration * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    env = plan.envelope(t)
    f0 = plan.pitch * (1 + 0.12 * np.sin(2 * np.pi * 0.7 * t) + 0.05 * np.sin(2 * np.pi * 3.1 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    vowel = np.sin(2 * np.pi * plan.syllable_rate * 0.5 * t)
    voice = np.zeros(n)
    for k in range(1, 13):
        formant = 1 + 0.8 * np.sin(k * (1.3 + 0.6 * vowel))
        voice += formant / k * np.sin(k * phase)
    voice /= np.max(np.abs(voice)) + 1e-9
    noise = np.random.default_rng(plan.seed).standard_normal(n) * NOISE_FLOOR
    return (0.5 * env * voice + noise).astype(np.float32)
