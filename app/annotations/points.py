"""The storage codec of one frame's keypoints (``KeypointFrame.points`` / ``model_points``).

A pose is the canonical (K, 4) float32 array ``x, y, v, conf`` of
:mod:`app.projects.skeletons`; storage adds, per point, its *source* (who stands behind it),
and packs each point into 12 bytes: x, y float32, v uint8, source uint8, conf float16.

Sources: ``SRC_MODEL`` (the model's guess, untouched), ``SRC_PERSON`` (a person placed or
moved it), ``SRC_ACCEPTED`` (a person accepted the model's point as it was), ``SRC_TRACKED``
(point tracking carried a person's point from a keyframe; like the model's guess it is not
labelled until a person accepts or moves it). Rows written
before ``SRC_ACCEPTED`` existed hold only 0 and 1 and mean the same. A *suggestion* is a model
point stored as not labelled (v=0) that still carries the model's position and confidence:
the model placed it outside the frame or below the project's confidence floor.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from app.projects.skeletons import CONF, PoseArray, V, X, Y

POINT_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("v", "u1"), ("src", "u1"), ("conf", "<f2")])
SRC_MODEL, SRC_PERSON, SRC_ACCEPTED, SRC_TRACKED = 0, 1, 2, 3
MACHINE_SOURCES = (SRC_MODEL, SRC_TRACKED)  # guesses no person stands behind yet
BoolArray = npt.NDArray[np.bool_]
SourceArray = npt.NDArray[np.uint8]


def encode_points(pose: PoseArray, sources: SourceArray | BoolArray | None = None) -> bytes:
    """Pack a (K, 4) pose and its per-point sources into bytes.

    ``sources`` is one ``SRC_*`` per point, or a boolean mask of the points a person placed
    (True -> ``SRC_PERSON``); None means all the model's."""
    pose = np.asarray(pose, dtype=np.float32)
    if pose.ndim != 2 or pose.shape[1] != 4:
        raise ValueError(f"a pose is a (K, 4) array, got shape {pose.shape}")
    packed = np.zeros(len(pose), dtype=POINT_DTYPE)
    packed["x"], packed["y"] = pose[:, X], pose[:, Y]
    packed["v"] = np.clip(pose[:, V], 0, 2).astype(np.uint8)
    packed["conf"] = np.clip(pose[:, CONF], 0.0, 1.0)
    if sources is not None:
        packed["src"] = as_sources(sources)
    return packed.tobytes()


def as_sources(sources: SourceArray | BoolArray) -> SourceArray:
    """Sources as ``SRC_*`` codes; a boolean mask marks the person's points."""
    array = np.asarray(sources)
    if array.dtype == np.bool_:
        return np.where(array, SRC_PERSON, SRC_MODEL).astype(np.uint8)
    if array.size and (array.min() < SRC_MODEL or array.max() > SRC_TRACKED):
        raise ValueError("a point's source is 0 (model), 1 (person), 2 (accepted) or 3 (tracked)")
    return array.astype(np.uint8)


def by_person(sources: SourceArray) -> BoolArray:
    """Points a person stands behind (placed, moved or accepted): not a machine's guess."""
    return ~np.isin(sources, MACHINE_SOURCES)


def decode_points(data: bytes, k: int | None = None) -> tuple[PoseArray, BoolArray]:
    """Inverse of :func:`encode_points`: the (K, 4) pose and the mask of the points a person
    stands behind (placed, moved or accepted)."""
    pose, sources = decode_with_sources(data, k)
    return pose, by_person(sources)


def decode_with_sources(data: bytes, k: int | None = None) -> tuple[PoseArray, SourceArray]:
    """The (K, 4) pose and each point's ``SRC_*`` code."""
    packed = np.frombuffer(data, dtype=POINT_DTYPE)
    if k is not None and len(packed) != k:
        raise ValueError(f"stored frame has {len(packed)} points, expected {k}")
    poses, sources = frames_with_sources_of(packed[np.newaxis])
    return poses[0], sources[0]


def decode_frames(frames: Sequence[bytes]) -> tuple[npt.NDArray[np.float32], BoolArray]:
    """Many frames of one track (same K) at once: (N, K, 4) poses and (N, K) masks of the
    points a person stands behind, in one numpy pass instead of one per frame."""
    poses, sources = decode_frames_with_sources(frames)
    return poses, by_person(sources)


def decode_frames_with_sources(
    frames: Sequence[bytes],
) -> tuple[npt.NDArray[np.float32], SourceArray]:
    """Many frames of one track at once: (N, K, 4) poses and (N, K) ``SRC_*`` codes."""
    packed = np.frombuffer(b"".join(frames), dtype=POINT_DTYPE).reshape(len(frames), -1)
    return frames_with_sources_of(packed)


def frames_with_sources_of(
    packed: npt.NDArray[np.void],
) -> tuple[npt.NDArray[np.float32], SourceArray]:
    """Packed points (any leading shape) -> poses and ``SRC_*`` codes."""
    poses = np.empty((*packed.shape, 4), dtype=np.float32)
    poses[..., X], poses[..., Y] = packed["x"], packed["y"]
    poses[..., V] = packed["v"]
    poses[..., CONF] = packed["conf"].astype(np.float32)
    return poses, packed["src"].astype(np.uint8)


def suggestions(pose: PoseArray, sources: SourceArray | BoolArray) -> BoolArray:
    """The model's unlabelled guesses: v=0, the model's, with a confidence (a point nobody
    placed has confidence 0)."""
    return (pose[..., V] == 0) & (as_sources(sources) == SRC_MODEL) & (pose[..., CONF] > 0)
