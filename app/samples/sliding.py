"""Held drawings that move: slides and camera moves on ones over drawings on twos or threes.

A clip's *drawing motion* says how its held drawings move on screen:

- ``held``: the camera and the characters change only with a new drawing (whole frames repeat);
- ``slide``: the camera stays, each character glides across the frame on ones;
- ``pan`` / ``zoom``: the camera pans or zooms on ones.

Each character is drawn through its own camera (the shot's camera shifted by its glide), so
where its held drawing lands on every frame is known exactly: :class:`DrawingRecorder` turns
those placements into the character's held runs with each frame's move.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

from app.media.drawings import DrawingRun, Move
from app.samples.canvas import Camera
from app.samples.truth import CameraMotion

DrawingMotion = Literal["held", "slide", "pan", "zoom"]
DRAWING_MOTIONS: tuple[DrawingMotion, ...] = ("held", "slide", "pan", "zoom")
CAMERA_OF_MOTION: dict[DrawingMotion, tuple[CameraMotion, ...]] = {
    "slide": ("static",),
    "pan": ("pan_left", "pan_right"),
    "zoom": ("zoom_in", "zoom_out"),
}
GLIDE = 0.12  # a sliding character's speed, frame widths per second


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


def move_between(first: Camera, later: Camera) -> Move:
    """Where a point drawn through ``first`` lands when the same drawing goes through ``later``."""
    s = later.zoom / first.zoom
    hx, hy = first.width / 2, first.height / 2
    return (
        s,
        hx * (1 - s) + (first.cx - later.cx) * later.zoom,
        hy * (1 - s) + (first.cy - later.cy) * later.zoom,
    )


@dataclass
class _Shown:
    frame: int
    drawing: int
    camera: Camera


class DrawingRecorder:
    """One character's frames: which drawing each shows, through which camera, if visible."""

    def __init__(self) -> None:
        self._shown: list[_Shown] = []
        self._runs: list[DrawingRun] = []

    def show(self, frame: int, drawing: int, camera: Camera, visible: bool) -> None:
        """Frame ``frame`` shows drawing number ``drawing`` (a new number for a new drawing)."""
        if not visible or (self._shown and self._shown[-1].drawing != drawing):
            self._flush()
        if visible:
            self._shown.append(_Shown(frame, drawing, camera))

    def cut(self) -> None:
        """A shot ends: no drawing continues into the next one."""
        self._flush()

    def runs(self) -> list[dict[str, Any]]:
        """The held runs in the DrawingRun JSON shape."""
        self._flush()
        return [run.as_json() for run in self._runs]

    def _flush(self) -> None:
        if len(self._shown) >= 2:
            first = self._shown[0].camera
            moves = tuple(move_between(first, shown.camera) for shown in self._shown)
            self._runs.append(DrawingRun(self._shown[0].frame, self._shown[-1].frame + 1, moves))
        self._shown = []
