"""MediaPipe Holistic result -> COCO-WholeBody pose array (133, 4).

The full table, its sources and the decisions taken (missing small toes, points outside
the image, per-part confidence, handedness) are in docs/keypoint-mapping.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from app.projects.models import DEFAULT_CONFIDENCE_FLOOR
from app.projects.skeletons import (
    COCO_WHOLEBODY,
    V_HIDDEN,
    V_UNLABELLED,
    V_VISIBLE,
    PoseArray,
    empty_pose,
)

_F64 = npt.NDArray[np.float64]

# MediaPipe's own drawing utilities hide pose landmarks below this visibility
# (mediapipe/python/solutions/drawing_utils.py, _VISIBILITY_THRESHOLD): a labelled model point
# below it is marked occluded (v=1).
VISIBLE_CONFIDENCE = 0.5

# (COCO-WholeBody index, BlazePose index). BlazePose's left/right is the person's, like COCO's.
BODY_FROM_POSE: tuple[tuple[int, int], ...] = (
    (0, 0),  # nose
    (1, 2), (2, 5),  # eyes (BlazePose eye centres, not the inner/outer corners)
    (3, 7), (4, 8),  # ears
    (5, 11), (6, 12), (7, 13), (8, 14), (9, 15), (10, 16),  # shoulders, elbows, wrists
    (11, 23), (12, 24), (13, 25), (14, 26), (15, 27), (16, 28),  # hips, knees, ankles
)  # fmt: skip
# Big toe = BlazePose foot_index (the tip of the foot), heel = heel. BlazePose has no small
# toe: left_small_toe (18) and right_small_toe (21) stay unlabelled (v=0) for people to add.
FEET_FROM_POSE: tuple[tuple[int, int], ...] = ((17, 31), (19, 29), (20, 32), (22, 30))
UNMAPPED_POINTS: tuple[int, ...] = (18, 21)

# face_i (iBUG 68 order) -> FaceMesh vertices whose mean gives the point. From
# github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks (mediapipe2dlib/mp2dlib.py), with one
# change: jaw point 13 uses (361, 288), the mirror of jaw point 3 (132, 58), where the
# original has 361 alone, so the jaw stays left/right symmetric.
FACE_FROM_MESH: tuple[tuple[int, ...], ...] = (
    (127,), (234,), (93,), (132, 58), (58, 172), (136,), (150,), (176,), (152,),  # jaw 0-8
    (400,), (379,), (365,), (397, 288), (361, 288), (323,), (454,), (356,),  # jaw 9-16
    (70,), (63,), (105,), (66,), (107,),  # right brow 17-21 (outer to inner)
    (336,), (296,), (334,), (293,), (300,),  # left brow 22-26 (inner to outer)
    (168, 6), (197, 195), (5,), (4,),  # nose bridge 27-30
    (75,), (97,), (2,), (326,), (305,),  # nostrils 31-35
    (33,), (160,), (158,), (133,), (153,), (144,),  # right eye 36-41
    (362,), (385,), (387,), (263,), (373,), (380,),  # left eye 42-47
    (61,), (39,), (37,), (0,), (267,), (269,), (291,),  # outer lips, upper 48-54
    (321,), (314,), (17,), (84,), (91,),  # outer lips, lower 55-59
    (78,), (82,), (13,), (312,), (308,),  # inner lips, upper 60-64
    (317,), (14,), (87,),  # inner lips, lower 65-67
)  # fmt: skip
FACE_OFFSET = 23
# MediaPipe's 21 hand landmarks are already in COCO-WholeBody's hand order (wrist, then
# thumb/index/middle/ring/pinky from palm to tip), so hand point j -> offset + j.
LEFT_HAND_OFFSET = 91
RIGHT_HAND_OFFSET = 112
HAND_POINTS = 21

# Holistic gives face and hand landmarks no score of their own; each part takes the mean
# visibility of the BlazePose points that anchor it (Holistic crops face and hands from
# these very pose points).
FACE_ANCHORS: tuple[int, ...] = tuple(range(11))  # nose, eyes, ears, mouth
LEFT_HAND_ANCHORS: tuple[int, ...] = (15, 17, 19, 21)  # left wrist, pinky, index, thumb
RIGHT_HAND_ANCHORS: tuple[int, ...] = (16, 18, 20, 22)
# Used only when a face or hand comes without pose landmarks (Holistic never does that).
UNANCHORED_PART_CONFIDENCE = 0.5

HOLISTIC_FIELDS = ("pose_landmarks", "face_landmarks", "left_hand_landmarks",
                   "right_hand_landmarks")  # fmt: skip


@dataclass(frozen=True)
class MappingRow:
    """Where one COCO-WholeBody point comes from (for docs and tooltips)."""

    coco_index: int
    coco_name: str
    source: str  # "pose", "face", "left_hand", "right_hand" or "" when unmapped
    mediapipe_indices: tuple[int, ...]


def mapping_table() -> list[MappingRow]:
    """All 133 points with their MediaPipe origin, in COCO order."""
    origin: dict[int, tuple[str, tuple[int, ...]]] = {}
    for coco, mp in BODY_FROM_POSE + FEET_FROM_POSE:
        origin[coco] = ("pose", (mp,))
    for i, mesh in enumerate(FACE_FROM_MESH):
        origin[FACE_OFFSET + i] = ("face", mesh)
    for j in range(HAND_POINTS):
        origin[LEFT_HAND_OFFSET + j] = ("left_hand", (j,))
        origin[RIGHT_HAND_OFFSET + j] = ("right_hand", (j,))
    return [
        MappingRow(i, name, *origin.get(i, ("", ())))
        for i, name in enumerate(COCO_WHOLEBODY.keypoints)
    ]


def holistic_found(result: Any) -> bool:
    """Whether Holistic found any part at all."""
    return any(getattr(result, f, None) is not None for f in HOLISTIC_FIELDS)


def _optional_field(lm: Any, name: str) -> float | None:
    """A landmark field that may be unset: protobuf reports unset floats as 0.0, so ask
    HasField; plain objects simply lack the attribute."""
    if hasattr(lm, "HasField"):
        return float(getattr(lm, name)) if lm.HasField(name) else None
    value = getattr(lm, name, None)
    return None if value is None else float(value)


def _coords(landmarks: Any, need: int, what: str) -> _F64:
    """(n, 2) normalised x, y of a landmark list."""
    points = landmarks.landmark
    if len(points) < need:
        raise ValueError(f"{what}: expected at least {need} landmarks, got {len(points)}")
    return np.array([(lm.x, lm.y) for lm in points], dtype=np.float64)


def _pose_confidence(landmarks: Any) -> _F64:
    """Visibility per BlazePose point, lowered to presence when that is reported too
    (Holistic's Python API clears presence; missing visibility counts as 1)."""
    conf = []
    for lm in landmarks.landmark:
        vis = _optional_field(lm, "visibility")
        presence = _optional_field(lm, "presence")
        c = 1.0 if vis is None else vis
        conf.append(c if presence is None else min(c, presence))
    return np.clip(np.array(conf, dtype=np.float64), 0.0, 1.0)


def _place(
    pose: PoseArray,
    coco_indices: Sequence[int],
    xy_norm: _F64,
    conf: _F64,
    width: int,
    height: int,
    confidence_floor: float,
) -> None:
    """Write points in pixels. Inside the image at or above ``confidence_floor`` a point is
    labelled: v=2 from ``VISIBLE_CONFIDENCE`` up, else v=1. Outside the image or below the
    floor it is a *suggestion*: v=0 (not labelled) at the model's own, unclamped position,
    with its confidence, for a person to accept or move."""
    x = xy_norm[:, 0] * width
    y = xy_norm[:, 1] * height
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    idx = list(coco_indices)
    pose[idx, 0] = x
    pose[idx, 1] = y
    visibility = np.where(conf >= VISIBLE_CONFIDENCE, V_VISIBLE, V_HIDDEN)
    pose[idx, 2] = np.where(inside & (conf >= confidence_floor), visibility, V_UNLABELLED)
    pose[idx, 3] = conf


def holistic_to_coco_wholebody(
    result: Any,
    width: int,
    height: int,
    *,
    confidence_floor: float = DEFAULT_CONFIDENCE_FLOOR,
) -> PoseArray:
    """Map one ``mp.solutions.holistic`` result for a width x height image to a (133, 4) pose.

    ``result`` needs ``pose_landmarks`` (33), ``face_landmarks`` (468 or 478),
    ``left_hand_landmarks`` and ``right_hand_landmarks`` (21 each); each may be None, and
    its points are left unlabelled (v=0, x=y=conf=0). Holistic's left hand is the
    person's left hand, like BlazePose's and COCO's "left".
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    pose = empty_pose(COCO_WHOLEBODY.num_keypoints)

    def put(indices: Sequence[int], xy: _F64, conf: _F64) -> None:
        _place(pose, indices, xy, conf, width, height, confidence_floor)

    body_conf: _F64 | None = None
    if result.pose_landmarks is not None:
        xy = _coords(result.pose_landmarks, 33, "pose_landmarks")
        body_conf = _pose_confidence(result.pose_landmarks)
        pairs = BODY_FROM_POSE + FEET_FROM_POSE
        src = [mp for _, mp in pairs]
        put([c for c, _ in pairs], xy[src], body_conf[src])

    def part_conf(anchors: tuple[int, ...], n: int) -> _F64:
        if body_conf is None:
            return np.full(n, UNANCHORED_PART_CONFIDENCE)
        return np.full(n, float(body_conf[list(anchors)].mean()))

    if result.face_landmarks is not None:
        mesh = _coords(result.face_landmarks, 468, "face_landmarks")
        xy = np.array([mesh[list(ix)].mean(axis=0) for ix in FACE_FROM_MESH])
        face_idx = range(FACE_OFFSET, FACE_OFFSET + len(FACE_FROM_MESH))
        put(face_idx, xy, part_conf(FACE_ANCHORS, len(xy)))

    for field_name, offset, anchors in (
        ("left_hand_landmarks", LEFT_HAND_OFFSET, LEFT_HAND_ANCHORS),
        ("right_hand_landmarks", RIGHT_HAND_OFFSET, RIGHT_HAND_ANCHORS),
    ):
        hand = getattr(result, field_name)
        if hand is not None:
            xy = _coords(hand, HAND_POINTS, field_name)[:HAND_POINTS]
            hand_idx = range(offset, offset + HAND_POINTS)
            put(hand_idx, xy, part_conf(anchors, HAND_POINTS))
    return pose
