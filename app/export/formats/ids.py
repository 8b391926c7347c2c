"""Stable ids of exported frames and people: the same in every snapshot, subset and format.

A researcher who trains on one snapshot and evaluates on another (or on a subset of it)
matches results by id, so an id must not depend on what else a snapshot holds. Ids are
pure functions of the clip's database id, the frame index and the track's position:

* image id = ``clip_id * 10**6 + frame``
* annotation id = ``image_id * 100 + track``, where ``track`` is the flat track index
  (``track_id`` in COCO, ``person_id`` in OpenPose: character order, then track order).

Bounds keep every id distinct and below 2**53, so it is exact in JSON readers that hold
numbers as doubles: ``0 <= frame < 10**6``, ``0 <= track < 100``,
``1 <= clip_id <= MAX_CLIP_ID`` (90,071,991). Inputs outside them raise ValueError rather
than wrap onto another frame's id.
"""

from __future__ import annotations

FRAMES_PER_CLIP = 10**6
TRACKS_PER_FRAME = 100
JSON_SAFE_MAX = 2**53 - 1
MAX_CLIP_ID = (JSON_SAFE_MAX - (FRAMES_PER_CLIP * TRACKS_PER_FRAME - 1)) // (
    FRAMES_PER_CLIP * TRACKS_PER_FRAME
)


def _check(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} {value} is outside [{low}, {high}]: no stable export id for it")


def image_id(clip_id: int, frame: int) -> int:
    """The id of a clip's frame in every snapshot and format."""
    _check("clip id", clip_id, 1, MAX_CLIP_ID)
    _check("frame index", frame, 0, FRAMES_PER_CLIP - 1)
    return clip_id * FRAMES_PER_CLIP + frame


def annotation_id(clip_id: int, track: int, frame: int) -> int:
    """The id of one track's pose on one frame of a clip, in every snapshot and format."""
    _check("track index", track, 0, TRACKS_PER_FRAME - 1)
    return image_id(clip_id, frame) * TRACKS_PER_FRAME + track
