"""Undo and redo of keypoint edits: what an action changed (each frame with its state
before), and putting frames back exactly as they were, through the same version checks and
revision history as any save."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations.keypoint_edits import (
    changed_points,
    editable_track,
    frame_row,
    validate_box,
    validate_points,
    write_pose,
)
from app.annotations.models import KeypointFrame, Track
from app.annotations.payload import FRAME_FIELDS, frame_payload, frame_payloads
from app.annotations.points import (
    SRC_ACCEPTED,
    SRC_MODEL,
    SRC_PERSON,
    SRC_TRACKED,
    BoolArray,
    SourceArray,
    by_person,
    decode_frames_with_sources,
    decode_points,
    decode_with_sources,
    encode_points,
)
from app.annotations.revisions import check_node_version
from app.auth.models import User
from app.core.errors import Invalid
from app.projects.skeletons import CONF, PoseArray, empty_pose

TrackSnapshot = dict[int, tuple[bytes, bool, list[float] | None]]


def snapshot_track(session: Session, track_id: int) -> TrackSnapshot:
    """Every stored frame of a track (points, keyframe mark and character box), to tell later
    what an action changed and how it was before."""
    rows = session.execute(
        select(
            KeypointFrame.frame_index,
            KeypointFrame.points,
            KeypointFrame.is_keyframe,
            KeypointFrame.box,
        ).where(KeypointFrame.track_id == track_id)
    )
    return {index: (points, keyframe, box) for index, points, keyframe, box in rows}


def changed_since(session: Session, track_id: int, snapshot: TrackSnapshot) -> list[dict[str, Any]]:
    """The track's frames that differ from ``snapshot``, each with ``before``: its state in
    the snapshot (an empty pose where the frame had no row), which an undo puts back."""
    session.flush()
    track = session.get_one(Track, track_id)
    empty: tuple[bytes, bool, list[float] | None] = (
        encode_points(empty_pose(track.num_points)),
        False,
        None,
    )
    rows = [
        row
        for row in session.execute(
            select(*FRAME_FIELDS)
            .where(KeypointFrame.track_id == track_id)
            .order_by(KeypointFrame.frame_index)
        )
        if snapshot.get(row.frame_index, empty) != (row.points, row.is_keyframe, row.box)
    ]
    changes = frame_payloads(rows)
    if not rows:
        return changes
    before_points, before_sources = decode_frames_with_sources(
        [snapshot.get(row.frame_index, empty)[0] for row in rows]
    )
    for change, row, pose, sources in zip(
        changes, rows, before_points, before_sources, strict=True
    ):
        change["before"] = {
            "points": pose.tolist(),
            "human": by_person(sources).astype(int).tolist(),
            "tracked": (sources == SRC_TRACKED).astype(int).tolist(),
            "keyframe": snapshot.get(row.frame_index, empty)[1],
            "box": snapshot.get(row.frame_index, empty)[2],
        }
    return changes


def restore_frames(
    session: Session, user: User, track_id: int, states: Sequence[Any], action: str
) -> list[KeypointFrame]:
    """Put frames of a track back as they were (``undo``) or as an edit left them (``redo``):
    points, who set each point, the keyframe mark and the character box.

    Each frame is version-checked like any save (one stale frame refuses them all, nothing
    is written) and recorded as a revision with the action's name. A state says what the
    person saw; the server decides each point's source and confidence from it (see
    :func:`restored_points`), so a client cannot claim a confidence or a source it did not
    earn."""
    track, annotation, clip = editable_track(session, user, track_id)
    written = []
    for state in states:
        pose = validate_points(state.points, track.num_points, clip)
        confidence = np.array([p[3] if len(p) > 3 else 1.0 for p in state.points])
        if not np.all((confidence >= 0) & (confidence <= 1)):  # NaN fails too
            raise Invalid(f"Frame {state.frame}: a confidence is a number from 0 to 1.")
        pose[:, CONF] = confidence
        person = _per_point(state.frame, state.human, track.num_points, "who set it")
        tracked = _per_point(state.frame, state.tracked or [0] * track.num_points,
                             track.num_points, "whether tracking placed it")  # fmt: skip
        row = frame_row(session, track, state.frame, clip)
        check_node_version("frame", row.version, state.version, frame_payload(row))
        model = decode_points(row.model_points, track.num_points)[0] if row.model_points else None
        pose, sources = restored_points(row.points, model, pose, person, tracked)
        write_pose(session, user, annotation, row, pose, sources, action, state.keyframe,
                   exact=True, box=validate_box(state.box, clip))  # fmt: skip
        written.append(row)
    return written


def _per_point(frame: int, flags: Sequence[int], k: int, what: str) -> BoolArray:
    """A state's 0-or-1-per-point list as a mask (Invalid unless one 0 or 1 per point)."""
    if len(flags) != k or any(f not in (0, 1) for f in flags):
        raise Invalid(f"Frame {frame}: give 0 or 1 per point for {what}.")
    return np.asarray(flags) == 1


def restored_points(
    stored: bytes,
    model: PoseArray | None,
    pose: PoseArray,
    person: BoolArray,
    tracked: BoolArray,
) -> tuple[PoseArray, SourceArray]:
    """The pose and sources a restore writes over ``stored``: the client only says which
    points a person stands behind (``person``) and which of the others tracking placed
    (``tracked``: claiming a guess was tracked labels nothing, so it is taken as said).

    A point the restore moves or changes in visibility is the person's (confidence 1) when
    claimed, else a guess. A point it does not change keeps its confidence; claimed, it
    keeps its person's source (a guess becomes accepted, as a redo of an accept); not
    claimed, it goes back to the tracker or the model. A point given back to the model takes
    the model draft's confidence where the draft has it there; elsewhere a moved one takes the
    state's (a guess copied from another drawing, or tracked) and an unmoved one keeps its own."""
    old, old_sources = decode_with_sources(stored)
    changed = changed_points(old, pose)
    pose = pose.copy()
    sources = np.where(person, old_sources, np.where(tracked, SRC_TRACKED, SRC_MODEL))
    sources = sources.astype(np.uint8)
    sources[person & ~by_person(old_sources)] = SRC_ACCEPTED
    sources[changed & person] = SRC_PERSON
    pose[~changed, CONF] = old[~changed, CONF]
    pose[changed & person, CONF] = 1.0
    if model is not None:
        to_model = (sources == SRC_MODEL) & (changed | (old_sources != SRC_MODEL))
        drafted = to_model & ~changed_points(model, pose)
        pose[drafted, CONF] = model[drafted, CONF]
    return pose, sources
