"""Carry a character's points from a keyframe a person set through the next frames.

Frames come in tracking order (the keyframe first, then outward, forward or backward), so one
function serves both directions. Between two frames a point moves by pyramidal Lucas-Kanade
optical flow, kept only when flowing back lands where it started (forward-backward check), its
window is not a straight outline alone (where flow slides along the line) and the picture
around it still looks like it did on the previous frame and, more loosely, on the keyframe.
Where flow has no texture to hold on to (the flat fills of cartoons) or fails the checks, a
larger patch is matched in the next frame instead (:mod:`app.media.patchmatch`). When hardly
any corner of the picture can be followed the frame is a cut, and every point stops. A frame
that holds the previous frame's drawing of this character moves the points by the drawing's
move alone, exactly. A point that fails stops there for good: it is never guessed on later
frames.

Points nobody sees have nothing to follow: one the person set as hidden, one off the frame or on
its border, and one that leaves the frame. They are *carried* by the motion of the character's
points that were followed on the same step (a similarity fit on them, corrected by the nearest
ones; a held drawing's move exactly), and clamped to the frame, where a person would put them.
A carried point is a guess from its neighbours, not something seen; it stops when no neighbour
was followed. One that left the frame and is carried back inside it is guessed in view again:
on the benchmark's clips such a point is seen far more often than not, while a hidden point or
one set on the border (somewhere beyond it) is guessed as not seen wherever it is carried.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

from app.media.decode import Image
from app.media.drawings import Move
from app.media.patchmatch import BoolArray, FloatArray, match_patches

WINDOW = 15  # Lucas-Kanade window, frame pixels
SMALL_WINDOW = 9  # tried again with this where the large window failed
LEVELS = 3  # pyramid levels above the frame: follows motions up to ~50 px a frame
CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 20, 0.03)
MIN_EIGEN = 1e-3  # below this the window is a flat fill: flow is not trusted there
BACK_PX = 0.8  # forward-backward error a flow step may have (frame pixels)
LOOK_HALF = 4  # half-width of the patch whose colours must still agree after a step
LOOK_MAX = 28.0  # mean absolute colour difference (0..255) allowed between those patches
ANCHOR_MAX = 60.0  # the same, between the point's patch now and on the keyframe
MIN_CORNERNESS = 0.05  # below this a window holds a straight outline only (_Structure)
SEARCH_PX = 14  # patch matching searches this far around the neighbours' motion
MARGIN = 72  # frame pixels around the points that a step reads (windows, pyramid, search)
PROBES = 24  # corners of the picture whose flow tells a cut from motion
MIN_PROBES = 8  # fewer corners than this: the picture is too flat to tell
CUT_SHARE = 0.25  # a cut when fewer of the corners than this can be followed
WORK_SIDE = 640  # longest side of the frames the points are tracked on (pixels)
NEIGHBOURS = 3  # nearby flowing points whose median motion predicts a textureless point
# At most this sure of a point carried by its neighbours: under a project's default confidence
# floor (0.3), so approving a track does not label it.
CARRIED_CONFIDENCE = 0.2
BORDER_PX = 0.5  # a point set this near the frame's edge (source pixels) is on its border


@dataclass(frozen=True)
class TrackedPoints:
    """Where each of K points is on each of F frames (in the order they were given).

    ``xy`` is in source pixels and NaN where neither ``ok`` nor ``carried``; ``ok`` says the
    point passed the checks on this frame and on every frame before it; ``carried`` says it was
    not seen but moved with its neighbours (clamped to the frame); ``back_in_view`` says a
    carried point left the frame and is back inside it (a guess that it is seen again);
    ``confidence`` is 0..1 (0 where neither).
    """

    xy: FloatArray  # (F, K, 2)
    ok: BoolArray  # (F, K)
    confidence: FloatArray  # (F, K)
    carried: BoolArray  # (F, K)
    back_in_view: BoolArray  # (F, K)


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


def _patches(image: Image, xy: FloatArray) -> FloatArray:
    """The (2 * LOOK_HALF + 1)-pixel squares around each point, interpolated (N, side, side, 3)."""
    if not len(xy):
        return np.zeros((0, 2 * LOOK_HALF + 1, 2 * LOOK_HALF + 1, image.shape[2]), np.float32)
    offsets = np.arange(-LOOK_HALF, LOOK_HALF + 1, dtype=np.float32)
    map_x = np.repeat(xy[:, 0, None] + offsets[None, :], len(offsets), axis=0)
    map_y = np.repeat(xy[:, 1, None], len(offsets), axis=1)[:, None, :] + offsets[None, :, None]
    side = len(offsets)
    sampled = cv2.remap(
        image,
        map_x.reshape(-1, side),
        map_y.reshape(-1, side).astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return np.asarray(sampled, np.float32).reshape(len(xy), side, side, -1)


def _looks_alike(a: Image, b: Image, xy_a: FloatArray, xy_b: FloatArray) -> FloatArray:
    """Mean absolute colour difference of the small patches around each pair of points."""
    difference = np.abs(_patches(a, xy_a) - _patches(b, xy_b))
    return difference.reshape(len(xy_a), -1).mean(axis=1).astype(np.float32)


def _lucas_kanade(a: Image, b: Image, xy: FloatArray, window: int) -> tuple[FloatArray, BoolArray]:
    start = xy.reshape(-1, 1, 2)
    there, status, _ = cv2.calcOpticalFlowPyrLK(
        a,
        b,
        start,
        start.copy(),
        winSize=(window, window),
        maxLevel=LEVELS,
        criteria=CRITERIA,
        minEigThreshold=MIN_EIGEN,
    )
    return np.asarray(there, np.float32).reshape(-1, 2), np.asarray(status).ravel() == 1


def _flow(a: Image, b: Image, xy: FloatArray, window: int) -> tuple[FloatArray, FloatArray]:
    """Lucas-Kanade from ``a`` to ``b`` and back: the positions on ``b`` and the
    forward-backward error in pixels (infinite where either way failed)."""
    there, flowed = _lucas_kanade(a, b, xy, window)
    back, flowed_back = _lucas_kanade(b, a, there, window)
    error = np.linalg.norm(back - xy, axis=1).astype(np.float32)
    return there, np.where(flowed & flowed_back, error, np.inf).astype(np.float32)


def _guesses(xy: FloatArray, moved: FloatArray, reliable: BoolArray) -> FloatArray:
    """Where each point probably is: moved like its nearest reliably tracked points."""
    if not reliable.any():
        return xy.copy()
    anchors, motion = xy[reliable], moved[reliable] - xy[reliable]
    distance = np.linalg.norm(xy[:, None, :] - anchors[None, :, :], axis=2)
    nearest = np.argsort(distance, axis=1)[:, :NEIGHBOURS]
    return (xy + np.median(motion[nearest], axis=1)).astype(np.float32)


def _region(xy: FloatArray, width: int, height: int) -> tuple[slice, slice]:
    """The part of the frame the step needs: the points, their windows and their search."""
    x0, y0 = np.floor(xy.min(axis=0) - MARGIN).astype(int)
    x1, y1 = np.ceil(xy.max(axis=0) + MARGIN).astype(int)
    return slice(max(0, y0), min(height, y1 + 1)), slice(max(0, x0), min(width, x1 + 1))


class _Structure:
    """The gradients of a picture, to judge the windows flow looks through."""

    def __init__(self, grey: Image) -> None:
        self.gx = np.asarray(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), np.float32)
        self.gy = np.asarray(cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3), np.float32)

    def cornerness(self, xy: FloatArray, window: int) -> FloatArray:
        """How well each point's window pins motion down in both directions: the smaller over
        the larger eigenvalue of its structure tensor. Near 0 on a straight outline, where
        flow sees only the motion across the line and slides along it (the aperture
        problem); 1 on a dot or a corner."""
        height, width = self.gx.shape
        offsets = np.arange(window) - window // 2
        x = np.clip(np.rint(xy[:, 0]).astype(int)[:, None] + offsets, 0, width - 1)
        y = np.clip(np.rint(xy[:, 1]).astype(int)[:, None] + offsets, 0, height - 1)
        gx, gy = self.gx[y[:, :, None], x[:, None, :]], self.gy[y[:, :, None], x[:, None, :]]
        xx, yy, xy_ = ((g * h).sum(axis=(1, 2)) for g, h in ((gx, gx), (gy, gy), (gx, gy)))
        mean = (xx + yy) / 2
        spread = np.sqrt((xx - yy) ** 2 / 4 + xy_**2)
        return np.asarray((mean - spread) / np.maximum(mean + spread, 1e-6), np.float32)


def _probes(grey: Image) -> FloatArray:
    """Corners of the picture, whatever they belong to (found at half size, which is enough
    and four times cheaper): if hardly any of them can be followed to the next frame, the
    next frame shows another picture (a cut)."""
    corners = cv2.goodFeaturesToTrack(cv2.pyrDown(grey), PROBES, 0.01, 4)
    if corners is None:
        return np.zeros((0, 2), np.float32)
    return (2 * np.float32(corners) + 0.5).reshape(-1, 2)


class _Flowed:
    """The flow checks of one step: forward-backward error, then the look of the picture."""

    def __init__(self, a: Image, b: Image, xy: FloatArray) -> None:
        self.a, self.b, self.xy = a, b, xy
        self.there = xy.copy()
        self.passed = np.zeros(len(xy), bool)
        self.confidence = np.zeros(len(xy), np.float32)

    def offer(self, index: npt.NDArray[np.intp], there: FloatArray, error: FloatArray) -> None:
        """Keep the flow results at ``index`` that pass the checks."""
        good = error <= BACK_PX
        difference = np.full(len(index), np.inf, np.float32)
        if good.any():
            difference[good] = _looks_alike(self.a, self.b, self.xy[index[good]], there[good])
        good &= difference <= LOOK_MAX
        chosen = index[good]
        self.there[chosen] = there[good]
        self.passed[chosen] = True
        self.confidence[chosen] = (1 - error[good] / (2 * BACK_PX)) * (
            1 - difference[good] / (2 * LOOK_MAX)
        )


def _follow(a: Image, b: Image, grey_a: Image, grey_b: Image, xy: FloatArray) -> _Step:
    """One step between consecutive frames for points at ``xy`` (frame pixels) on ``a``."""
    height, width = grey_a.shape
    rows, cols = _region(xy, width, height)
    a, b, grey_a, grey_b = a[rows, cols], b[rows, cols], grey_a[rows, cols], grey_b[rows, cols]
    origin = np.array([cols.start, rows.start], np.float32)
    xy = xy - origin
    probes = _probes(grey_a)
    there, error = _flow(grey_a, grey_b, np.vstack([xy, probes]), WINDOW)
    probe_error = error[len(xy) :]
    if len(probes) >= MIN_PROBES and (probe_error <= BACK_PX).mean() < CUT_SHARE:
        return _Step(xy + origin, np.zeros(len(xy), bool), np.zeros(len(xy), np.float32))
    step = _Flowed(a, b, xy)
    structure = _Structure(grey_a)
    pinned = structure.cornerness(xy, WINDOW) >= MIN_CORNERNESS
    step.offer(np.arange(len(xy)), there[: len(xy)], np.where(pinned, error[: len(xy)], np.inf))
    rest = np.flatnonzero(~step.passed)
    if rest.size:
        again, again_error = _flow(grey_a, grey_b, xy[rest], SMALL_WINDOW)
        pinned = structure.cornerness(xy[rest], SMALL_WINDOW) >= MIN_CORNERNESS
        step.offer(rest, again, np.where(pinned, again_error, np.inf))
    rest = np.flatnonzero(~step.passed)
    if rest.size:
        guesses = _guesses(xy, step.there, step.passed)[rest]
        matches = match_patches(a, b, grey_a, xy[rest], guesses, SEARCH_PX)
        step.there[rest] = np.where(matches.found[:, None], matches.xy, step.there[rest])
        step.passed[rest] = matches.found
        step.confidence[rest] = np.where(matches.found, matches.score, 0)
    there = step.there + origin
    passed = step.passed & _inside(there, width, height)
    return _Step(there, passed, np.clip(step.confidence, 0, 1).astype(np.float32))


def _compare_with_keyframe(step: _Step, look: FloatArray, key_look: FloatArray) -> _Step:
    """Stop the points whose picture has drifted too far from the keyframe's (a point slid
    off its part, or the part turned away); the nearer it is, the more confident."""
    drift = np.abs(look - key_look).reshape(len(look), -1).mean(axis=1)
    confidence = step.confidence * np.clip(1 - drift / (2 * ANCHOR_MAX), 0, 1)
    return _Step(step.xy, step.passed & (drift <= ANCHOR_MAX), confidence.astype(np.float32))


def _working_size(frames: Sequence[Image], scale: float) -> tuple[Sequence[Image], float]:
    """Frames larger than WORK_SIDE are tracked shrunk to it: a drawing moves fewer pixels a
    frame there (within reach of the flow's pyramid), and the work is a fraction."""
    longest = max(frames[0].shape[:2]) if frames else 0
    if not WORK_SIDE or longest <= WORK_SIDE:
        return frames, scale
    factor = WORK_SIDE / longest
    shrunk = [
        cast(Image, cv2.resize(f, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA))
        for f in frames
    ]
    return shrunk, scale * shrunk[0].shape[1] / frames[0].shape[1]


Motion = Callable[[FloatArray], FloatArray]  # source pixels before a step -> after it


def _move_motion(move: Move) -> Motion:
    s, dx, dy = move
    return lambda xy: (xy * s + np.array([dx, dy], np.float32)).astype(np.float32)


def _neighbour_motion(before: FloatArray, after: FloatArray) -> Motion | None:
    """How the followed points ``before`` -> ``after`` (source pixels) move the points around
    them: a similarity fit on all of them (robust to a few wrong ones), plus the median of what
    it leaves over at the nearest ones (a limb moving on its own); None with no point."""
    if not len(before):
        return None
    fit = None
    if len(before) >= 3:
        fit, _ = cv2.estimateAffinePartial2D(before, after, method=cv2.LMEDS)
    if fit is None:
        shift = np.median(after - before, axis=0)
        fit = np.array([[1, 0, shift[0]], [0, 1, shift[1]]], np.float64)
    matrix = np.asarray(fit, np.float32)

    def similarity(xy: FloatArray) -> FloatArray:
        return (xy @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)

    left_over = after - similarity(before)

    def motion(xy: FloatArray) -> FloatArray:
        distance = np.linalg.norm(xy[:, None, :] - before[None, :, :], axis=2)
        nearest = np.argsort(distance, axis=1)[:, :NEIGHBOURS]
        return (similarity(xy) + np.median(left_over[nearest], axis=1)).astype(np.float32)

    return motion


def _inside_by_border(xy: FloatArray, size: FloatArray) -> BoolArray:
    """Points inside the frame and off its border (source pixels)."""
    return ((xy > BORDER_PX) & (xy < size - BORDER_PX)).all(axis=1)


def _beyond_border(xy: FloatArray, start: FloatArray, size: FloatArray) -> FloatArray:
    """A point set on the frame's border is somewhere beyond it (a person cannot place it
    where it is): carried, it stays beyond that border, so on it once clamped."""
    low, high = start <= BORDER_PX, start >= size - BORDER_PX
    return np.where(low, np.minimum(xy, 0), np.where(high, np.maximum(xy, size), xy))


def _carrier(
    move: Move | None, place: FloatArray, start: FloatArray, followed: npt.NDArray[np.intp]
) -> Callable[[npt.NDArray[np.intp]], FloatArray] | None:
    """Where the points not followed on this step go (by index; ``place`` holds the followed
    ones' new positions and the others' old ones): by the held drawing's move, exactly, or by
    how the ``followed`` points moved since the keyframe (a fit from it does not drift as a
    sum of step fits would); None when no point was followed."""
    if move is not None:
        by_move = _move_motion(move)
        return lambda which: by_move(place[which])
    from_key = _neighbour_motion(start[followed], place[followed])
    if from_key is None:
        return None
    return lambda which: from_key(start[which])


def track_points(
    frames: Sequence[Image],
    xy: FloatArray,
    active: BoolArray,
    *,
    hidden: BoolArray | None = None,
    moves: Sequence[Move | None] = (),
    scale: float = 1.0,
) -> TrackedPoints:
    """Track the ``active`` points of ``xy`` (K, 2; source pixels on ``frames[0]``) through
    ``frames`` (RGB, tracking order). ``hidden`` points (set as not visible), and active points
    off the frame or on its border, are carried with the followed ones. ``moves[i]``, when
    given and not None, says ``frames[i]`` holds the drawing of ``frames[i - 1]`` moved by it
    (a point ``p`` goes to ``s * p + (dx, dy)``, source pixels): the points then move by it
    alone. Frames may be smaller than the source: frame pixels = source pixels * ``scale``."""
    if moves and len(moves) != len(frames):
        raise ValueError("moves needs one entry per frame")
    source_size = (
        np.array(frames[0].shape[1::-1], np.float32) / scale if frames else np.zeros(2, np.float32)
    )
    frames, scale = _working_size(frames, scale)
    count, points = len(frames), len(xy)
    height, width = frames[0].shape[:2]
    out = np.full((count, points, 2), np.nan, np.float32)
    ok = np.zeros((count, points), bool)
    carried = np.zeros((count, points), bool)
    back_in_view = np.zeros((count, points), bool)
    confidence = np.zeros((count, points), np.float32)
    start = np.asarray(xy, np.float32).reshape(points, 2)
    unseen = np.zeros(points, bool) if hidden is None else np.asarray(hidden, bool)
    on_border = ~_inside_by_border(start, source_size)
    alive = np.asarray(active, bool) & _inside(start * scale, width, height) & ~unseen & ~on_border
    carrying = np.asarray(active, bool) & np.isfinite(start).all(axis=1) & ~alive
    left = np.zeros(points, bool)  # followed, then carried out of the frame
    place = start.copy()  # where each point is, carried ones before clamping
    out[0, alive | carrying] = np.clip(start[alive | carrying], 0, source_size)
    ok[0], carried[0], confidence[0] = alive, carrying, alive | carrying
    grey = [_grey(frames[0])]
    key_look = _patches(frames[0], start * scale)
    for i in range(1, count):
        grey.append(_grey(frames[i]))
        index = np.flatnonzero(alive)
        if not index.size:
            break
        before = place[index]
        move = moves[i] if moves else None
        if move is not None:
            after = _move_motion(move)(before)
            step = _Step(
                after * scale,
                _inside(after * scale, width, height),
                np.ones(len(index), np.float32),
            )
        else:
            step = _follow(frames[i - 1], frames[i], grey[i - 1], grey[i], before * scale)
            step = _compare_with_keyframe(step, _patches(frames[i], step.xy), key_look[index])
        alive[index[~step.passed]] = False
        kept = index[step.passed]
        place[kept] = step.xy[step.passed] / scale
        out[i, kept] = place[kept]
        ok[i, kept] = True
        confidence[i, kept] = np.minimum(confidence[i - 1, kept], step.confidence[step.passed])
        carry = _carrier(move, place, start, kept)
        if carry is None:
            carrying[:] = False
            continue
        failed = index[~step.passed]
        leaving = failed[~_inside(carry(failed) * scale, width, height)]
        carrying[leaving] = True
        left[leaving] = True
        moving = np.flatnonzero(carrying)
        place[moving] = _beyond_border(carry(moving), start[moving], source_size)
        out[i, moving] = np.clip(place[moving], 0, source_size)
        carried[i, moving] = True
        back_in_view[i, moving] = left[moving] & _inside_by_border(place[moving], source_size)
        confidence[i, moving] = np.minimum(confidence[i - 1, moving], CARRIED_CONFIDENCE)
    return TrackedPoints(out, ok, confidence, carried, back_in_view)
