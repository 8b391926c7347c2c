"""A clip as its shots for the training packages: the frame ranges, the source frames of each
shot decoded once in order, the labelled points of each track within a shot, and the captions.

Every package writes per shot, so this is what they share. A clip whose annotation has no
shots is one shot over all its frames. Only labelled points count (v > 0, the export's notion
of labelled); every other point is written as (0, 0, 0).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from app.core.errors import Invalid
from app.export.formats.bundle import ClipBundle, plain, wholebody_poses
from app.media.decode import Image, iter_frames
from app.media.encode import as_fps
from app.projects.skeletons import V

Points = npt.NDArray[np.float32]
"""(frames, 133, 3) x, y, v of a track over a shot; unlabelled points are all zero."""


@dataclass(frozen=True)
class ShotSpan:
    """Frames ``start`` (inclusive) to ``end`` (exclusive) of a clip, the ``index``-th shot."""

    index: int
    start: int
    end: int
    shot_id: int | None  # the annotation's shot row; None when the clip has no shots

    @property
    def frames(self) -> int:
        return self.end - self.start

    def name(self, clip_key: str) -> str:
        """The shot's folder inside a package: ``<clip>_s<index:03d>``."""
        return f"{clip_key}_s{self.index:03d}"


def clip_fps(clip: ClipBundle) -> Fraction:
    return as_fps(float(clip.clip["fps"]))


def clip_shots(clip: ClipBundle) -> list[ShotSpan]:
    """The annotation's shots in frame order, cut to the clip's frames; the whole clip when
    it has none."""
    count = int(clip.clip["frame_count"] or 0)
    spans = [
        ShotSpan(0, max(0, int(s["start_frame"])), min(count, int(s["end_frame"])), int(s["id"]))
        for s in clip.shots
    ]
    spans = [s for s in spans if s.end > s.start]
    if not spans:
        return [ShotSpan(0, 0, count, None)] if count else []
    return [ShotSpan(n, s.start, s.end, s.shot_id) for n, s in enumerate(spans)]


def source_video(clip: ClipBundle) -> Path:
    """A file on this host with the clip's source video, from its store (Invalid when it is
    gone: packages need pixels)."""
    try:
        return clip.source_file()
    except FileNotFoundError as exc:
        message = f"The file of clip {clip.clip['id']} is missing; cannot write packages."
        raise Invalid(message) from exc


def shot_frames(
    clip: ClipBundle, shots: list[ShotSpan]
) -> Iterator[tuple[ShotSpan, Iterator[tuple[int, Image]]]]:
    """Each shot with an iterator of its (frame index, RGB frame), from one decoding pass of
    the clip's file (consume a shot's frames before asking for the next shot)."""
    owner = {f: shot for shot in shots for f in range(shot.start, shot.end)}
    numbered = ((n, rgb) for n, rgb in enumerate(iter_frames(source_video(clip))) if n in owner)
    yield from itertools.groupby(numbered, key=lambda item: owner[item[0]])


def labelled_points(poses: npt.NDArray[np.float32]) -> Points:
    """(..., K, 4) poses as (..., K, 3) x, y, v with every unlabelled point (v = 0) zeroed."""
    out = np.ascontiguousarray(poses[..., :3], dtype=np.float32)
    out[poses[..., V] <= 0] = 0
    return out


@dataclass(frozen=True)
class ShotTrack:
    """One COCO-WholeBody track over one shot."""

    track: int  # the track's index in the clip (as in the other formats)
    character: str
    kind: str
    points: Points  # (shot frames, 133, 3)


def shot_tracks(clip: ClipBundle, shot: ShotSpan) -> list[ShotTrack]:
    """The clip's COCO-compatible tracks over ``shot``, those with a labelled point in it; a
    frame without a stored pose is all zero."""
    out: list[ShotTrack] = []
    for index, character, track in clip.tracks():
        poses = wholebody_poses(track, character.skeleton, clip.label_rule)
        if poses is None:
            continue
        points = np.zeros((shot.frames, poses.shape[1], 3), dtype=np.float32)
        for frame, pose in zip(track.frames, labelled_points(poses), strict=True):
            if shot.start <= frame.frame_index < shot.end:
                points[frame.frame_index - shot.start] = pose
        if (points[..., 2] > 0).any():
            out.append(ShotTrack(index, character.name, plain(character.kind), points))
    return out


def captions_of(clip: ClipBundle, shot: ShotSpan) -> dict[str, dict[str, str]]:
    """{"clip": {field: text}, "shot": {field: text}} of the shot (empty texts left out)."""
    out: dict[str, dict[str, str]] = {"clip": {}, "shot": {}}
    for cap in clip.captions:
        level, target = plain(cap["level"]), int(cap["target_id"])
        if not cap["text"]:
            continue
        if level == "clip":
            out["clip"][cap["field"]] = cap["text"]
        elif level == "shot" and shot.shot_id is not None and target == shot.shot_id:
            out["shot"][cap["field"]] = cap["text"]
    return out


def shot_record(clip: ClipBundle, shot: ShotSpan, subset: str) -> dict[str, Any]:
    """The manifest columns every package has: which clip and frames, at what rate."""
    fps = clip_fps(clip)
    return {
        "subset": subset,
        "clip": clip.key,
        "clip_id": clip.clip["id"],
        "external_id": clip.clip["external_id"],
        "shot": shot.index,
        "start_frame": shot.start,
        "end_frame": shot.end,
        "frames": shot.frames,
        "fps": float(fps),
        "start_s": round(float(shot.start / fps), 6),
        "duration_s": round(float(shot.frames / fps), 6),
        "caption": captions_of(clip, shot),
    }
