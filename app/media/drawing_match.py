"""Held drawings of one character while it slides or the camera pans or zooms.

The whole-frame detector (app/pipeline/held.py) sees a held drawing only when the whole frame
repeats. Here each frame is compared with the character's current *key* drawing (the frame
where that drawing first appeared) after compensating the drawing's motion:

1. Align: the key drawing's crop (its box plus a margin) is placed on the new frame by the
   predicted move (last move plus the last per-frame velocity), phase correlation corrects
   the translation, and ECC (``cv2.findTransformECC``, affine) refines it to sub-pixel;
   the affine is reduced to the scale + translation of a :data:`Move`.
2. Compare: a pixel of the crop is *explained* when the current frame there matches the moved
   key drawing, or the previous frame moved by the camera (phase correlation of the whole
   frames) or not moved at all: the background inside the box moves with the camera, not
   with the character. The comparisons allow for anti-aliasing and sub-pixel error by
   testing against the min/max of the 3 x 3 neighbourhood. A redrawn part (an arm moved) is
   explained by none of them.
3. Decide: the drawing is held when the densest patch of unexplained pixels stays under
   :data:`CHANGED_DENSITY`.

The work is done on grey frames scaled so the crop's long side is at most :data:`WORK_SIDE`
px. Precision, recall, move error and speed per kind of motion are in BENCHMARKS.md
("Per-character held drawings", bench/drawings.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

from app.media.decode import Image
from app.media.drawings import IDENTITY, DrawingRun, Move, carry

Box = tuple[float, float, float, float]  # x, y, w, h pixels (as app.projects.skeletons.Box)
Grey = npt.NDArray[np.float32]

MIN_INSIDE = 0.6  # share of the drawing's crop that must still be in the frame
WORK_SIDE = 256  # long side of the key crop at working scale, px
CAMERA_SIDE = 160  # long side of the frames the camera motion is measured on, px
MARGIN = 0.12  # crop margin around the box, share of its long side
TOLERANCE = 28.0  # grey levels a pixel may differ from its neighbourhood and still match
CHANGED_DENSITY = 0.06  # share of unexplained pixels in the worst patch that means redrawn
PATCH = 0.12  # side of the patch, share of the crop's long side
ECC_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 1e-4)


def _grey(rgb: Image, scale: float) -> Grey:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    if scale != 1.0:
        h, w = grey.shape[:2]
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return cast(Grey, grey.astype(np.float32))


def _camera_shift(prev: Grey, cur: Grey, window: Grey) -> tuple[float, float]:
    """Translation of the whole picture from ``prev`` to ``cur`` (their own pixels)."""
    (sx, sy), _ = cv2.phaseCorrelate(prev, cur, window)
    return float(sx), float(sy)


def _range_miss(image: Grey, reference: Grey) -> Grey:
    """How far each pixel lies outside the min..max of ``reference`` around it (3 x 3): a
    one-pixel slack for anti-aliasing and sub-pixel placement."""
    kernel = np.ones((3, 3), np.uint8)
    low = cv2.erode(reference, kernel)
    high = cv2.dilate(reference, kernel)
    return cast(Grey, np.maximum(np.maximum(low - image, image - high), 0.0))


@dataclass
class _Key:
    """The current drawing: its first frame's crop at working scale and where it came from."""

    index: int
    box: Box
    scale: float  # working pixels per frame pixel
    origin: tuple[float, float]  # the crop's top-left corner, working pixels
    crop: Grey
    moves: list[Move]

    def __post_init__(self) -> None:
        self.half = cast(Grey, cv2.pyrDown(self.crop))
        self.mask = np.ones(self.half.shape, np.uint8)


class DrawingFollower:
    """Follows one character's drawings through consecutive frames of one shot."""

    def __init__(self) -> None:
        self._key: _Key | None = None
        self._runs: list[DrawingRun] = []
        self._prev: Grey | None = None  # previous frame at working scale
        self._prev_small: Grey | None = None
        self._velocity: Move = (0.0, 0.0, 0.0)  # per-frame change of the move
        self._index = -1
        self._camera_scale = 1.0
        self._window: Grey | None = None

    def start(self, index: int, rgb: Image, box: Box) -> None:
        """Frame ``index`` shows a new drawing of the character inside ``box`` (x, y, w, h px)."""
        self._close()
        x, y, w, h = (float(v) for v in box)
        long_side = max(w, h, 1.0) * (1 + 2 * MARGIN)
        scale = min(1.0, WORK_SIDE / long_side)
        grey = _grey(rgb, scale)
        pad = MARGIN * max(w, h)
        frame_h, frame_w = grey.shape
        x0 = max(0, int((x - pad) * scale))
        y0 = max(0, int((y - pad) * scale))
        x1 = min(frame_w, int(np.ceil((x + w + pad) * scale)))
        y1 = min(frame_h, int(np.ceil((y + h + pad) * scale)))
        crop = grey[y0:y1, x0:x1].copy() if x1 - x0 >= 8 and y1 - y0 >= 8 else None
        self._key = (
            _Key(index, (x, y, w, h), scale, (float(x0), float(y0)), crop, [IDENTITY])
            if crop is not None
            else None
        )
        self._prev = grey
        self._prev_small = self._small(rgb)
        self._index = index

    def check(self, index: int, rgb: Image) -> Move | None:
        """Does frame ``index`` show the current drawing again (slid, panned, zoomed)?

        Returns its move relative to the drawing's first frame and records it; None means a
        new drawing (the caller then calls :meth:`start`)."""
        if index != self._index + 1:
            raise ValueError(f"expected frame {self._index + 1}, got {index}")
        key = self._key
        if key is None or self._prev is None or self._prev_small is None:
            return None
        small = self._small(rgb)
        assert self._window is not None
        cam_x, cam_y = _camera_shift(self._prev_small, small, self._window)
        cam = (cam_x / self._camera_scale * key.scale, cam_y / self._camera_scale * key.scale)
        grey = _grey(rgb, key.scale)
        move = self._align(key, grey)
        held = move is not None and self._explained(key, grey, move, cam)
        if not held or move is None:
            return None
        full = (move[0], move[1] / key.scale, move[2] / key.scale)
        last = key.moves[-1]
        self._velocity = (full[0] - last[0], full[1] - last[1], full[2] - last[2])
        key.moves.append(full)
        self._prev, self._prev_small, self._index = grey, small, index
        return full

    def box_at(self, move: Move) -> Box:
        """The current drawing's box carried to a frame placed by ``move``."""
        assert self._key is not None
        x, y, w, h = self._key.box
        (x0, y0), (x1, y1) = carry(np.array([[x, y], [x + w, y + h]]), IDENTITY, move)
        return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))

    def runs(self) -> list[DrawingRun]:
        """Every drawing shown on two or more frames so far, the current one included."""
        current = self._run(self._key)
        return [*self._runs, current] if current is not None else list(self._runs)

    # -- internals -------------------------------------------------------------------------
    def _small(self, rgb: Image) -> Grey:
        h, w = rgb.shape[:2]
        self._camera_scale = min(1.0, CAMERA_SIDE / max(h, w))
        small = _grey(rgb, self._camera_scale)
        if self._window is None or self._window.shape != small.shape:
            self._window = cast(Grey, cv2.createHanningWindow(small.shape[::-1], cv2.CV_32F))
        return small

    def _close(self) -> None:
        run = self._run(self._key)
        if run is not None:
            self._runs.append(run)
        self._key = None

    @staticmethod
    def _run(key: _Key | None) -> DrawingRun | None:
        if key is None or len(key.moves) < 2:
            return None
        return DrawingRun(key.index, key.index + len(key.moves), tuple(key.moves))

    def _predicted(self, key: _Key) -> Move:
        s, dx, dy = key.moves[-1]
        vs, vx, vy = self._velocity
        return (s + vs, (dx + vx) * key.scale, (dy + vy) * key.scale)

    def _align(self, key: _Key, grey: Grey) -> Move | None:
        """The key crop's move onto ``grey`` in working pixels, or None when it is not found."""
        s, dx, dy = self._predicted(key)
        ox, oy = key.origin
        h, w = key.crop.shape
        # crop pixel u sits at s * (origin + u) + d on the frame
        to_frame = np.array([[s, 0, s * ox + dx], [0, s, s * oy + dy]], np.float32)
        seen = cv2.warpAffine(
            grey, to_frame, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )  # fmt: skip
        (tx, ty), _ = cv2.phaseCorrelate(key.crop, seen)
        warp = np.array([[1, 0, tx], [0, 1, ty]], np.float32)
        # ECC on half-size copies (a quarter of the pixels); translations scale back by 2
        half = warp.copy()
        half[:, 2] /= 2
        try:
            _, found = cv2.findTransformECC(
                key.half, cv2.pyrDown(seen), half, cv2.MOTION_AFFINE, ECC_CRITERIA, key.mask, 3
            )
            warp = np.asarray(found, np.float32)
            warp[:, 2] *= 2
        except cv2.error:
            pass
        a = float(warp[0, 0] + warp[1, 1]) / 2
        if not 0.8 < a < 1.25:
            return None
        centre = np.array([w / 2, h / 2], np.float32)
        tx2, ty2 = warp[:, :2] @ centre + warp[:, 2] - a * centre
        # crop pixel u -> seen pixel a*u + t2 -> frame pixel s*(a*u + t2) + s*origin + d
        scale = s * a
        return (
            scale,
            s * float(tx2) + s * ox + dx - scale * ox,
            s * float(ty2) + s * oy + dy - scale * oy,
        )

    def _explained(self, key: _Key, grey: Grey, move: Move, cam: tuple[float, float]) -> bool:
        """Is every part of the crop explained by the moved drawing or the moved background?"""
        assert self._prev is not None
        s, dx, dy = move
        ox, oy = key.origin
        h, w = key.crop.shape
        to_frame = np.array([[s, 0, s * ox + dx], [0, s, s * oy + dy]], np.float32)
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        seen = cast(
            Grey,
            cv2.warpAffine(
                grey,
                to_frame,
                (w, h),
                flags=flags,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=(-1.0,),
            ),
        )
        misses = [_range_miss(seen, key.crop)]
        for shift in {cam, (0.0, 0.0)}:
            to_prev = to_frame.copy()
            to_prev[:, 2] -= np.array(shift, np.float32)
            before = cv2.warpAffine(
                self._prev, to_prev, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE
            )
            misses.append(_range_miss(seen, cast(Grey, before)))
        miss = np.minimum.reduce(misses)
        # pixels of the crop the frame shows, away from its border (interpolated with it)
        inside = cv2.erode((seen >= 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        if inside.mean() < MIN_INSIDE:
            return False
        unexplained = ((miss > TOLERANCE) & inside).astype(np.float32)
        side = max(3, round(PATCH * max(h, w)))
        density = cv2.boxFilter(unexplained, -1, (side, side))
        return float(density.max()) < CHANGED_DENSITY


def find_drawings(
    frames: Sequence[Image],
    boxes: Sequence[Box | None],
    shots: Sequence[tuple[int, int]] | None = None,
) -> list[DrawingRun]:
    """A character's held drawings over a clip (offline).

    Each frame is checked against the current drawing; where it is not held a new drawing
    starts in ``boxes[i]``, or, when the character has no box there, in the previous box
    carried by its move. Drawings never cross the cuts between ``shots`` ([start, end) frame
    ranges; default: one shot).
    """
    runs: list[DrawingRun] = []
    for start, end in shots or [(0, len(frames))]:
        follower = DrawingFollower()
        box: Box | None = None  # the character's box on the frame before
        for i in range(start, end):
            move = follower.check(i, frames[i]) if box is not None else None
            if move is not None:
                box = boxes[i] or follower.box_at(move)
                continue
            box = boxes[i] or box
            if box is not None:
                follower.start(i, frames[i], box)
        runs.extend(follower.runs())
    return runs
