"""Frame-to-frame global motion and per-shot camera motion labels.

One dense Farneback flow per consecutive frame pair (small grey frames, long side 160) serves
both the camera estimate and the clip's motion score. Held frames have ~zero flow, so summing
over all pairs of a shot equals summing over drawn frames. The global motion of a pair is a
similarity transform (translation + scale) fitted with RANSAC to flow vectors at textured
pixels: flat colour areas carry no motion information, and RANSAC lets the background outvote
a moving character. Weakness: when a character's outlines outnumber the background's (a close
up over a plain backdrop), the character's movement is reported as camera motion.

Directions are those of the CAMERA: content sliding left means the camera pans right; content
sliding down means the camera pans up; content growing means zoom in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from app.media.decode import Image
from app.pipeline.held import small_grey

CameraMotion = Literal[
    "static", "pan_left", "pan_right", "pan_up", "pan_down", "zoom_in", "zoom_out"
]

FLOW_LONG_SIDE = 160
GRID_STEP = 4
MIN_POINTS = 12


@dataclass(frozen=True)
class PairMotion:
    """Motion of the content from frame i-1 to frame i.

    dx, dy: content translation as a fraction of frame width / height (+x right, +y down);
    scale: content scale factor (>1 grows); magnitude: mean flow length over all pixels as a
    fraction of the frame's long side (resolution independent).
    """

    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0
    magnitude: float = 0.0


def _global_motion(prev: Image, cur: Image) -> PairMotion:
    h, w = prev.shape
    init = np.zeros((h, w, 2), np.float32)
    flow = cv2.calcOpticalFlowFarneback(prev, cur, init, 0.5, 4, 15, 3, 5, 1.2, 0)
    magnitude = float(np.linalg.norm(flow, axis=2).mean()) / max(h, w)
    grad = cv2.magnitude(cv2.Sobel(prev, cv2.CV_32F, 1, 0), cv2.Sobel(prev, cv2.CV_32F, 0, 1))
    ys, xs = np.mgrid[GRID_STEP // 2 : h : GRID_STEP, GRID_STEP // 2 : w : GRID_STEP]
    textured = grad[ys, xs] > 40
    if textured.sum() < MIN_POINTS:
        return PairMotion(magnitude=magnitude)
    src = np.stack([xs[textured], ys[textured]], axis=1).astype(np.float32)
    dst = src + flow[ys[textured], xs[textured]]
    matrix, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=1.0)
    if matrix is None:
        return PairMotion(magnitude=magnitude)
    scale = math.hypot(matrix[0, 0], matrix[1, 0])
    # Translation of the frame centre, so a centred zoom reports no pan.
    cx, cy = w / 2, h / 2
    tx = matrix[0, 0] * cx + matrix[0, 1] * cy + matrix[0, 2] - cx
    ty = matrix[1, 0] * cx + matrix[1, 1] * cy + matrix[1, 2] - cy
    return PairMotion(dx=tx / w, dy=ty / h, scale=scale, magnitude=magnitude)


class MotionAccumulator:
    """Streaming per-pair motion: feed RGB frames in display order with `update`."""

    def __init__(self, long_side: int = FLOW_LONG_SIDE) -> None:
        self.long_side = long_side
        self._prev: Image | None = None
        self._motions: list[PairMotion] = []

    def update(self, index: int, rgb: Image) -> None:
        if index != len(self._motions):
            raise ValueError(f"expected frame {len(self._motions)}, got {index}")
        grey = small_grey(rgb, self.long_side)
        prev, self._prev = self._prev, grey
        # Only bit-identical frames skip the flow: a small arm swing can change < 1 % of pixels.
        if prev is None or prev.shape != grey.shape or np.array_equal(prev, grey):
            self._motions.append(PairMotion())
        else:
            self._motions.append(_global_motion(prev, grey))

    def result(self) -> list[PairMotion]:
        """One entry per frame; entry 0 (no previous frame) is zero motion."""
        return list(self._motions)


def frame_motions(frames: Iterable[Image], long_side: int = FLOW_LONG_SIDE) -> list[PairMotion]:
    """Per-frame motion of RGB frames in display order (entry 0 is zero)."""
    acc = MotionAccumulator(long_side)
    for i, rgb in enumerate(frames):
        acc.update(i, rgb)
    return acc.result()


@dataclass(frozen=True)
class CameraThresholds:
    """Net motion over a shot needed to call it a pan or zoom (fractions of the frame)."""

    pan: float = 0.08
    zoom: float = 0.08


def camera_motion(
    motions: Sequence[PairMotion],
    shot: tuple[int, int],
    thresholds: CameraThresholds = CameraThresholds(),
) -> CameraMotion:
    """Label one shot [start, end) from the net content motion inside it.

    The pair entering the shot (across the cut) is ignored. Zoom wins when its net relative
    scale change is at least the threshold and at least the net pan; otherwise the larger net
    axis displacement decides the pan direction.
    """
    start, end = shot
    inside = motions[start + 1 : end]
    dx = sum(m.dx for m in inside)
    dy = sum(m.dy for m in inside)
    zoom = math.exp(sum(math.log(m.scale) for m in inside if m.scale > 0)) - 1
    pan = max(abs(dx), abs(dy))
    if abs(zoom) >= thresholds.zoom and abs(zoom) >= pan:
        return "zoom_in" if zoom > 0 else "zoom_out"
    if pan < thresholds.pan:
        return "static"
    if abs(dx) >= abs(dy):
        return "pan_right" if dx < 0 else "pan_left"
    return "pan_up" if dy > 0 else "pan_down"
