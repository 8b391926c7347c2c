"""Cel-style drawing primitives: flat fills, dark anti-aliased outlines, a camera and an id buffer.

Shapes are given in world coordinates (the base frame of the shot at zoom 1) and drawn through
a :class:`Camera`; every silhouette is also painted into ``ids`` with the current part id so the
ground truth can tell which part is in front at any pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
Colour = tuple[int, int, int]  # BGR
INK: Colour = (24, 20, 28)
_SHIFT = 4
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class Camera:
    """Maps world points to output pixels: ``(p - centre) * zoom + frame_centre``."""

    cx: float
    cy: float
    zoom: float
    width: int
    height: int

    def to_screen(self, pts: FloatArray) -> FloatArray:
        half = np.array([self.width / 2.0, self.height / 2.0])
        return (np.asarray(pts, dtype=np.float64) - np.array([self.cx, self.cy])) * self.zoom + half


def hex_colour(c: Colour) -> str:
    b, g, r = c
    return f"#{r:02x}{g:02x}{b:02x}"


def shade(c: Colour, f: float) -> Colour:
    """Darker (f < 1) or lighter (f > 1, towards white) variant of a colour."""
    if f <= 1:
        return (int(c[0] * f), int(c[1] * f), int(c[2] * f))
    t = min(f - 1, 1.0)
    return (
        int(c[0] + (255 - c[0]) * t),
        int(c[1] + (255 - c[1]) * t),
        int(c[2] + (255 - c[2]) * t),
    )


def ellipse_pts(
    centre: FloatArray, rx: float, ry: float, n: int = 40, angle: float = 0.0
) -> FloatArray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    ca, sa = np.cos(angle), np.sin(angle)
    return np.stack([x * ca - y * sa, x * sa + y * ca], axis=1) + np.asarray(centre)


def _fixed(pts: FloatArray) -> NDArray[np.int32]:
    return np.round(np.asarray(pts, dtype=np.float64) * _ONE).astype(np.int32).reshape(-1, 1, 2)


class Canvas:
    """One output frame being painted, with its id buffer and a per-character bounding box."""

    def __init__(self, camera: Camera) -> None:
        self.camera = camera
        self.img = np.zeros((camera.height, camera.width, 3), np.uint8)
        self.ids = np.zeros((camera.height, camera.width), np.uint8)
        self.part = 0
        self._box: list[float] | None = None

    # -- bookkeeping -------------------------------------------------------------------------
    def begin_box(self) -> None:
        self._box = None

    def end_box(self) -> list[float] | None:
        """Bounding box [x, y, w, h] of what was drawn since begin_box, clipped to the frame."""
        if self._box is None:
            return None
        x0, y0, x1, y1 = self._box
        x0, y0 = max(x0, 0.0), max(y0, 0.0)
        x1, y1 = min(x1, float(self.camera.width)), min(y1, float(self.camera.height))
        if x1 <= x0 or y1 <= y0:
            return None
        return [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)]

    def _grow(self, spts: FloatArray, pad: float) -> None:
        lo, hi = spts.min(axis=0) - pad, spts.max(axis=0) + pad
        if self._box is None:
            self._box = [lo[0], lo[1], hi[0], hi[1]]
        else:
            b = self._box
            self._box = [min(b[0], lo[0]), min(b[1], lo[1]), max(b[2], hi[0]), max(b[3], hi[1])]

    def px(self, world_len: float) -> float:
        return world_len * self.camera.zoom

    # -- primitives (world coordinates) ------------------------------------------------------
    def poly(self, pts: FloatArray, fill: Colour, outline: float = 0.0, track: bool = True) -> None:
        s = self.camera.to_screen(pts)
        f = _fixed(s)
        cv2.fillPoly(self.img, [f], fill, cv2.LINE_AA, _SHIFT)
        t = round(float(self.px(outline)))
        if t > 0:
            cv2.polylines(self.img, [f], True, INK, t, cv2.LINE_AA, _SHIFT)
        if track:
            cv2.fillPoly(self.ids, [f], (self.part,), cv2.LINE_8, _SHIFT)
            if t > 1:
                cv2.polylines(self.ids, [f], True, (self.part,), t, cv2.LINE_8, _SHIFT)
            self._grow(s, t / 2)

    def capsule(
        self, a: FloatArray, b: FloatArray, width: float, fill: Colour, outline: float
    ) -> None:
        """A limb: a thick round-capped stroke with a dark rim."""
        s = self.camera.to_screen(np.array([a, b]))
        fa, fb = _fixed(s[0])[0, 0], _fixed(s[1])[0, 0]
        w = max(round(float(self.px(width))), 1)
        t = round(float(self.px(outline)))
        pa, pb = (int(fa[0]), int(fa[1])), (int(fb[0]), int(fb[1]))
        if t > 0:
            cv2.line(self.img, pa, pb, INK, w + 2 * t, cv2.LINE_AA, _SHIFT)
        cv2.line(self.img, pa, pb, fill, w, cv2.LINE_AA, _SHIFT)
        cv2.line(self.ids, pa, pb, (self.part,), w + 2 * t, cv2.LINE_8, _SHIFT)
        self._grow(s, w / 2 + t)

    def stroke(self, pts: FloatArray, colour: Colour, width: float, closed: bool = False) -> None:
        """A drawn line (features, details); does not change the id buffer."""
        t = max(round(float(self.px(width))), 1)
        cv2.polylines(
            self.img, [_fixed(self.camera.to_screen(pts))], closed, colour, t, cv2.LINE_AA, _SHIFT
        )

    def dot(self, centre: FloatArray, radius: float, colour: Colour) -> None:
        self.poly(ellipse_pts(centre, radius, radius, 16), colour, track=False)

    # -- screen-space helpers for backgrounds ------------------------------------------------
    def fill_rows(self, y0: float, y1: float, colour: Colour) -> None:
        """Paint a full-width band between world heights y0 and y1."""
        cam = self.camera
        sy0 = (y0 - cam.cy) * cam.zoom + cam.height / 2
        sy1 = (y1 - cam.cy) * cam.zoom + cam.height / 2
        a, b = int(np.clip(round(sy0), 0, cam.height)), int(np.clip(round(sy1), 0, cam.height))
        if b > a:
            self.img[a:b] = colour
