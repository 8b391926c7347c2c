"""One clip's approved annotation as plain data, and helpers every format shares.

The export service fills a :class:`ClipBundle` from the database (rows as dicts, no ORM
objects) and hands it to each format writer; writers never query anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

import numpy as np
import orjson

from app.annotations.points import decode_frames_with_sources
from app.core.storage import get_storage
from app.core.storage_api import Storage
from app.export.labels import LabelRule, exported_poses
from app.projects.skeletons import COCO_WHOLEBODY, Box, PoseArray

# Built-in skeletons that map onto COCO-WholeBody's 133 points: (first index, point count).
WHOLEBODY_SLOTS: dict[str, tuple[int, int]] = {
    "coco_wholebody": (0, 133),
    "coco17": (0, 17),
    "face68": (23, 68),
}
SUBSETS = ("i2v", "pose", "face_video", "face_audio")
T = TypeVar("T")


def plain(value: Any) -> Any:
    """Database values as JSON values: enums by value, datetimes (UTC, see UTCDateTime) as
    ISO strings."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    return value


_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def dumps(value: Any) -> str:
    """Canonical JSON (sorted keys, no spaces, UTF-8): equal data gives equal bytes.

    Database values may still be enums and datetimes here: they are made :func:`plain` only
    when a writer actually serialises them (most formats print few of a row's columns)."""
    return orjson.dumps(value, default=plain, option=_CANONICAL).decode()


class JsonArray:
    """Writes ``[item,item,...]`` to a text stream one item at a time."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.count = 0

    def open(self) -> None:
        self.out.write("[")

    def add(self, item: Any) -> None:
        self.out.write(("," if self.count else "") + dumps(item))
        self.count += 1

    def close(self) -> None:
        self.out.write("]")


@dataclass
class FrameData:
    id: int
    frame_index: int
    points: bytes
    model_points: bytes | None
    is_keyframe: bool
    part_valid: int
    flags: list[str]
    version: int
    updated_by: str | None
    box: list[float] | None = None  # the person-drawn character box [x, y, w, h]


@dataclass
class TrackData:
    id: int
    num_points: int
    source: str
    status: str
    version: int
    updated_by: str | None
    frames: list[FrameData] = field(default_factory=list)


@dataclass
class CharacterData:
    id: int
    name: str
    kind: str
    skeleton: str
    reference_frame: int | None
    emotions: list[Any]
    source: str
    status: str
    version: int
    updated_by: str | None
    drawing_runs: list[Any] = field(default_factory=list)  # app.media.drawings.DrawingRun JSON
    timing: str | None = None  # ones, twos, threes or mixed; None: not looked for
    tracks: list[TrackData] = field(default_factory=list)


@dataclass
class ClipBundle:
    """A clip and its exported (primary, approved) annotation with every child node.

    ``clip``, ``annotation`` and the node dicts hold column values as read (enums and
    datetimes are made :func:`plain` by :func:`dumps`), including database ids (formats that
    must be id-free translate them).
    """

    clip: dict[str, Any]
    annotation: dict[str, Any]
    shots: list[dict[str, Any]] = field(default_factory=list)
    characters: list[CharacterData] = field(default_factory=list)
    captions: list[dict[str, Any]] = field(default_factory=list)
    speech: list[dict[str, Any]] = field(default_factory=list)
    revisions: list[dict[str, Any]] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    agreement: list[dict[str, Any]] = field(default_factory=list)
    media: str | None = None  # path of the media copy inside the snapshot, when copied
    label_rule: LabelRule = field(default_factory=LabelRule)  # the project's, set by the snapshot
    split: str = "train"  # train, val or test (app.export.splits)
    # Where ``clip["storage_key"]`` is read (app.clips.paths.clip_store), set by the snapshot:
    # the media store, or the bucket of the source the clip was listed in.
    store: Storage = field(default_factory=get_storage)

    @property
    def key(self) -> str:
        return clip_key(self.clip)

    def source_file(self) -> Path:
        """A file on this host with the clip's source video (FileNotFoundError when gone)."""
        return self.store.local_file(str(self.clip["storage_key"]))

    def tracks(self) -> Iterator[tuple[int, CharacterData, TrackData]]:
        """(flat track index, character, track) in export order."""
        n = 0
        for character in self.characters:
            for track in character.tracks:
                yield n, character, track
                n += 1

    @cached_property
    def wholebody(self) -> list[tuple[int, list[int], PoseArray]]:
        """(track index, frame indexes, (frames, 133, 4) poses) of each COCO-compatible track,
        with only the labelled points kept: decoded once for every writer of the clip (read
        after the snapshot set ``label_rule``). The arrays are read-only, as they are shared."""
        out = []
        for index, character, track in self.tracks():
            poses = wholebody_poses(track, character.skeleton, self.label_rule)
            if poses is not None:
                poses.setflags(write=False)
                out.append((index, [frame.frame_index for frame in track.frames], poses))
        return out


@dataclass(frozen=True)
class SnapshotContext:
    """What every writer may print about the snapshot (the only timestamp is ``created_at``)."""

    name: str
    project: dict[str, Any]
    created_at: str
    formats: tuple[str, ...]
    filter: dict[str, Any] = field(default_factory=dict)
    agreement_summary: tuple[dict[str, Any], ...] = ()
    user_roles: Mapping[str, str] = field(default_factory=dict)  # username -> role
    splits: tuple[str, ...] = ("train", "val")  # the splits the snapshot has (test optional)
    image_root: str = "images"  # frame images go to <image_root>/<split>/<clip>/<frame>.<ext>
    image_ext: str = "jpg"


class Writer(Protocol):
    def add(self, clip: ClipBundle) -> None: ...

    def close(self) -> None: ...


def clip_key(clip: Mapping[str, Any]) -> str:
    """A clip's name in exported paths: its content hash prefix, the same on every instance
    that holds the same file (and unique within a project, where content hashes are)."""
    return str(clip["content_hash"])[:16]


def media_name(clip: Mapping[str, Any]) -> str:
    """Where a copy of the clip's file goes inside a snapshot."""
    return f"media/{clip_key(clip)}{Path(str(clip['filename'])).suffix.lower()}"


def wholebody_poses(track: TrackData, skeleton: str, rule: LabelRule) -> PoseArray | None:
    """Every frame of the track laid out on COCO-WholeBody's 133 points, (frames, 133, 4),
    decoded in one pass, with only the labelled points kept (:mod:`app.export.labels`; the
    others are all-zero); None for skeletons that do not map onto it."""
    slot = WHOLEBODY_SLOTS.get(skeleton)
    if slot is None or track.num_points != slot[1] or not track.frames:
        return None
    stored, sources = decode_frames_with_sources([frame.points for frame in track.frames])
    poses = exported_poses(stored, sources, rule, track_status=plain(track.status))
    if slot == (0, COCO_WHOLEBODY.num_keypoints):
        return poses
    full = np.zeros((len(poses), COCO_WHOLEBODY.num_keypoints, 4), dtype=np.float32)
    full[:, slot[0] : slot[0] + slot[1]] = poses
    return full


def wholebody_tracks(clip: ClipBundle) -> Iterator[tuple[int, list[int], PoseArray]]:
    """(track index, frame indexes, (frames, 133, 4) poses) of each COCO-compatible track."""
    yield from clip.wholebody


def drawn_boxes(clip: ClipBundle) -> dict[tuple[int, int], Box]:
    """The person-drawn character boxes of a clip by (track index, frame index); the person
    box formats write them instead of the padded body box (:mod:`app.export.formats.boxes`)."""
    return {
        (index, frame.frame_index): (frame.box[0], frame.box[1], frame.box[2], frame.box[3])
        for index, _, track in clip.tracks()
        for frame in track.frames
        if frame.box is not None
    }


def group_by_frame(
    tracks: Iterable[tuple[int, Sequence[int], Iterable[T]]],
) -> list[tuple[int, list[tuple[int, T]]]]:
    """Per-track values regrouped per frame: (frame, [(track index, value)]) in frame order,
    tracks in the order given."""
    by_frame: dict[int, list[tuple[int, T]]] = {}
    for index, frames, values in tracks:
        for frame, value in zip(frames, values, strict=True):
            by_frame.setdefault(frame, []).append((index, value))
    return sorted(by_frame.items())


def wholebody_frames(clip: ClipBundle) -> list[tuple[int, list[tuple[int, PoseArray]]]]:
    """Frames that have a COCO-compatible track: (frame, [(track index, 133-point pose)])."""
    return group_by_frame(wholebody_tracks(clip))


def r2(value: float) -> float:
    return round(float(value), 2)
