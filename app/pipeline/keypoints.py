"""Per-frame COCO-WholeBody keypoints of a clip with MediaPipe Holistic (pipeline step 4)."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt

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


@dataclass(frozen=True)
class FrameKeypoints:
    """The model's draft for one frame (one character: Holistic finds one person)."""

    frame_index: int
    pose: PoseArray  # (133, 4) coco_wholebody
    validity: dict[str, bool]  # body, feet, face, left_hand, right_hand
    boxes: dict[str, Box | None]  # (x, y, w, h) per valid part
    found: bool  # Holistic (or the FaceMesh fallback) found at least one part
    reused_from: int | None = None  # first frame of the held run whose result this copies
    face_from_mesh: bool = False  # the face came from the FaceMesh fallback


@dataclass(frozen=True)
class KeypointExtraction:
    frames: list[FrameKeypoints]
    model_calls: int  # frames the model actually ran on (held frames reuse a result)


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


def extract_keypoints(
    frames: Iterable[npt.NDArray[np.uint8]],
    *,
    held_runs: Iterable[tuple[int, int]] = (),
    confidence_floor: float = DEFAULT_CONFIDENCE_FLOOR,
    face_fallback: bool = False,
) -> KeypointExtraction:
    """Run one Holistic tracker over RGB frames in order.

    ``held_runs`` are [start, end) ranges of one repeated drawing, counted from the first
    frame given: every frame of a run after its first reuses the first frame's result
    instead of running the model.

    ``face_fallback``: Holistic crops the face from its body pose, so a face close-up with no
    shoulders in view defeats it (on generated face close-ups it found a face in 9 of 522
    frames); where it finds no face, a FaceMesh tracker looks for one on its own (521 of 522,
    median point error 4 % of the face box). Such faces carry the unanchored part confidence.
    """
    # Imported here so the web process can use this package without loading MediaPipe.
    from mediapipe.python.solutions.face_mesh import FaceMesh
    from mediapipe.python.solutions.holistic import Holistic

    held = _held_frames(held_runs)
    out: list[FrameKeypoints] = []
    calls = 0
    with ExitStack() as models:
        holistic = models.enter_context(
            Holistic(static_image_mode=False, model_complexity=1, refine_face_landmarks=False)
        )
        face_mesh = (
            models.enter_context(FaceMesh(static_image_mode=False, max_num_faces=1))
            if face_fallback
            else None
        )
        for i, frame in enumerate(frames):
            if i in held:
                first = out[held[i]]
                out.append(
                    FrameKeypoints(
                        frame_index=i,
                        pose=first.pose.copy(),
                        validity=dict(first.validity),
                        boxes=dict(first.boxes),
                        found=first.found,
                        reused_from=first.frame_index,
                        face_from_mesh=first.face_from_mesh,
                    )
                )
                continue
            rgb = _check_frame(i, frame)
            result = holistic.process(rgb)
            calls += 1
            from_mesh = False
            if face_mesh is not None and result.face_landmarks is None:
                result = _with_face_of(result, face_mesh.process(rgb))
                from_mesh = result.face_landmarks is not None
            height, width = rgb.shape[:2]
            pose = holistic_to_coco_wholebody(
                result, width, height, confidence_floor=confidence_floor
            )
            out.append(
                FrameKeypoints(
                    frame_index=i,
                    pose=pose,
                    validity=part_validity(pose, COCO_WHOLEBODY),
                    boxes=part_boxes(pose, COCO_WHOLEBODY),
                    found=holistic_found(result),
                    face_from_mesh=from_mesh,
                )
            )
    return KeypointExtraction(frames=out, model_calls=calls)


def low_confidence_points(pose: PoseArray, threshold: float = VISIBLE_CONFIDENCE) -> list[int]:
    """Labelled points (v>0) whose confidence is below ``threshold``, least confident first
    -- the review queue of one frame. Unlabelled points are missing, not doubtful."""
    labelled = pose[:, V] > V_UNLABELLED
    idx = np.flatnonzero(labelled & (pose[:, CONF] < threshold))
    order = np.lexsort((idx, pose[idx, CONF]))
    return [int(i) for i in idx[order]]
