"""Held-frame runs and drawing timing (on ones / twos / threes).

Cartoons expose one drawing for several frames. As in Sakuga-42M, a frame is *held* when the
SSIM of its small grey-scale version to the previous frame is high. A whole-frame mean SSIM alone
misses small drawing changes (an arm moving in a wide static scene still scores ~0.995), so a
frame is held only when the mean SSIM is >= ``threshold`` AND its worst local windows (the
0.5th percentile of the SSIM map) are >= ``local_threshold``. On synthetic 256x144 H.264 clips
(crf 23-28) held pairs scored mean >= 0.9996 / local >= 0.99 while real drawing changes scored
local <= 0.80; heavier compression lowers held scores, which fails safe (a held frame is then
treated as a new drawing, never the reverse).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, cast

import cv2
import numpy as np
from skimage.metrics import structural_similarity

from app.media.decode import Image
from app.media.timing import drawing_spans, timing_votes

Timing = Literal["ones", "twos", "threes"]
TIMINGS: dict[int, Timing] = {1: "ones", 2: "twos", 3: "threes"}

HELD_LONG_SIDE = 128
LOCAL_PERCENTILE = 0.5


def resize_long_side(img: Image, long_side: int, *, upscale: bool = False) -> Image:
    """Copy whose long side is `long_side`; smaller images are returned as-is unless `upscale`."""
    h, w = img.shape[:2]
    scale = long_side / max(h, w)
    if scale == 1 or (scale > 1 and not upscale):
        return img
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resized = cv2.resize(img, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return cast(Image, resized)


def small_grey(rgb: Image, long_side: int = HELD_LONG_SIDE) -> Image:
    """Grey-scale copy of an RGB frame whose long side is at most `long_side`."""
    return resize_long_side(cast(Image, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)), long_side)


@dataclass
class HeldResult:
    """Per-frame similarity to the previous frame (frame 0 has none: 0.0) and the held runs."""

    ssim: list[float]
    local_ssim: list[float]
    held: list[bool]
    runs: list[tuple[int, int]] = field(default_factory=list)

    @property
    def frame_count(self) -> int:
        return len(self.ssim)


def runs_from_held(held: list[bool]) -> list[tuple[int, int]]:
    """Half-open runs [start, end) of >= 2 frames where every frame after `start` is held."""
    runs: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(held) + 1):
        if i == len(held) or not held[i]:
            if i - start >= 2:
                runs.append((start, i))
            start = i
    return runs


class HeldAccumulator:
    """Streaming held-frame detector: feed frames in display order with `update`."""

    def __init__(
        self,
        threshold: float = 0.98,
        local_threshold: float = 0.9,
        long_side: int = HELD_LONG_SIDE,
    ) -> None:
        self.threshold = threshold
        self.local_threshold = local_threshold
        self.long_side = long_side
        self._prev: Image | None = None
        self._ssim: list[float] = []
        self._local: list[float] = []
        self._held: list[bool] = []

    def update(self, index: int, rgb: Image) -> bool:
        """Add frame `index` (must be the next one); returns whether it is held."""
        if index != len(self._held):
            raise ValueError(f"expected frame {len(self._held)}, got {index}")
        grey = small_grey(rgb, self.long_side)
        prev, self._prev = self._prev, grey
        if prev is None or prev.shape != grey.shape or min(grey.shape) < 7:
            mean, local = 0.0, 0.0
        else:
            mean, ssim_map = structural_similarity(prev, grey, data_range=255, full=True)
            local = float(np.percentile(ssim_map, LOCAL_PERCENTILE))
        is_held = mean >= self.threshold and local >= self.local_threshold
        self._ssim.append(float(mean))
        self._local.append(local)
        self._held.append(is_held)
        return is_held

    def result(self) -> HeldResult:
        return HeldResult(
            ssim=list(self._ssim),
            local_ssim=list(self._local),
            held=list(self._held),
            runs=runs_from_held(self._held),
        )


def detect_held_runs(
    frames: Iterable[Image],
    threshold: float = 0.98,
    local_threshold: float = 0.9,
    long_side: int = HELD_LONG_SIDE,
) -> HeldResult:
    """Held-frame runs of RGB frames in display order (see the module docstring)."""
    acc = HeldAccumulator(threshold, local_threshold, long_side)
    for i, rgb in enumerate(frames):
        acc.update(i, rgb)
    return acc.result()


def drawn_frames(runs: list[tuple[int, int]], n: int) -> list[int]:
    """The first frame of each drawing: the frames a per-drawing model must run on."""
    return [start for start, _ in drawing_spans(runs, n)]


def dominant_timing(runs: list[tuple[int, int]], n: int) -> Timing:
    """The timing that covers the most frames.

    Drawings lasting 1, 2 or 3 frames vote "ones", "twos", "threes" with their frame count;
    longer drawings are holds (a pause, not the animation's timing) and do not vote. Ties go to
    the faster timing. A clip with no drawing of 1-3 frames (one long hold) is "threes": it is
    at least that slow.
    """
    votes = timing_votes(drawing_spans(runs, n))
    if not any(votes.values()):
        return "threes"
    best = max(votes, key=lambda k: (votes[k], -k))
    return TIMINGS[best]
