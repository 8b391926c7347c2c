"""Shot boundaries with PySceneDetect's ContentDetector, fed frame by frame.

Cartoon specifics, checked on synthetic flat-colour clips (H.264, 256x144):
- held drawings score ~0 and drawing changes of a character score well below the default
  threshold 27 (the HSV content score of ContentDetector), so they never cut;
- hard cuts scored 33-73, the lowest between two shots sharing one palette and layout style;
- pans over flat backgrounds score up to ~20 per drawing change and grow with speed, so every
  candidate cut is re-checked with motion compensation: if shifting the previous frame by its
  phase-correlation offset removes most of the difference, it is a pan, not a cut.
AdaptiveDetector is not used: its rolling-average ratio is meaningless on held frames (the
neighbours of a drawing change score ~0, so every drawing change looks like a spike).
Cuts closer than ``min_shot_len`` frames to the previous cut (or to frame 0) are dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise

import cv2
import numpy as np
from scenedetect.detectors import ContentDetector

from app.pipeline.held import resize_long_side, small_grey

DETECT_LONG_SIDE = 256
PAN_CHECK_LONG_SIDE = 128
# A candidate is a pan when alignment leaves less than this share of the raw difference.
PAN_RESIDUAL_RATIO = 0.4


def _is_pan(prev: np.ndarray, cur: np.ndarray) -> bool:
    """True when a global translation explains most of the difference between two frames."""
    a, b = prev.astype(np.float32), cur.astype(np.float32)
    (dx, dy), _ = cv2.phaseCorrelate(a, b)
    h, w = a.shape
    if abs(dx) >= w / 2 or abs(dy) >= h / 2:
        return False
    shift = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
    moved = cv2.warpAffine(a, shift, (w, h), flags=cv2.INTER_LINEAR)
    # Compare only where the shifted previous frame overlaps the current one.
    inside = cv2.warpAffine(np.ones_like(a), shift, (w, h), flags=cv2.INTER_NEAREST)
    valid = cv2.erode(inside, np.ones((3, 3), np.uint8)) > 0
    if valid.mean() < 0.5:
        return False
    raw = float(np.abs(a - b)[valid].mean())
    aligned = float(np.abs(moved - b)[valid].mean())
    return raw > 0 and aligned < PAN_RESIDUAL_RATIO * raw


class ShotAccumulator:
    """Streaming shot detector: feed RGB frames in display order with `update`."""

    def __init__(self, threshold: float = 27.0, min_shot_len: int = 8) -> None:
        self.min_shot_len = min_shot_len
        # min_scene_len=0 disables scenedetect's flash filter; the minimum length and the pan
        # check are applied here so a rejected pan cannot suppress the next real cut.
        self._detector = ContentDetector(threshold=threshold, min_scene_len=0)
        self._prev_grey: np.ndarray | None = None
        self._cuts: list[int] = []
        self._count = 0

    def update(self, index: int, rgb: np.ndarray) -> None:
        if index != self._count:
            raise ValueError(f"expected frame {self._count}, got {index}")
        self._count += 1
        small = resize_long_side(rgb, DETECT_LONG_SIDE)
        candidates = self._detector.process_frame(index, cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
        grey = small_grey(small, PAN_CHECK_LONG_SIDE)
        prev, self._prev_grey = self._prev_grey, grey
        if index not in candidates or prev is None:
            return
        last = self._cuts[-1] if self._cuts else 0
        if index - last >= self.min_shot_len and not _is_pan(prev, grey):
            self._cuts.append(index)

    def result(self) -> list[tuple[int, int]]:
        """Half-open shot ranges covering [0, n); an empty clip has no shots."""
        bounds = [0, *self._cuts, self._count]
        return [(a, b) for a, b in pairwise(bounds) if b > a]


def detect_shots(
    frames: Iterable[np.ndarray], *, threshold: float = 27.0, min_shot_len: int = 8
) -> list[tuple[int, int]]:
    """Shot ranges [start, end) of RGB frames in display order (see the module docstring)."""
    acc = ShotAccumulator(threshold=threshold, min_shot_len=min_shot_len)
    for i, rgb in enumerate(frames):
        acc.update(i, rgb)
    return acc.result()
