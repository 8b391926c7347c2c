"""OpenPose-style per-frame JSON, the input of pose-driven animation models.

One file per frame, ``openpose/<clip>/<clip>_<frame:012d>_keypoints.json`` (OpenPose's own
naming), with ``people`` in track order: only tracks with a labelled point on the frame, so a
frame with nobody labelled has ``"people": []`` (what OpenPose writes when it finds nobody).
Each point is an (x, y, c) triple: c is the stored confidence for labelled points (v 1 or 2)
and 0 for unlabelled ones, which are (0, 0, 0).

* ``pose_keypoints_2d``: BODY_25, see :data:`BODY25`; Neck and MidHip are the midpoints of
  the shoulders and of the hips (present only when both ends are labelled, c = the lower).
* ``face_keypoints_2d``: OpenPose's 70 face points: COCO-WholeBody's 68 (the same iBUG
  order) then the right and left pupils, each the centre of its six eye-contour points
  (present only when all six are labelled).
* ``hand_left_keypoints_2d`` / ``hand_right_keypoints_2d``: the 21 hand points, whose order
  COCO-WholeBody took from OpenPose.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.export.formats.bundle import ClipBundle, SnapshotContext, dumps, wholebody_frames
from app.projects.skeletons import CONF, PoseArray, V, X, Y

# BODY_25 point -> COCO-WholeBody index, or a pair whose midpoint it is.
BODY25: tuple[int | tuple[int, int], ...] = (
    0,  # Nose
    (5, 6),  # Neck
    6, 8, 10,  # RShoulder, RElbow, RWrist
    5, 7, 9,  # LShoulder, LElbow, LWrist
    (11, 12),  # MidHip
    12, 14, 16,  # RHip, RKnee, RAnkle
    11, 13, 15,  # LHip, LKnee, LAnkle
    2, 1, 4, 3,  # REye, LEye, REar, LEar
    17, 18, 19,  # LBigToe, LSmallToe, LHeel
    20, 21, 22,  # RBigToe, RSmallToe, RHeel
)  # fmt: skip
FACE = slice(23, 91)
RIGHT_EYE = tuple(range(23 + 36, 23 + 42))  # iBUG 36-41: the subject's right eye
LEFT_EYE = tuple(range(23 + 42, 23 + 48))
LEFT_HAND = slice(91, 112)
RIGHT_HAND = slice(112, 133)


def _point(x: float, y: float, c: float) -> list[float]:
    return [round(float(x), 2), round(float(y), 2), round(float(c), 3)]


def _triples(pose: PoseArray) -> list[float]:
    out: list[float] = []
    for p in pose:
        out += _point(p[X], p[Y], p[CONF]) if p[V] > 0 else [0, 0, 0]
    return out


def _mean_point(pose: PoseArray, idx: tuple[int, ...]) -> list[float]:
    pts = pose[list(idx)]
    if not (pts[:, V] > 0).all():
        return [0, 0, 0]
    return _point(pts[:, X].mean(), pts[:, Y].mean(), pts[:, CONF].min())


def body25(pose: PoseArray) -> list[float]:
    out: list[float] = []
    for src in BODY25:
        if isinstance(src, tuple):
            out += _mean_point(pose, src)
        else:
            out += _triples(pose[src : src + 1])
    return out


def person(pose: PoseArray, person_id: int) -> dict[str, Any]:
    """One ``people`` entry from a 133-point pose."""
    face = _triples(pose[FACE]) + _mean_point(pose, RIGHT_EYE) + _mean_point(pose, LEFT_EYE)
    return {
        "person_id": [person_id],
        "pose_keypoints_2d": body25(pose),
        "face_keypoints_2d": face,
        "hand_left_keypoints_2d": _triples(pose[LEFT_HAND]),
        "hand_right_keypoints_2d": _triples(pose[RIGHT_HAND]),
        "pose_keypoints_3d": [],
        "face_keypoints_3d": [],
        "hand_left_keypoints_3d": [],
        "hand_right_keypoints_3d": [],
    }


def labelled(pose: PoseArray) -> bool:
    """Whether a person stands behind the pose: at least one point is labelled."""
    return bool((pose[:, V] > 0).any())


def frame_path(key: str, frame: int) -> str:
    return f"openpose/{key}/{key}_{frame:012d}_keypoints.json"


class OpenPoseWriter:
    def __init__(self, out: Path, ctx: SnapshotContext) -> None:
        self.out = out

    def add(self, clip: ClipBundle) -> None:
        for frame, people in wholebody_frames(clip):
            doc = {
                "version": 1.3,
                "canvas_width": clip.clip["width"],
                "canvas_height": clip.clip["height"],
                "people": [person(pose, track) for track, pose in people if labelled(pose)],
            }
            path = self.out / frame_path(clip.key, frame)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(dumps(doc) + "\n", encoding="utf-8")

    def close(self) -> None:
        pass


def openpose_writer(out: Path, ctx: SnapshotContext) -> OpenPoseWriter:
    return OpenPoseWriter(out, ctx)
