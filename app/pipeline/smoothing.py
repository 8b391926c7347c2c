"""One Euro filter over model point sequences: steady points at rest, no lag in motion.

FaceMesh (and Holistic's face) points jump by a few pixels on every frame of a face that does
not move; a person then drags them back on every keyframe. The One Euro filter (Casiez, Roussel
and Vogel, CHI 2012) is a low-pass filter whose cutoff rises with the point's speed: slow
points are smoothed hard, fast ones pass almost unfiltered. Speeds are measured in sizes of the
part per second (``scale``), so one setting serves a face close-up and a face in a wide shot.
The pipeline has the whole clip, so it filters each sequence forwards and backwards and takes
the mean: the two passes lag in opposite directions, and a moving point is not dragged behind.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from app.media.drawings import carry
from app.pipeline.keypoints import FrameKeypoints, KeypointExtraction, with_pose
from app.projects.skeletons import COCO_WHOLEBODY, V_UNLABELLED, V

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class OneEuro:
    """Filter settings: ``min_cutoff`` (Hz) at rest, ``beta`` how fast the cutoff rises with
    speed (in part sizes per second), ``d_cutoff`` (Hz) for the speed estimate itself."""

    min_cutoff: float = 1.0
    beta: float = 1.0
    d_cutoff: float = 1.0


def _alpha(cutoff: FloatArray | float, dt: FloatArray | float) -> FloatArray:
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
    return np.asarray(1.0 / (1.0 + tau / dt))


def one_euro(
    xy: FloatArray,
    seen: BoolArray,
    times: FloatArray,
    resets: BoolArray,
    scale: float,
    settings: OneEuro = OneEuro(),
) -> FloatArray:
    """Filtered copy of point positions ``xy`` ``(T, N, 2)`` sampled at ``times`` (s, rising).

    A point is filtered only where ``seen`` ``(T, N)``; it starts afresh (takes its raw value)
    on its first sample, after a sample where it was not seen, and on samples where ``resets``
    ``(T,)`` is set (shot cuts). ``scale`` is the part's size in pixels.
    """
    out = np.array(xy, dtype=np.float64)
    if not len(out):
        return out
    n = out.shape[1]
    previous = np.zeros((n, 2))
    speed = np.zeros((n, 2))
    live = np.zeros(n, dtype=bool)
    last_time = float(times[0])
    unit = max(scale, 1e-6)
    for t in range(len(out)):
        dt = max(float(times[t]) - last_time, 1e-6)
        last_time = float(times[t])
        if resets[t]:
            live[:] = False
        go = seen[t] & live
        raw = out[t] / unit
        new_speed = (raw - previous) / dt
        speed = np.where(
            go[:, None], speed + _alpha(settings.d_cutoff, dt) * (new_speed - speed), 0
        )
        cutoff = settings.min_cutoff + settings.beta * np.hypot(speed[:, 0], speed[:, 1])
        a = _alpha(cutoff, dt)[:, None]
        filtered = np.where(go[:, None], previous + a * (raw - previous), raw)
        out[t] = np.where(seen[t][:, None], filtered * unit, out[t])
        previous = np.where(seen[t][:, None], filtered, previous)
        live = seen[t].copy()
    return out


def zero_phase(
    xy: FloatArray,
    seen: BoolArray,
    times: FloatArray,
    resets: BoolArray,
    scale: float,
    settings: OneEuro = OneEuro(),
) -> FloatArray:
    """The mean of :func:`one_euro` run forwards and backwards (same arguments)."""
    if not len(xy):
        return np.array(xy, dtype=np.float64)
    forwards = one_euro(xy, seen, times, resets, scale, settings)
    shot_ends = np.append(resets[1:], True)  # the last sample of each shot
    backwards = one_euro(xy[::-1], seen[::-1], -times[::-1], shot_ends[::-1], scale, settings)[::-1]
    return np.asarray((forwards + backwards) / 2)


# Tuned on generated face clips (bench/face_smoothing.py): lower cutoffs or speed gains smooth
# more but lag behind a mouth that opens or a head that turns, and the point error grows.
FACE_FILTER = OneEuro(min_cutoff=1.0, beta=30.0, d_cutoff=10.0)
FACE_POINTS = list(COCO_WHOLEBODY.parts["face"])


def _smooth_shot(keys: list[FrameKeypoints], fps: float, settings: OneEuro) -> FloatArray:
    """Filtered face points ``(T, 68, 2)`` of one shot's drawings, at the shot's face size."""
    faces = np.stack([f.pose[FACE_POINTS] for f in keys])
    sizes = [max(box[2], box[3]) for f in keys if (box := f.boxes["face"]) is not None]
    if not sizes:
        return faces[:, :, :2].astype(np.float64)
    return zero_phase(
        faces[:, :, :2].astype(np.float64),
        faces[:, :, V] > V_UNLABELLED,
        np.array([f.frame_index / fps for f in keys]),
        np.arange(len(keys)) == 0,
        float(np.median(sizes)),
        settings,
    )


def smooth_faces(
    extraction: KeypointExtraction,
    fps: float,
    cuts: Iterable[int] = (),
    settings: OneEuro = FACE_FILTER,
) -> KeypointExtraction:
    """The extraction with its face points filtered over time, one sample per drawing.

    The filter sees the frames the model ran on (a held drawing is one sample, whatever its
    length) and filters each shot on its own (``cuts``: first frames of shots); frames that
    carry a drawing take its filtered points by their move.
    """
    starts = sorted(set(cuts))
    shots: dict[int, list[FrameKeypoints]] = {}
    for f in extraction.frames:
        if f.reused_from is None:
            shots.setdefault(bisect_right(starts, f.frame_index), []).append(f)
    key_xy: dict[int, FloatArray] = {}
    for keys in shots.values():
        smoothed = _smooth_shot(keys, fps, settings)
        key_xy.update((f.frame_index, xy) for f, xy in zip(keys, smoothed, strict=True))
    moves = {f.frame_index: f.move for f in extraction.frames if f.reused_from is None}
    frames = []
    for frame in extraction.frames:
        first = frame.frame_index if frame.reused_from is None else frame.reused_from
        pose = frame.pose.copy()
        pose[FACE_POINTS, :2] = carry(key_xy[first].astype(np.float32), moves[first], frame.move)
        frames.append(with_pose(frame, pose))
    return replace(extraction, frames=frames)
