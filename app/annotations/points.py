"""The storage codec of one frame's keypoints (``KeypointFrame.points`` / ``model_points``).

A pose is the canonical (K, 4) float32 array ``x, y, v, conf`` of
:mod:`app.projects.skeletons`; storage adds, per point, who set it (model or human), and
packs each point into 12 bytes: x, y float32, v uint8, source uint8, conf float16.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from app.projects.skeletons import CONF, PoseArray, V, X, Y

POINT_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("v", "u1"), ("src", "u1"), ("conf", "<f2")])
SRC_MODEL, SRC_HUMAN = 0, 1
BoolArray = npt.NDArray[np.bool_]


def encode_points(pose: PoseArray, human: BoolArray | None = None) -> bytes:
    """Pack a (K, 4) pose and a per-point human mask (default: all model) into bytes."""
    pose = np.asarray(pose, dtype=np.float32)
    if pose.ndim != 2 or pose.shape[1] != 4:
        raise ValueError(f"a pose is a (K, 4) array, got shape {pose.shape}")
    packed = np.zeros(len(pose), dtype=POINT_DTYPE)
    packed["x"], packed["y"] = pose[:, X], pose[:, Y]
    packed["v"] = np.clip(pose[:, V], 0, 2).astype(np.uint8)
    packed["conf"] = np.clip(pose[:, CONF], 0.0, 1.0)
    if human is not None:
        packed["src"] = np.where(np.asarray(human, dtype=bool), SRC_HUMAN, SRC_MODEL)
    return packed.tobytes()


def decode_points(data: bytes, k: int | None = None) -> tuple[PoseArray, BoolArray]:
    """Inverse of :func:`encode_points`: the (K, 4) pose and the human mask."""
    packed = np.frombuffer(data, dtype=POINT_DTYPE)
    if k is not None and len(packed) != k:
        raise ValueError(f"stored frame has {len(packed)} points, expected {k}")
    poses, human = _unpack(packed[np.newaxis])
    return poses[0], human[0]


def decode_frames(frames: Sequence[bytes]) -> tuple[npt.NDArray[np.float32], BoolArray]:
    """Many frames of one track (same K) at once: (N, K, 4) poses and (N, K) human masks, in
    one numpy pass instead of one per frame."""
    packed = np.frombuffer(b"".join(frames), dtype=POINT_DTYPE).reshape(len(frames), -1)
    return _unpack(packed)


def _unpack(packed: npt.NDArray[np.void]) -> tuple[npt.NDArray[np.float32], BoolArray]:
    poses = np.empty((*packed.shape, 4), dtype=np.float32)
    poses[..., X], poses[..., Y] = packed["x"], packed["y"]
    poses[..., V] = packed["v"]
    poses[..., CONF] = packed["conf"].astype(np.float32)
    return poses, packed["src"] == SRC_HUMAN
