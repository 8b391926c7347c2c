"""A character's held drawing: one drawing shown on several frames, each at its own place.

Animators hold a character's drawing for two or three frames (on twos, on threes) while the
character slides across the frame or the camera pans or zooms, so the same drawing appears at
another position and size on every frame of the run. A frame's *move* says where: a point
``p`` of the run's first frame is at ``scale * p + (dx, dy)`` on that frame (pixels). The
first frame's move is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Move = tuple[float, float, float]  # scale, dx, dy
IDENTITY: Move = (1.0, 0.0, 0.0)
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class DrawingRun:
    """Frames [start, end) show one drawing; ``moves[i]`` places it on frame ``start + i``."""

    start: int
    end: int
    moves: tuple[Move, ...]

    def __post_init__(self) -> None:
        if self.end - self.start < 2 or len(self.moves) != self.end - self.start:
            raise ValueError(f"a held run [{self.start}, {self.end}) needs one move per frame")

    def __contains__(self, frame: int) -> bool:
        return self.start <= frame < self.end

    def move_at(self, frame: int) -> Move:
        return self.moves[frame - self.start]

    def as_json(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "moves": [[round(s, 5), round(dx, 3), round(dy, 3)] for s, dx, dy in self.moves],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DrawingRun:
        moves = tuple((float(s), float(dx), float(dy)) for s, dx, dy in data["moves"])
        return cls(int(data["start"]), int(data["end"]), moves)

    @classmethod
    def still(cls, start: int, end: int) -> DrawingRun:
        """A whole-frame hold: the drawing does not move."""
        return cls(start, end, (IDENTITY,) * (end - start))


def runs_from_json(data: list[Any]) -> list[DrawingRun]:
    return [DrawingRun.from_json(item) for item in data]


def run_at(runs: list[DrawingRun], frame: int) -> DrawingRun | None:
    return next((run for run in runs if frame in run), None)


def carry(xy: FloatArray, source: Move, target: Move) -> FloatArray:
    """Points ``(N, 2)`` seen on a frame placed by ``source``, where ``target`` places them."""
    s0, dx0, dy0 = source
    s1, dx1, dy1 = target
    drawing = (np.asarray(xy, dtype=np.float32) - np.array([dx0, dy0], np.float32)) / s0
    return (drawing * s1 + np.array([dx1, dy1], np.float32)).astype(np.float32)
