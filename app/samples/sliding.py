"""Held drawings that move: slides and camera moves on ones over drawings on twos or threes.

A clip's *drawing motion* says how its held drawings move on screen:

- ``held``: the camera and the characters change only with a new drawing (whole frames repeat);
- ``slide``: the camera stays, each character glides across the frame on ones;
- ``pan`` / ``zoom``: the camera pans or zooms on ones.

Each character is drawn through its own camera (the shot's camera shifted by its glide); its
landmarks on every frame (keypoints, or outline points for characters without a skeleton) give
:class:`DrawingRecorder` the character's held runs with each frame's move.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Literal

import numpy as np

from app.media.drawings import IDENTITY, DrawingRun, Move
from app.samples.canvas import Camera, FloatArray
from app.samples.truth import CameraMotion

DrawingMotion = Literal["held", "slide", "pan", "zoom"]
DRAWING_MOTIONS: tuple[DrawingMotion, ...] = ("held", "slide", "pan", "zoom")
CAMERA_OF_MOTION: dict[DrawingMotion, tuple[CameraMotion, ...]] = {
    "slide": ("static",),
    "pan": ("pan_left", "pan_right"),
    "zoom": ("zoom_in", "zoom_out"),
}
GLIDE = 0.12  # a sliding character's speed, frame widths per second
# Drawings whose landmarks differ by less than this after the best move are one drawing: the
# difference is not visible, and labels carried by the move stay within a pixel.
SAME_DRAWING_PX = 2.0


def camera_at(motion: CameraMotion, p: float, w: int, h: int, focus: tuple[float, float]) -> Camera:
    """The shot's camera at progress ``p`` (0..1) through the shot, eased in and out."""
    e = 0.5 - 0.5 * math.cos(math.pi * min(max(p, 0.0), 1.0))
    cx, cy, zoom = w / 2, h / 2, 1.0
    if motion == "pan_left":
        cx, zoom = w / 2 + 0.1 * w * (1 - 2 * e), 1.1
    elif motion == "pan_right":
        cx, zoom = w / 2 - 0.1 * w * (1 - 2 * e), 1.1
    elif motion in ("zoom_in", "zoom_out"):
        k = e if motion == "zoom_in" else 1 - e
        zoom = 1.0 + 0.3 * k
        cx, cy = w / 2 + (focus[0] - w / 2) * k * 0.6, h / 2 + (focus[1] - h / 2) * k * 0.6
    return Camera(cx, cy, zoom, w, h)


def glide_camera(camera: Camera, glide: float, t: float, shot_seconds: float) -> Camera:
    """The camera a character gliding at ``glide`` world px/s is drawn through at shot time t.

    The glide is centred on the shot so the character crosses its place at mid-shot."""
    offset = glide * (t - shot_seconds / 2)
    return replace(camera, cx=camera.cx - offset) if offset else camera


def landmarks(keypoints: list[list[float]] | None, outline: FloatArray | None) -> FloatArray:
    """Points that follow a drawing: its visible keypoints (NaN for the others), else its
    outline landmarks."""
    if keypoints is None:
        assert outline is not None
        return outline
    return np.array([[x, y] if v == 2 else [np.nan, np.nan] for x, y, v in keypoints])


def fit_move(first: FloatArray, later: FloatArray) -> tuple[Move, float]:
    """The least-squares scale + translation taking points ``first`` onto ``later`` (N x 2,
    NaN where a point is not seen), and the largest distance left between them (px)."""
    both = np.isfinite(first).all(axis=1) & np.isfinite(later).all(axis=1)
    if both.sum() < 3:
        return IDENTITY, np.inf
    p, q = np.asarray(first[both], np.float64), np.asarray(later[both], np.float64)
    pc, qc = p.mean(axis=0), q.mean(axis=0)
    spread = float(((p - pc) ** 2).sum())
    s = float(((p - pc) * (q - qc)).sum()) / spread if spread > 0 else 1.0
    d = qc - s * pc
    residual = float(np.hypot(*(s * p + d - q).T).max())
    return (s, float(d[0]), float(d[1])), residual


class DrawingRecorder:
    """One character's held runs: a frame continues the run while its drawing's landmarks are
    the run's first landmarks moved by a scale + translation (within :data:`SAME_DRAWING_PX`)."""

    def __init__(self) -> None:
        self._first: FloatArray | None = None
        self._start = 0
        self._moves: list[Move] = []
        self._runs: list[DrawingRun] = []

    def show(self, frame: int, landmarks: FloatArray | None) -> None:
        """Frame ``frame`` shows the character with these landmarks (None: not in the frame)."""
        if landmarks is not None and self._first is not None:
            move, residual = fit_move(self._first, landmarks)
            if residual <= SAME_DRAWING_PX:
                self._moves.append(move)
                return
        self.cut()
        if landmarks is not None:
            self._first, self._start, self._moves = landmarks, frame, [IDENTITY]

    def cut(self) -> None:
        """The current drawing ends here (a shot cut, or the character left the frame)."""
        if len(self._moves) >= 2:
            self._runs.append(
                DrawingRun(self._start, self._start + len(self._moves), tuple(self._moves))
            )
        self._first, self._moves = None, []

    def runs(self) -> list[dict[str, Any]]:
        """The held runs in the DrawingRun JSON shape."""
        self.cut()
        return [run.as_json() for run in self._runs]
