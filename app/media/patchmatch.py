"""Find where small image patches went in the next frame, for points optical flow cannot follow.

Cartoons are flat fills inside dark outlines: a point in the middle of a shirt has no texture
in a Lucas-Kanade window, so flow either refuses it or slides along the fill. A patch large
enough to reach the nearest outlines still has a unique place in the next frame, which
normalised cross-correlation (``cv2.matchTemplate``) finds in a window around a guess. A match
counts only when it is both good and unambiguous (the runner-up elsewhere in the window is
clearly worse) and leads back to where the patch came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

from app.media.decode import Image

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]

HALF_SIZES = (8, 12, 18, 26)  # patch half-widths tried, smallest with enough structure first
MIN_STRUCTURE = 14.0  # grey-level standard deviation a patch needs to be matched at all
MIN_SCORE = 0.8  # normalised correlation of an accepted match
MIN_MARGIN = 0.06  # how much better than the best match elsewhere in the window
RETURN_PX = 1.5  # matching back must land this close to the start (frame pixels)


@dataclass(frozen=True)
class Matches:
    xy: FloatArray  # (N, 2) where each patch is on the target frame (frame pixels)
    found: BoolArray  # (N,) the match passed every check
    score: FloatArray  # (N,) its normalised correlation, 0..1


def _patch(image: Image, centre: FloatArray, half: int) -> Image:
    size = 2 * half + 1
    return cast(Image, cv2.getRectSubPix(image, (size, size), (float(centre[0]), float(centre[1]))))


def _half_size(grey: Image, centre: FloatArray) -> int | None:
    """The smallest patch around ``centre`` with enough structure to be found again."""
    for half in HALF_SIZES:
        if float(np.std(_patch(grey, centre, half))) >= MIN_STRUCTURE:
            return half
    return None


def _peak_offset(scores: npt.NDArray[np.float32], row: int, col: int) -> tuple[float, float]:
    """Sub-pixel position of a correlation peak (a parabola through it and its neighbours)."""

    def vertex(left: float, mid: float, right: float) -> float:
        curve = left - 2 * mid + right
        return 0.0 if curve >= 0 else float(np.clip(0.5 * (left - right) / curve, -0.5, 0.5))

    h, w = scores.shape
    dx = (
        vertex(scores[row, col - 1], scores[row, col], scores[row, col + 1])
        if 0 < col < w - 1
        else 0
    )
    dy = (
        vertex(scores[row - 1, col], scores[row, col], scores[row + 1, col])
        if 0 < row < h - 1
        else 0
    )
    return col + dx, row + dy


def _best(
    source: Image, target: Image, centre: FloatArray, guess: FloatArray, half: int, radius: int
) -> tuple[FloatArray, float, float]:
    """Where the patch at ``centre`` of ``source`` is in ``target`` near ``guess``:
    (position, score, margin over the best place not overlapping it)."""
    template = _patch(source, centre, half)
    window = _patch(target, guess, half + radius)
    scores = cast(
        npt.NDArray[np.float32], cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)
    )
    _, best, _, (col, row) = cv2.minMaxLoc(scores)
    x, y = _peak_offset(scores, row, col)
    elsewhere = scores.copy()
    keep_out = max(2, half // 2)
    elsewhere[
        max(0, row - keep_out) : row + keep_out + 1, max(0, col - keep_out) : col + keep_out + 1
    ] = -1
    runner_up = float(elsewhere.max()) if elsewhere.size else -1.0
    position = guess + np.array([x - radius, y - radius], np.float32)
    return position.astype(np.float32), float(best), float(best) - runner_up


def match_patches(
    source: Image,
    target: Image,
    source_grey: Image,
    xy: FloatArray,
    guesses: FloatArray,
    radius: int,
) -> Matches:
    """Where the patches around ``xy`` on ``source`` are on ``target``, searched within
    ``radius`` pixels of ``guesses``; both images RGB (colour keeps fills apart that share a
    grey level), ``source_grey`` measures structure."""
    n = len(xy)
    out = np.full((n, 2), np.nan, np.float32)
    found = np.zeros(n, bool)
    score = np.zeros(n, np.float32)
    for i in range(n):
        half = _half_size(source_grey, xy[i])
        if half is None:
            continue
        there, best, margin = _best(source, target, xy[i], guesses[i], half, radius)
        if best < MIN_SCORE or margin < MIN_MARGIN:
            continue
        back, _, _ = _best(target, source, there, xy[i], half, max(2, radius // 4))
        if float(np.hypot(*(back - xy[i]))) > RETURN_PX:
            continue
        out[i], found[i], score[i] = there, True, best
    return Matches(out, found, score)
