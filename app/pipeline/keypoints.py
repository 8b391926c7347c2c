"""Per-frame COCO-WholeBody keypoints of a clip with MediaPipe Holistic (pipeline step 4).

Holistic runs once per drawing of the character: on a frame that shows the drawing it last
ran on again (held on twos or threes, maybe slid, panned or zoomed), the drawing follower
gives the drawing's move and the model's result is carried there (app.media.drawings).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from contextlib import ExitStack, closing
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt

from app.core.prefetch import prefetched
from app.media.decode import Image
from app.media.drawing_match import DrawingFollower
from app.media.drawings import IDENTITY, DrawingRun, Move, carry
from app.pipeline.mediapipe_map import (
    HOLISTIC_FIELDS,
    VISIBLE_CONFIDENCE,
    holistic_found,
    holistic_to_coco_wholebody,
)
from app.projects.models import DEFAULT_CONFIDENCE_FLOOR
from app.projects.skeletons import (
    COCO_WHOLEBODY,
    CONF,
    V_UNLABELLED,
    Box,
    PoseArray,
    V,
    part_boxes,
    part_validity,
)

# The follower looks for the drawing in the model's points' box grown by this share of its long
# side plus a few pixels: hair, hands and feet reach past the points.
BOX_PAD = 0.15
BOX_PAD_PX = 4.0
RECENT_DRAWINGS = 4  # drawings whose length says how long the next one probably lasts
PROBE_EVERY = 5  # frames: ask on these whatever the recent drawings say
# Frames decoded ahead in a worker thread while the model runs (app.core.prefetch): the
# decoder then neither waits for the model nor runs its threads inside a model call.
PREFETCH_FRAMES = 4


@dataclass(frozen=True)
class FrameKeypoints:
    """The model's draft for one frame (one character: Holistic finds one person)."""

    frame_index: int
    pose: PoseArray  # (133, 4) coco_wholebody
    validity: dict[str, bool]  # body, feet, face, left_hand, right_hand
    boxes: dict[str, Box | None]  # (x, y, w, h) per valid part
    found: bool  # Holistic (or the FaceMesh fallback) found at least one part
    reused_from: int | None = None  # first frame of the drawing whose result this carries
    move: Move = IDENTITY  # where that drawing sits on this frame
    face_from_mesh: bool = False  # the face came from the FaceMesh fallback


@dataclass(frozen=True)
class KeypointExtraction:
    frames: list[FrameKeypoints]
    model_calls: int  # frames the model actually ran on (held frames carry a result)
    drawing_runs: list[DrawingRun]  # the followed character's held drawings, with their moves


def _held_frames(held_runs: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Map each held frame to its run's first frame; runs are [start, end) and disjoint."""
    held: dict[int, int] = {}
    covered: set[int] = set()
    for start, end in sorted((int(s), int(e)) for s, e in held_runs):
        if start < 0 or end <= start:
            raise ValueError(f"held run [{start}, {end}) is not a valid frame range")
        if covered.intersection(range(start, end)):
            raise ValueError(f"held run [{start}, {end}) overlaps another run")
        covered.update(range(start, end))
        held.update(dict.fromkeys(range(start + 1, end), start))
    return held


def _check_frame(index: int, frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(
            f"frame {index}: expected an RGB uint8 array (H, W, 3), got {frame.dtype} {frame.shape}"
        )
    return np.ascontiguousarray(frame)


def _with_face_of(result: Any, mesh: Any) -> Any:
    """Holistic's result with the face FaceMesh found put in (unchanged when it found none)."""
    if not mesh.multi_face_landmarks:
        return result
    fields = {name: getattr(result, name) for name in HOLISTIC_FIELDS}
    return SimpleNamespace(**{**fields, "face_landmarks": mesh.multi_face_landmarks[0]})


def with_pose(frame: FrameKeypoints, pose: PoseArray) -> FrameKeypoints:
    """``frame`` holding ``pose`` instead, its parts' validity and boxes measured again."""
    return replace(
        frame,
        pose=pose,
        validity=part_validity(pose, COCO_WHOLEBODY),
        boxes=part_boxes(pose, COCO_WHOLEBODY),
    )


def carried_frame(
    key: FrameKeypoints, index: int, move: Move, size: tuple[int, int]
) -> FrameKeypoints:
    """The result of drawing ``key`` carried to frame ``index``, where ``move`` places it.

    A labelled point the move takes out of the ``(width, height)`` picture becomes a
    suggestion there (v=0), as the model's own points outside the image are.
    """
    pose = key.pose.copy()
    pose[:, :2] = carry(key.pose[:, :2], key.move, move)
    width, height = size
    x, y = pose[:, 0], pose[:, 1]
    outside = (x < 0) | (x >= width) | (y < 0) | (y >= height)
    pose[outside, V] = V_UNLABELLED
    first = key.frame_index if key.reused_from is None else key.reused_from
    frame = replace(key, frame_index=index, reused_from=first, move=move)
    return with_pose(frame, pose)


def character_box(pose: PoseArray, size: tuple[int, int]) -> Box | None:
    """The labelled points' box, padded by ``BOX_PAD`` of its long side, inside the picture:
    where the drawing follower looks for the character's drawing."""
    points = pose[pose[:, V] > V_UNLABELLED, :2]
    if not len(points):
        return None
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    pad = BOX_PAD * max(x1 - x0, y1 - y0) + BOX_PAD_PX
    width, height = size
    left, top = max(0.0, float(x0 - pad)), max(0.0, float(y0 - pad))
    right, bottom = min(float(width), float(x1 + pad)), min(float(height), float(y1 + pad))
    return (left, top, right - left, bottom - top)


class _HoldGuess:
    """Whether to ask the follower about a frame: while its drawing is younger than the
    longest of the character's recent drawings, and on every ``PROBE_EVERY``-th frame.

    A check costs a few ms; on twos the third frame of a drawing is a new drawing every time,
    on ones every frame is, and asking there only adds the check to the model call. A hold
    that goes unasked costs one model call, never a wrong point; the probes notice a
    character whose timing slows down.
    """

    def __init__(self) -> None:
        self._lengths: deque[int] = deque(maxlen=RECENT_DRAWINGS)

    def ask(self, index: int, age: int) -> bool:
        """``age``: frames the current drawing has been shown for before frame ``index``."""
        return not self._lengths or age < max(self._lengths) or index % PROBE_EVERY == 0

    def ended(self, length: int) -> None:
        self._lengths.append(length)

    def new_shot(self) -> None:
        self._lengths.clear()


def _run_models(
    index: int, rgb: Image, holistic: Any, face_mesh: Any | None, confidence_floor: float
) -> FrameKeypoints:
    """Holistic's (and, where it found no face, FaceMesh's) result on one frame."""
    result = holistic.process(rgb)
    from_mesh = False
    if face_mesh is not None and result.face_landmarks is None:
        result = _with_face_of(result, face_mesh.process(rgb))
        from_mesh = result.face_landmarks is not None
    height, width = rgb.shape[:2]
    pose = holistic_to_coco_wholebody(result, width, height, confidence_floor=confidence_floor)
    return FrameKeypoints(
        frame_index=index,
        pose=pose,
        validity=part_validity(pose, COCO_WHOLEBODY),
        boxes=part_boxes(pose, COCO_WHOLEBODY),
        found=holistic_found(result),
        face_from_mesh=from_mesh,
    )


def extract_keypoints(
    frames: Iterable[npt.NDArray[np.uint8]],
    *,
    follower: DrawingFollower | None = None,
    cuts: Iterable[int] = (),
    held_runs: Iterable[tuple[int, int]] = (),
    confidence_floor: float = DEFAULT_CONFIDENCE_FLOOR,
    face_fallback: bool = False,
    prefetch: int = PREFETCH_FRAMES,
) -> KeypointExtraction:
    """Run one Holistic tracker over RGB frames in order, once per drawing.

    With a ``follower``, each frame where the model found the character starts a drawing
    inside the character's box; the next frames of the same shot (``cuts`` are the first
    frames of shots) ask the follower whether they show that drawing again, and carry the
    result by its move when they do (frames past the character's usual hold are not asked,
    see ``_HoldGuess``). ``held_runs`` are [start, end) ranges of one repeated
    whole frame, counted from the first frame given: where no drawing is being followed
    (no follower, or the model found nobody on the drawing), the frames of a run after its
    first reuse the first frame's result instead of running the model.

    ``face_fallback``: Holistic crops the face from its body pose, so a face close-up with no
    shoulders in view defeats it (on generated face close-ups it found a face in 9 of 522
    frames); where it finds no face, a FaceMesh tracker looks for one on its own (521 of 522,
    median point error 4 % of the face box). Such faces carry the unanchored part confidence.

    ``prefetch``: frames taken (decoded, checked) ahead from ``frames`` in a worker thread;
    0 takes each on this thread when it is its turn. The result is the same.
    """
    # Imported here so the web process can use this package without loading MediaPipe.
    from mediapipe.python.solutions.face_mesh import FaceMesh
    from mediapipe.python.solutions.holistic import Holistic

    held = _held_frames(held_runs)
    shot_starts = set(cuts)
    out: list[FrameKeypoints] = []
    calls = 0
    key: FrameKeypoints | None = None  # the model's result on the followed drawing
    with ExitStack() as models:
        # Holistic's own landmark smoothing blends each call with the one before: once per
        # drawing, that drags a new drawing's points towards the last (median point error on
        # generated held frames 1.52 % of the box diagonal with it, 1.41 % without).
        holistic = models.enter_context(
            Holistic(
                static_image_mode=False,
                model_complexity=1,
                smooth_landmarks=False,
                refine_face_landmarks=False,
            )
        )
        face_mesh = (
            models.enter_context(FaceMesh(static_image_mode=False, max_num_faces=1))
            if face_fallback
            else None
        )
        guess = _HoldGuess()
        # The follower starts on a drawing when the first frame asks about it: on ones most
        # drawings are never asked about.
        unstarted: tuple[int, Image, Box] | None = None
        checked = (_check_frame(i, frame) for i, frame in enumerate(frames))
        ahead = models.enter_context(closing(prefetched(checked, prefetch)))
        for i, rgb in enumerate(ahead):
            size = (rgb.shape[1], rgb.shape[0])
            if i in shot_starts:
                key, unstarted = None, None
                guess.new_shot()
            if key is not None and follower is not None:
                age = i - key.frame_index
                # A whole frame that repeats the last one is worth asking about, whatever the guess.
                move = None
                if i in held or guess.ask(i, age):
                    if unstarted is not None:
                        follower.start(*unstarted)
                        unstarted = None
                    move = follower.check(i, rgb)
                if move is not None:
                    out.append(carried_frame(key, i, move, size))
                    continue
                guess.ended(age)
            elif i in held:
                out.append(carried_frame(out[held[i]], i, IDENTITY, size))
                continue
            drawn = _run_models(i, rgb, holistic, face_mesh, confidence_floor)
            calls += 1
            out.append(drawn)
            box = character_box(drawn.pose, size)
            key = drawn if follower is not None and box is not None else None
            unstarted = (i, rgb, box) if key is not None and box is not None else None
    runs = follower.runs() if follower is not None else []
    return KeypointExtraction(frames=out, model_calls=calls, drawing_runs=runs)


def low_confidence_points(pose: PoseArray, threshold: float = VISIBLE_CONFIDENCE) -> list[int]:
    """Labelled points (v>0) whose confidence is below ``threshold``, least confident first
    -- the review queue of one frame. Unlabelled points are missing, not doubtful."""
    labelled = pose[:, V] > V_UNLABELLED
    idx = np.flatnonzero(labelled & (pose[:, CONF] < threshold))
    order = np.lexsort((idx, pose[idx, CONF]))
    return [int(i) for i in idx[order]]
