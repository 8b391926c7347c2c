"""What a drawn character hands back to the generator, and how visibility is decided."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from app.samples.canvas import Canvas, FloatArray

PARTS_PER_CHARACTER = 32


@dataclass
class DrawnPoints:
    """Keypoints of one drawing in output pixels, before the visibility test.

    ``allowed[i]`` lists the part ids the point may lie on and still count as seen;
    ``hidden[i]`` is set for points the drawing itself turns away (far side of a head).
    """

    screen: FloatArray
    allowed: list[tuple[int, ...]]
    hidden: NDArray[np.bool_]

    def resolve(self, cv: Canvas) -> list[list[float]]:
        """COCO [x, y, v] triples: v=1 outside the frame, turned away or covered, else v=2."""
        h, w = cv.ids.shape
        out: list[list[float]] = []
        for (x, y), ok, hid in zip(self.screen, self.allowed, self.hidden, strict=True):
            inside = 0 <= x < w and 0 <= y < h
            seen = inside and not hid and int(cv.ids[int(y), int(x)]) in ok
            out.append([round(float(x), 2), round(float(y), 2), 2 if seen else 1])
        return out


@dataclass
class Drawn:
    points: DrawnPoints | None
    box: list[float] | None
    face_box: list[float] | None
    # landmarks of a drawing without keypoints, output pixels: tell a new drawing from a moved one
    outline: FloatArray | None = None


class Character(Protocol):
    kind: str
    name: str
    motion: str
    template: str | None
    depth: float

    def colours(self) -> dict[str, str]: ...

    def draw(self, cv: Canvas, t: float, part_base: int) -> Drawn: ...


def screen_box(pts: FloatArray, width: int, height: int, pad: float = 0.0) -> list[float] | None:
    """Box around points in output pixels, clipped to the frame; None when nothing is inside."""
    if len(pts) == 0:
        return None
    x0, y0 = np.maximum(pts.min(axis=0) - pad, 0.0)
    x1, y1 = pts.max(axis=0) + pad
    x1, y1 = min(float(x1), float(width)), min(float(y1), float(height))
    if x1 <= x0 or y1 <= y0:
        return None
    return [
        round(float(x0), 2),
        round(float(y0), 2),
        round(x1 - float(x0), 2),
        round(y1 - float(y0), 2),
    ]
