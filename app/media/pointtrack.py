"""Carry a character's points from a keyframe a person set through the next frames.

Frames come in tracking order (the keyframe first, then outward, forward or backward), so one
function serves both directions. Between two frames a point moves by pyramidal Lucas-Kanade
optical flow, kept only when flowing back lands where it started (forward-backward check) and
the picture around it still looks the same; where flow has no texture to hold on to (the flat
fills of cartoons) or fails the checks, a larger patch is matched in the next frame instead
(:mod:`app.media.patchmatch`). A frame that holds the previous frame's drawing of this
character moves the points by the drawing's move alone, exactly. A point that fails stops
there for good: it is never guessed on later frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np

from app.media.decode import Image
from app.media.drawings import Move
from app.media.patchmatch import BoolArray, FloatArray, match_patches

WINDOW = 21  # Lucas-Kanade window, frame pixels
LEVELS = 3  # pyramid levels above the frame: follows motions up to ~80 px a frame
CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 0.01)
MIN_EIGEN = 1e-3  # below this the window is a flat fill: flow is not trusted there
BACK_PX = 0.8  # forward-backward error a flow step may have (frame pixels)
LOOK_HALF = 4  # half-width of the patch whose colours must still agree after a step
LOOK_MAX = 28.0  # mean absolute colour difference (0..255) allowed between those patches
SEARCH_PX = 14  # patch matching searches this far around the neighbours' motion
NEIGHBOURS = 3  # nearby flowing points whose median motion predicts a textureless point


@dataclass(frozen=True)
class TrackedPoints:
    """Where each of K points is on each of F frames (in the order they were given).

    ``xy`` is in source pixels and NaN where ``ok`` is False; ``ok`` says the point passed the
    checks on this frame and on every frame before it; ``confidence`` is 0..1 (0 where not ok).
    """

    xy: FloatArray  # (F, K, 2)
    ok: BoolArray  # (F, K)
    confidence: FloatArray  # (F, K)


@dataclass(frozen=True)
class _Step:
    xy: FloatArray  # (N, 2) frame pixels
    passed: BoolArray  # (N,)
    confidence: FloatArray  # (N,)


def _grey(rgb: Image) -> Image:
    return cast(Image, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


def _inside(xy: FloatArray, width: int, height: int) -> BoolArray:
    x, y = xy[:, 0], xy[:, 1]
    return cast(
        BoolArray,
        np.isfinite(xy).all(axis=1) & (x >= 0) & (y >= 0) & (x <= width - 1) & (y <= height - 1),
    )


def _looks_alike(a: Image, b: Image, xy_a: FloatArray, xy_b: FloatArray) -> FloatArray:
    """Mean absolute colour difference of the small patches around each pair of points."""
    size = (2 * LOOK_HALF + 1, 2 * LOOK_HALF + 1)
    out = np.empty(len(xy_a), np.float32)
    for i, (pa, pb) in enumerate(zip(xy_a, xy_b, strict=True)):
        patch_a = cv2.getRectSubPix(a, size, (float(pa[0]), float(pa[1]))).astype(np.float32)
        patch_b = cv2.getRectSubPix(b, size, (float(pb[0]), float(pb[1]))).astype(np.float32)
        out[i] = float(np.abs(patch_a - patch_b).mean())
    return out


def _lucas_kanade(a: Image, b: Image, xy: FloatArray) -> tuple[FloatArray, BoolArray]:
    start = xy.reshape(-1, 1, 2)
    there, status, _ = cv2.calcOpticalFlowPyrLK(
        a,
        b,
        start,
        start.copy(),
        winSize=(WINDOW, WINDOW),
        maxLevel=LEVELS,
        criteria=CRITERIA,
        minEigThreshold=MIN_EIGEN,
    )
    return np.asarray(there, np.float32).reshape(-1, 2), np.asarray(status).ravel() == 1


def _flow(a: Image, b: Image, xy: FloatArray) -> tuple[FloatArray, BoolArray, FloatArray]:
    """Lucas-Kanade from ``a`` to ``b`` and back: (positions on b, flowed, back error px)."""
    there, flowed = _lucas_kanade(a, b, xy)
    back, flowed_back = _lucas_kanade(b, a, there)
    error = np.linalg.norm(back - xy, axis=1).astype(np.float32)
    return there, flowed & flowed_back, error


def _guesses(xy: FloatArray, moved: FloatArray, reliable: BoolArray) -> FloatArray:
    """Where each point probably is: moved like its nearest reliably tracked points."""
    if not reliable.any():
        return xy.copy()
    anchors, motion = xy[reliable], moved[reliable] - xy[reliable]
    distance = np.linalg.norm(xy[:, None, :] - anchors[None, :, :], axis=2)
    nearest = np.argsort(distance, axis=1)[:, :NEIGHBOURS]
    return (xy + np.median(motion[nearest], axis=1)).astype(np.float32)


def _follow(a: Image, b: Image, grey_a: Image, grey_b: Image, xy: FloatArray) -> _Step:
    """One step between consecutive frames for points at ``xy`` (frame pixels) on ``a``."""
    height, width = grey_a.shape
    there, flowed, error = _flow(grey_a, grey_b, xy)
    reliable = flowed & (error <= BACK_PX) & _inside(there, width, height)
    difference = np.full(len(xy), np.inf, np.float32)
    if reliable.any():
        difference[reliable] = _looks_alike(a, b, xy[reliable], there[reliable])
    reliable &= difference <= LOOK_MAX
    confidence = np.where(
        reliable, (1 - error / (2 * BACK_PX)) * (1 - difference / (2 * LOOK_MAX)), 0
    ).astype(np.float32)
    rest = np.flatnonzero(~reliable)
    if rest.size:
        guesses = _guesses(xy, there, reliable)[rest]
        matches = match_patches(a, b, grey_a, xy[rest], guesses, SEARCH_PX)
        found = matches.found & _inside(matches.xy, width, height)
        there[rest] = matches.xy
        reliable[rest] = found
        confidence[rest] = np.where(found, matches.score, 0)
    return _Step(there, reliable, np.clip(confidence, 0, 1).astype(np.float32))


def track_points(
    frames: Sequence[Image],
    xy: FloatArray,
    active: BoolArray,
    *,
    moves: Sequence[Move | None] = (),
    scale: float = 1.0,
) -> TrackedPoints:
    """Track the ``active`` points of ``xy`` (K, 2; source pixels on ``frames[0]``) through
    ``frames`` (RGB, tracking order). ``moves[i]``, when given and not None, says ``frames[i]``
    holds the drawing of ``frames[i - 1]`` moved by it (a point ``p`` goes to
    ``s * p + (dx, dy)``, source pixels): the points then move by it alone. Frames may be
    smaller than the source: frame pixels = source pixels * ``scale``."""
    if moves and len(moves) != len(frames):
        raise ValueError("moves needs one entry per frame")
    count, points = len(frames), len(xy)
    height, width = frames[0].shape[:2]
    out = np.full((count, points, 2), np.nan, np.float32)
    ok = np.zeros((count, points), bool)
    confidence = np.zeros((count, points), np.float32)
    start = np.asarray(xy, np.float32).reshape(points, 2)
    alive = np.asarray(active, bool) & _inside(start * scale, width, height)
    out[0, alive], ok[0], confidence[0] = start[alive], alive, alive
    grey = [_grey(frames[0])]
    for i in range(1, count):
        grey.append(_grey(frames[i]))
        index = np.flatnonzero(alive)
        if not index.size:
            break
        before = out[i - 1, index]
        move = moves[i] if moves else None
        if move is not None:
            s, dx, dy = move
            after = (before * s + np.array([dx, dy], np.float32)).astype(np.float32)
            step = _Step(
                after * scale,
                _inside(after * scale, width, height),
                np.ones(len(index), np.float32),
            )
        else:
            step = _follow(frames[i - 1], frames[i], grey[i - 1], grey[i], before * scale)
        alive[index[~step.passed]] = False
        kept = index[step.passed]
        out[i, kept] = step.xy[step.passed] / scale
        ok[i, kept] = True
        confidence[i, kept] = np.minimum(confidence[i - 1, kept], step.confidence[step.passed])
    return TrackedPoints(out, ok, confidence)
