"""The workspace's read model: an annotation and everything under it as one JSON document."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations.models import (
    Annotation,
    Caption,
    Character,
    KeypointFrame,
    Shot,
    SpeechSegment,
    Track,
)
from app.annotations.points import SRC_TRACKED, by_person, decode_frames_with_sources
from app.clips.models import Clip
from app.projects.skeletons import CONF


def frames_of(session: Session, track_id: int) -> list[KeypointFrame]:
    return list(
        session.scalars(
            select(KeypointFrame)
            .where(KeypointFrame.track_id == track_id)
            .order_by(KeypointFrame.frame_index)
        )
    )


FRAME_FIELDS = (
    KeypointFrame.id,
    KeypointFrame.track_id,
    KeypointFrame.frame_index,
    KeypointFrame.version,
    KeypointFrame.is_keyframe,
    KeypointFrame.flags,
    KeypointFrame.points,
    KeypointFrame.box,
)


def annotation_payload(
    session: Session, annotation: Annotation, *, as_arrays: bool = False
) -> dict[str, Any]:
    """Everything the workspace needs in one JSON document (one query per table)."""
    clip = session.get_one(Clip, annotation.clip_id)
    shots = list(
        session.scalars(
            select(Shot).where(Shot.annotation_id == annotation.id).order_by(Shot.start_frame)
        )
    )
    chars = list(
        session.scalars(
            select(Character).where(Character.annotation_id == annotation.id).order_by(Character.id)
        )
    )
    tracks = (
        list(session.scalars(select(Track).where(Track.character_id.in_([c.id for c in chars]))))
        if chars
        else []
    )
    # Plain rows, not ORM objects: a 300-frame track would fill the identity map for nothing.
    frame_rows = (
        session.execute(
            select(*FRAME_FIELDS)
            .where(KeypointFrame.track_id.in_([t.id for t in tracks]))
            .order_by(KeypointFrame.track_id, KeypointFrame.frame_index)
        ).all()
        if tracks
        else []
    )
    rows_by_track: dict[int, list[Any]] = {t.id: [] for t in tracks}
    for row in frame_rows:
        rows_by_track[row.track_id].append(row)
    frames_by_track = {
        track_id: frame_payloads(rows, as_arrays=as_arrays)
        for track_id, rows in rows_by_track.items()
    }
    captions = list(session.scalars(select(Caption).where(Caption.annotation_id == annotation.id)))
    speech = list(
        session.scalars(
            select(SpeechSegment)
            .where(SpeechSegment.annotation_id == annotation.id)
            .order_by(SpeechSegment.start_s)
        )
    )
    return {
        "annotation": {
            "id": annotation.id,
            "status": annotation.status.value,
            "version": annotation.version,
            "tags": annotation.tags,
            "quality": annotation.quality,
            "timing": annotation.timing,
            "annotator_id": annotation.annotator_id,
        },
        "clip": {
            "id": clip.id,
            "frame_count": clip.frame_count,
            "fps": clip.fps,
            "width": clip.width,
            "height": clip.height,
            "held_runs": clip.held_runs,
            "subsets": clip.subsets,
            "has_audio": clip.has_audio,
        },
        "shots": [
            {
                "id": s.id,
                "start": s.start_frame,
                "end": s.end_frame,
                "camera": s.camera_motion,
                "version": s.version,
                "status": s.status.value,
            }
            for s in shots
        ],
        "characters": [
            {
                "id": c.id,
                "name": c.name,
                "kind": c.kind.value,
                "skeleton": c.skeleton,
                "emotions": c.emotions,
                "drawing_runs": c.drawing_runs,
                "timing": c.timing,
                "version": c.version,
                "status": c.status.value,
                "tracks": [
                    {
                        "id": t.id,
                        "num_points": t.num_points,
                        "version": t.version,
                        "status": t.status.value,
                        "frames": sorted(frames_by_track[t.id], key=lambda f: f["frame"]),
                    }
                    for t in tracks
                    if t.character_id == c.id
                ],
            }
            for c in chars
        ],
        "captions": [
            {
                "id": c.id,
                "level": c.level.value,
                "target_id": c.target_id,
                "field": c.field,
                "text": c.text,
                "model_text": c.model_text,
                "version": c.version,
            }
            for c in captions
        ],
        "speech": [
            {
                "id": s.id,
                "start": s.start_s,
                "end": s.end_s,
                "transcript": s.transcript,
                "version": s.version,
            }
            for s in speech
        ],
    }


class FrameFields(Protocol):
    id: int
    frame_index: int
    version: int
    is_keyframe: bool
    flags: list[str]
    points: bytes
    box: list[float] | None


def frame_payloads(rows: Sequence[FrameFields], *, as_arrays: bool = False) -> list[dict[str, Any]]:
    """Frames of one track for the workspace, decoded together (one numpy pass for the whole
    track instead of one per frame); ``as_arrays`` keeps numpy arrays for orjson's fast path."""
    if not rows:
        return []
    poses, sources = decode_frames_with_sources([r.points for r in rows])
    table = poses.copy()
    table[..., :2] = np.round(poses[..., :2], 2)
    table[..., CONF] = np.round(poses[..., CONF], 3)
    human = by_person(sources).astype(np.uint8)
    tracked = (sources == SRC_TRACKED).astype(np.uint8)
    return [
        {
            "id": row.id,
            "frame": row.frame_index,
            "version": row.version,
            "keyframe": row.is_keyframe,
            "flags": row.flags,
            "points": table[i] if as_arrays else table[i].tolist(),
            "human": human[i] if as_arrays else human[i].tolist(),
            "tracked": tracked[i] if as_arrays else tracked[i].tolist(),
            "box": row.box,
        }
        for i, row in enumerate(rows)
    ]


def frame_payload(row: FrameFields, *, as_arrays: bool = False) -> dict[str, Any]:
    """One frame for the workspace (see :func:`frame_payloads`)."""
    return frame_payloads([row], as_arrays=as_arrays)[0]
