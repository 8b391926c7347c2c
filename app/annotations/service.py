"""The human side of annotations: a person's copy of the model draft and every edit to it.

Every edit checks the caller may edit (the annotation's owner while it is a draft or was
rejected), checks the node's ``version`` (a stale save raises Conflict carrying the current
version, never overwriting it), and appends a Revision with before/after.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np
from sqlalchemy import and_, bindparam, delete, exists, insert, select
from sqlalchemy.orm import Session

from app.annotations.drafts import find_model_annotation
from app.annotations.models import (
    Annotation,
    AnnotationKind,
    Caption,
    CaptionLevel,
    Character,
    CharacterKind,
    KeypointFrame,
    NodeStatus,
    Revision,
    Shot,
    Source,
    SpeechSegment,
    Track,
)
from app.annotations.points import decode_frames, decode_points, encode_points
from app.annotations.skeletons import CONF, PoseArray, V, X, Y, empty_pose
from app.auth.models import Role, User
from app.batches.assignments import holds_clip
from app.batches.claims import next_clip
from app.batches.models import Assignment, AssignmentState
from app.clips.models import Clip
from app.core.db import describe_lost_races, utcnow
from app.core.errors import Conflict, Forbidden, Invalid, NotFound
from app.projects.service import project_skeleton

EDITABLE = (NodeStatus.draft, NodeStatus.rejected)
MOVE_EPSILON = 0.01  # px: a point "changed" when it moved more than this


# ---------------------------------------------------------------- reading and opening


def get_annotation(session: Session, annotation_id: int) -> Annotation:
    annotation = session.get(Annotation, annotation_id)
    if annotation is None:
        raise NotFound(f"No annotation {annotation_id}.")
    return annotation


def check_visible(session: Session, user: User, annotation: Annotation) -> None:
    """Staff see every annotation; an annotator only their own, and only while they hold its
    clip: once every assignment of theirs on it was released, it looks absent (404) like
    anyone else's. (An annotation never tied to an assignment, made by a script, stays
    its owner's.)"""
    if user.role != Role.annotator:
        return
    had_it = exists().where(
        Assignment.clip_id == annotation.clip_id, Assignment.annotator_id == user.id
    )
    released = and_(had_it, ~holds_clip(user.id, annotation.clip_id))
    if annotation.annotator_id != user.id or session.scalar(select(released)):
        raise NotFound(f"No annotation {annotation.id}.")


def visible_annotation(session: Session, user: User, annotation_id: int) -> Annotation:
    annotation = get_annotation(session, annotation_id)
    check_visible(session, user, annotation)
    return annotation


def open_annotation(session: Session, clip: Clip, user: User) -> Annotation:
    """The user's annotation of the clip, created on first open as a copy of the model draft."""
    existing = session.scalar(
        select(Annotation).where(
            Annotation.clip_id == clip.id,
            Annotation.annotator_id == user.id,
            Annotation.kind == AnnotationKind.human,
        )
    )
    if existing is not None:
        return existing
    draft = find_model_annotation(session, clip.id)
    annotation = Annotation(
        clip_id=clip.id,
        kind=AnnotationKind.human,
        annotator_id=user.id,
        tags=dict(draft.tags) if draft else {},
        quality=dict(draft.quality) if draft else {},
        timing=(draft.timing if draft else None) or clip.detected_timing,
    )
    session.add(annotation)
    session.flush()
    if draft is not None:
        _copy_children(session, draft, annotation)
    _record(
        session,
        annotation,
        "annotation",
        annotation.id,
        1,
        "create",
        user,
        Source.system,
        None,
        {"from_model": draft.id if draft else None},
    )
    return annotation


RELEASED = "This assignment was released (taken back, or its lease ran out). Ask for the next clip."


def assignment_work(
    session: Session, user: User, assignment_id: int
) -> tuple[Assignment, Annotation | None]:
    """An assignment the user may see (annotators only their own) and its annotation, None
    until its annotator starts it. Looking changes nothing."""
    assignment = session.get(Assignment, assignment_id)
    if assignment is None or (user.role == Role.annotator and assignment.annotator_id != user.id):
        raise NotFound(f"No assignment {assignment_id}.")
    if assignment.state == AssignmentState.released:
        raise Forbidden(RELEASED)
    if assignment.annotation_id is None:
        return assignment, None
    return assignment, visible_annotation(session, user, assignment.annotation_id)


def open_assignment(
    session: Session, user: User, assignment_id: int
) -> tuple[Assignment, Annotation]:
    """Start (or resume) work on one's own assignment: its annotation (a copy of the model
    draft on the first start), its state in progress. Runs on a POST only (the claim of the
    next clip, or Start); only the assigned annotator starts their work."""
    assignment, _ = assignment_work(session, user, assignment_id)
    if assignment.annotator_id != user.id:
        raise Forbidden("Only the annotator it is assigned to starts work on this clip.")
    clip = session.get_one(Clip, assignment.clip_id)
    annotation = open_annotation(session, clip, user)
    assignment.annotation_id = annotation.id
    if assignment.state == AssignmentState.assigned:
        assignment.state = AssignmentState.in_progress
        assignment.started_at = assignment.started_at or utcnow()
    return assignment, annotation


def claim_next_clip(
    session: Session, annotator: User, *, batch_id: int | None = None
) -> Assignment | None:
    """The annotator's next clip from their queue (their unfinished one first), started:
    what Next clip does on the web, over the API and in the CLI. None when nothing waits."""
    assignment = next_clip(session, annotator, batch_id=batch_id)
    if assignment is not None:
        open_assignment(session, annotator, assignment.id)
    return assignment


def _copy_children(session: Session, source: Annotation, target: Annotation) -> None:
    shot_ids: dict[int, int] = {}
    for shot in session.scalars(
        select(Shot).where(Shot.annotation_id == source.id).order_by(Shot.start_frame)
    ):
        copy = Shot(
            annotation_id=target.id,
            start_frame=shot.start_frame,
            end_frame=shot.end_frame,
            camera_motion=shot.camera_motion,
            source=shot.source,
        )
        session.add(copy)
        session.flush()
        shot_ids[shot.id] = copy.id
    char_ids: dict[int, int] = {}
    for char in session.scalars(select(Character).where(Character.annotation_id == source.id)):
        copy_char = Character(
            annotation_id=target.id,
            name=char.name,
            kind=char.kind,
            skeleton=char.skeleton,
            reference_frame=char.reference_frame,
            emotions=list(char.emotions),
            source=char.source,
        )
        session.add(copy_char)
        session.flush()
        char_ids[char.id] = copy_char.id
        for track in session.scalars(select(Track).where(Track.character_id == char.id)):
            copy_track = Track(
                character_id=copy_char.id, num_points=track.num_points, source=track.source
            )
            session.add(copy_track)
            session.flush()
            rows = session.execute(
                select(
                    KeypointFrame.frame_index,
                    KeypointFrame.points,
                    KeypointFrame.model_points,
                    KeypointFrame.is_keyframe,
                    KeypointFrame.part_valid,
                    KeypointFrame.flags,
                ).where(KeypointFrame.track_id == track.id)
            ).all()
            if rows:
                session.execute(
                    insert(KeypointFrame),
                    [
                        {
                            "track_id": copy_track.id,
                            "frame_index": r.frame_index,
                            "points": r.points,
                            "model_points": r.model_points or r.points,
                            "is_keyframe": r.is_keyframe,
                            "part_valid": r.part_valid,
                            "flags": list(r.flags),
                            "version": 1,
                        }
                        for r in rows
                    ],
                )
    # Shot and character ids can coincide: map caption targets per level.
    targets = {
        CaptionLevel.clip: {0: 0},
        CaptionLevel.shot: shot_ids,
        CaptionLevel.character: char_ids,
    }
    for cap in session.scalars(select(Caption).where(Caption.annotation_id == source.id)):
        target_id = targets[cap.level].get(cap.target_id)
        if target_id is None:
            continue
        session.add(
            Caption(
                annotation_id=target.id,
                level=cap.level,
                target_id=target_id,
                field=cap.field,
                text=cap.text or cap.model_text or "",
                model_text=cap.model_text,
                model_name=cap.model_name,
            )
        )
    for seg in session.scalars(
        select(SpeechSegment).where(SpeechSegment.annotation_id == source.id)
    ):
        session.add(
            SpeechSegment(
                annotation_id=target.id,
                start_s=seg.start_s,
                end_s=seg.end_s,
                transcript=seg.transcript,
                source=seg.source,
            )
        )
    session.flush()


def frames_of(session: Session, track_id: int) -> list[KeypointFrame]:
    return list(
        session.scalars(
            select(KeypointFrame)
            .where(KeypointFrame.track_id == track_id)
            .order_by(KeypointFrame.frame_index)
        )
    )


_FRAME_FIELDS = (
    KeypointFrame.id,
    KeypointFrame.track_id,
    KeypointFrame.frame_index,
    KeypointFrame.version,
    KeypointFrame.is_keyframe,
    KeypointFrame.flags,
    KeypointFrame.points,
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
            select(*_FRAME_FIELDS)
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


class _FrameFields(Protocol):
    id: int
    frame_index: int
    version: int
    is_keyframe: bool
    flags: list[str]
    points: bytes


def frame_payloads(
    rows: Sequence[_FrameFields], *, as_arrays: bool = False
) -> list[dict[str, Any]]:
    """Frames of one track for the workspace, decoded together (one numpy pass for the whole
    track instead of one per frame); ``as_arrays`` keeps numpy arrays for orjson's fast path."""
    if not rows:
        return []
    poses, human_mask = decode_frames([r.points for r in rows])
    table = poses.copy()
    table[..., :2] = np.round(poses[..., :2], 2)
    table[..., CONF] = np.round(poses[..., CONF], 3)
    human = human_mask.astype(np.uint8)
    return [
        {
            "id": row.id,
            "frame": row.frame_index,
            "version": row.version,
            "keyframe": row.is_keyframe,
            "flags": row.flags,
            "points": table[i] if as_arrays else table[i].tolist(),
            "human": human[i] if as_arrays else human[i].tolist(),
        }
        for i, row in enumerate(rows)
    ]


def frame_payload(row: _FrameFields, *, as_arrays: bool = False) -> dict[str, Any]:
    """One frame for the workspace (see :func:`frame_payloads`)."""
    return frame_payloads([row], as_arrays=as_arrays)[0]


# ---------------------------------------------------------------- permissions and history


def edit_refusal(annotation: Annotation, user: User) -> str | None:
    """Why ``user`` may not edit ``annotation`` now, or None when they may.

    The one "may this person edit" rule: the saves enforce it, the workspace page and its
    payload show it (reviewers correct through review's Fix and accept instead)."""
    if annotation.annotator_id != user.id and user.role != Role.admin:
        return "Only the annotator who owns this annotation can edit it."
    if annotation.status not in EDITABLE:
        return f"This annotation is {annotation.status.value}; it cannot be edited now."
    return None


def may_edit(annotation: Annotation, user: User) -> bool:
    return edit_refusal(annotation, user) is None


def read_only_notice(annotation: Annotation, user: User) -> str | None:
    """What the workspace tells someone who may not edit (None: they may)."""
    refusal = edit_refusal(annotation, user)
    if refusal is None:
        return None
    reviewing = (
        user.role in (Role.reviewer, Role.admin)
        and annotation.annotator_id != user.id
        and annotation.status == NodeStatus.submitted
    )
    if reviewing:
        return (
            "Read-only: reviewing. Approve, reject or comment on each item in the review panel; "
            "Fix and accept corrects a caption or a point and approves it in one step."
        )
    return f"Read-only: {refusal}"


def check_editable(session: Session, annotation: Annotation, user: User) -> None:
    """Refuse an edit: an annotation the caller may not see is absent (404, as for a read,
    so ids cannot be probed); one they see but may not edit now is 403 with the reason."""
    check_visible(session, user, annotation)
    refusal = edit_refusal(annotation, user)
    if refusal is not None:
        raise Forbidden(refusal)


def _record(
    session: Session,
    annotation: Annotation | None,
    node_type: str,
    node_id: int,
    version: int,
    action: str,
    user: User | None,
    source: Source,
    before: Any,
    after: Any,
    comment: str | None = None,
) -> None:
    session.add(
        Revision(
            annotation_id=annotation.id if annotation else None,
            node_type=node_type,
            node_id=node_id,
            version=version,
            action=action,
            source=source,
            user_id=user.id if user else None,
            before=before,
            after=after,
            comment=comment,
        )
    )


NodeT = TypeVar("NodeT", Character, Caption, SpeechSegment)


def _editable_child(
    session: Session, user: User, model: type[NodeT], node_id: int, label: str
) -> tuple[NodeT, Annotation]:
    """A clip-level child node and its annotation, once the caller may edit it."""
    node = session.get(model, node_id)
    if node is None:
        raise NotFound(f"No {label} {node_id}.")
    annotation = session.get_one(Annotation, node.annotation_id)
    check_editable(session, annotation, user)
    return node, annotation


class _Node(Protocol):
    id: int
    version: int


def _human_edit(
    session: Session,
    user: User,
    annotation: Annotation,
    node_type: str,
    node: _Node,
    action: str,
    before: Any,
    after: Any,
    source: Source = Source.human,
) -> None:
    """Record a person's change to ``node`` at the id and version it has now; a save that
    changed nothing leaves no revision (saving twice is not two edits)."""
    if before == after:
        return
    _record(
        session,
        annotation,
        node_type,
        node.id,
        node.version,
        action,
        user,
        source,
        before,
        after,
    )


def _check_version(kind: str, current: int, given: int, payload: Any) -> None:
    if current != given:
        raise Conflict(
            f"This {kind} was changed by someone else (now version {current}, you edited {given}).",
            detail={"current_version": current, "current": payload},
        )


# A save that passed its version check and then lost the race to the row reports what the
# check would have: the kind and the current state (app.core.db.AppSession).
describe_lost_races(KeypointFrame, "frame", frame_payload)
describe_lost_races(Caption, "caption", lambda c: {"text": c.text, "status": c.status})
describe_lost_races(
    Annotation, "annotation", lambda a: {"tags": a.tags, "quality": a.quality, "status": a.status}
)
describe_lost_races(
    Character, "character", lambda c: {"name": c.name, "emotions": c.emotions, "status": c.status}
)
describe_lost_races(
    SpeechSegment,
    "speech segment",
    lambda s: {"start": s.start_s, "end": s.end_s, "transcript": s.transcript},
)
describe_lost_races(
    Shot, "shot", lambda s: {"start": s.start_frame, "end": s.end_frame, "status": s.status}
)
describe_lost_races(Track, "track", lambda t: {"status": t.status})


def history(session: Session, node_type: str, node_id: int) -> list[Revision]:
    return list(
        session.scalars(
            select(Revision)
            .where(Revision.node_type == node_type, Revision.node_id == node_id)
            .order_by(Revision.id)
        )
    )


# ---------------------------------------------------------------- keypoints


# Built once: constructing a statement costs more Python time than running it, and these
# run on every keypoint save.
_TRACK_CONTEXT = (
    select(Track, Annotation, Clip)
    .join(Character, Character.id == Track.character_id)
    .join(Annotation, Annotation.id == Character.annotation_id)
    .join(Clip, Clip.id == Annotation.clip_id)
    .where(Track.id == bindparam("track_id"))
)
_FRAME_ROW = select(KeypointFrame).where(
    KeypointFrame.track_id == bindparam("track_id"),
    KeypointFrame.frame_index == bindparam("frame_index"),
)


def _track_context(session: Session, track_id: int) -> tuple[Track, Annotation, Clip]:
    """A track with its annotation and clip, in one round trip (every keypoint save needs
    all three)."""
    found = session.execute(_TRACK_CONTEXT, {"track_id": track_id}).one_or_none()
    if found is None:
        raise NotFound(f"No track {track_id}.")
    track, annotation, clip = found
    return track, annotation, clip


def _frame_row(session: Session, track: Track, frame_index: int, clip: Clip) -> KeypointFrame:
    if not 0 <= frame_index < (clip.frame_count or 0):
        raise Invalid(f"Frame {frame_index} is outside the clip (0-{(clip.frame_count or 1) - 1}).")
    row = session.scalar(_FRAME_ROW, {"track_id": track.id, "frame_index": frame_index})
    if row is None:
        row = KeypointFrame(
            track_id=track.id,
            frame_index=frame_index,
            points=encode_points(empty_pose(track.num_points)),
            flags=[],
            version=1,
        )
        session.add(row)
        session.flush()
    return row


def validate_points(raw: Sequence[Sequence[float]], k: int, clip: Clip) -> PoseArray:
    """Client points [[x, y, v], ...] -> pose; out-of-frame or malformed values are refused."""
    if len(raw) != k:
        raise Invalid(f"Expected {k} points, got {len(raw)}.")
    short = next((i for i, point in enumerate(raw) if len(point) < 3), None)
    if short is not None:
        raise Invalid(f"Point {short} needs x, y and v.")
    xyv = np.array([point[:3] for point in raw], dtype=np.float64).reshape(k, 3)
    x, y, v = xyv[:, 0], xyv[:, 1], xyv[:, 2]
    bad_v = np.flatnonzero(~np.isin(v, (0, 1, 2)))
    if bad_v.size:
        raise Invalid(f"Point {bad_v[0]}: v must be 0, 1 or 2.")
    width, height = clip.width or 0, clip.height or 0
    with np.errstate(invalid="ignore"):  # NaN compares false, and is refused just below
        inside = (x >= -0.5) & (x <= width + 0.5) & (y >= -0.5) & (y <= height + 0.5)
    bad = np.flatnonzero(~(np.isfinite(x) & np.isfinite(y)) | ((v > 0) & ~inside))
    if bad.size:
        i = int(bad[0])
        raise Invalid(
            f"Point {i} ({x[i]:.1f}, {y[i]:.1f}) lies outside the {width}x{height} frame."
        )
    pose = empty_pose(k)
    pose[:, X], pose[:, Y], pose[:, V], pose[:, CONF] = x, y, v, 1.0
    return pose


def _changed(old: PoseArray, new: PoseArray) -> np.ndarray:
    moved = np.hypot(old[:, X] - new[:, X], old[:, Y] - new[:, Y]) > MOVE_EPSILON
    return moved | (old[:, V] != new[:, V])


def held_run_of(clip: Clip, frame_index: int) -> tuple[int, int]:
    """The [start, end) run of frames that share frame_index's drawing (itself if not held)."""
    for start, end in clip.held_runs or []:
        if start <= frame_index < end:
            return int(start), int(end)
    return frame_index, frame_index + 1


def _write_pose(
    session: Session,
    user: User,
    annotation: Annotation,
    row: KeypointFrame,
    pose: PoseArray,
    human: np.ndarray,
    action: str,
    keyframe: bool | None,
    source: Source = Source.human,
    *,
    exact: bool = False,
) -> None:
    """Write ``pose`` onto ``row``: a point that changes becomes the person's (confidence 1),
    the others keep who set them and their confidence; ``human`` marks more points as the
    person's. With ``exact``, ``pose`` and ``human`` are stored as given (a copied drawing
    keeps each point's provenance and confidence)."""
    old, old_human = decode_points(row.points)
    changed = _changed(old, pose)
    pose = pose.copy()
    if exact:
        new_human = np.asarray(human, dtype=bool)
    else:
        new_human = old_human | changed | human
        pose[~changed, CONF] = old[~changed, CONF]  # untouched points keep their confidence
    before: dict[str, Any] = {str(i): old[i, :3].tolist() for i in np.flatnonzero(changed)}
    after: dict[str, Any] = {str(i): pose[i, :3].tolist() for i in np.flatnonzero(changed)}
    if keyframe is not None and keyframe != row.is_keyframe:
        before["keyframe"], after["keyframe"] = row.is_keyframe, keyframe
        row.is_keyframe = keyframe
    if ((old_human != new_human) & ~changed).any():  # who set a point that did not move
        before["by_person"] = np.flatnonzero(old_human).tolist()
        after["by_person"] = np.flatnonzero(new_human).tolist()
    if before != after:  # an identical save writes nothing (no version, no revision)
        row.points = encode_points(pose, new_human)
        row.updated_by_id = user.id
    if "model_changed" in row.flags and changed.any():
        row.flags = [f for f in row.flags if f != "model_changed"]
    session.flush()
    _human_edit(
        session,
        user,
        annotation,
        "keypoint_frame",
        row,
        action,
        before,
        after,
        source,
    )


def save_frame(
    session: Session,
    user: User,
    track_id: int,
    frame_index: int,
    raw_points: Sequence[Sequence[float]],
    version: int,
    *,
    apply_to_held_run: bool = False,
    keyframe: bool | None = None,
) -> list[KeypointFrame]:
    """Save one frame's points (version-checked); optionally apply them to its whole held run."""
    track, annotation, clip = _track_context(session, track_id)
    check_editable(session, annotation, user)
    row, pose = _save_points(
        session, user, (track, annotation, clip), frame_index, raw_points, version, "update",
        keyframe,
    )  # fmt: skip
    if not apply_to_held_run:
        return [row]
    return [row, *_write_held_run(session, user, (track, annotation, clip), frame_index, pose)]


def _write_held_run(
    session: Session,
    user: User,
    context: tuple[Track, Annotation, Clip],
    frame_index: int,
    pose: PoseArray,
    action: str = "held_run",
    source: Source = Source.human,
) -> list[KeypointFrame]:
    """The pose written on every other frame of ``frame_index``'s held drawing."""
    track, annotation, clip = context
    no_mask = np.zeros(track.num_points, dtype=bool)
    start, end = held_run_of(clip, frame_index)
    written = []
    for other in range(start, end):
        if other != frame_index:
            row = _frame_row(session, track, other, clip)
            _write_pose(session, user, annotation, row, pose, no_mask, action, None, source)
            written.append(row)
    return written


def _save_points(
    session: Session,
    user: User,
    context: tuple[Track, Annotation, Clip],
    frame_index: int,
    raw_points: Sequence[Sequence[float]],
    version: int,
    action: str,
    keyframe: bool | None = None,
    source: Source = Source.human,
) -> tuple[KeypointFrame, PoseArray]:
    """Validate and write one frame's points (version-checked), recorded as ``action``."""
    track, annotation, clip = context
    pose = validate_points(raw_points, track.num_points, clip)
    row = _frame_row(session, track, frame_index, clip)
    _check_version("frame", row.version, version, frame_payload(row))
    no_mask = np.zeros(track.num_points, dtype=bool)
    _write_pose(session, user, annotation, row, pose, no_mask, action, keyframe, source)
    return row, pose


def review_fix_frame(
    session: Session,
    reviewer: User,
    track_id: int,
    frame_index: int,
    raw_points: Sequence[Sequence[float]],
    version: int,
) -> list[KeypointFrame]:
    """A reviewer's correction of one frame and its held drawing, recorded as theirs (source
    ``review``), as an annotator's edit of a held frame applies to its whole run.

    No edit check: review's Fix and accept decides who may, and accepts in the same step."""
    context = _track_context(session, track_id)
    row, pose = _save_points(
        session, reviewer, context, frame_index, raw_points, version, "review_fix",
        source=Source.review,
    )  # fmt: skip
    return [row, *_write_held_run(session, reviewer, context, frame_index, pose, "review_fix",
                                  Source.review)]  # fmt: skip


def copy_previous_drawing(
    session: Session, user: User, track_id: int, frame_index: int, version: int
) -> list[KeypointFrame]:
    """Copy the pose of the drawing before this one onto this frame's held run.

    Copied points keep who set them and their confidence: a model guess copied forward is
    still a model guess (listed among the least confident, not exported as labelled) until a
    person moves or accepts it."""
    track, annotation, clip = _track_context(session, track_id)
    check_editable(session, annotation, user)
    start, end = held_run_of(clip, frame_index)
    if start == 0:
        raise Invalid("There is no earlier drawing to copy.")
    pose, human = decode_points(_frame_row(session, track, start - 1, clip).points)
    row = _frame_row(session, track, frame_index, clip)
    _check_version("frame", row.version, version, frame_payload(row))
    rows = [
        row if f == frame_index else _frame_row(session, track, f, clip) for f in range(start, end)
    ]
    for target in rows:
        _write_pose(session, user, annotation, target, pose, human, "copy", None, exact=True)
    return rows


def interpolate(
    session: Session, user: User, track_id: int, start_frame: int, end_frame: int
) -> list[KeypointFrame]:
    """Linear interpolation between two human keyframes for the frames strictly between them.

    Only points labelled in both keyframes are interpolated; points a person already set on an
    in-between frame are kept; frames of a held drawing share one value (cartoons move in
    steps, not smoothly)."""
    track, annotation, clip = _track_context(session, track_id)
    check_editable(session, annotation, user)
    if end_frame - start_frame < 2:
        raise Invalid("Interpolation needs two keyframes with at least one frame between them.")
    first, last = (
        _frame_row(session, track, start_frame, clip),
        _frame_row(session, track, end_frame, clip),
    )
    if not (first.is_keyframe and last.is_keyframe):
        raise Invalid("Mark both ends as keyframes before interpolating between them.")
    a, _ = decode_points(first.points)
    b, _ = decode_points(last.points)
    both = (a[:, V] > 0) & (b[:, V] > 0)
    written = []
    for f in range(start_frame + 1, end_frame):
        row = _frame_row(session, track, f, clip)
        current, human = decode_points(row.points)
        # A held drawing stays still: every frame of a run takes the value at its first frame.
        drawing = max(held_run_of(clip, f)[0], start_frame)
        t = (drawing - start_frame) / (end_frame - start_frame)
        pose = current.copy()
        fill = both & ~human
        pose[fill, X] = a[fill, X] + t * (b[fill, X] - a[fill, X])
        pose[fill, Y] = a[fill, Y] + t * (b[fill, Y] - a[fill, Y])
        pose[fill, V] = np.where(t < 0.5, a[fill, V], b[fill, V])
        _write_pose(session, user, annotation, row, pose, fill, "interpolate", None)
        written.append(row)
    return written


def accept_above(
    session: Session,
    user: User,
    track_id: int,
    threshold: float,
    frames: Iterable[int] | None = None,
) -> int:
    """Mark model points with confidence >= threshold as accepted by a person; returns count."""
    track, annotation, _ = _track_context(session, track_id)
    check_editable(session, annotation, user)
    wanted = set(frames) if frames is not None else None
    accepted = 0
    for row in frames_of(session, track.id):
        if wanted is not None and row.frame_index not in wanted:
            continue
        pose, human = decode_points(row.points)
        take = ~human & (pose[:, CONF] >= threshold) & (pose[:, V] > 0)
        if take.any():
            row.points = encode_points(pose, human | take)
            _human_edit(
                session,
                user,
                annotation,
                "keypoint_frame",
                row,
                "accept",
                None,
                {"accepted": np.flatnonzero(take).tolist(), "threshold": threshold},
            )
            accepted += int(take.sum())
    session.flush()
    return accepted


# ---------------------------------------------------------------- characters, captions, tags, shots


def add_character(
    session: Session, user: User, annotation_id: int, name: str, kind: CharacterKind, skeleton: str
) -> Character:
    """A person's new character; its track has as many points as its skeleton (built-in or
    the project's own), none for ``none`` (a box only)."""
    annotation = get_annotation(session, annotation_id)
    check_editable(session, annotation, user)
    num_points = 0
    if skeleton != "none":
        project_id = session.get_one(Clip, annotation.clip_id).project_id
        num_points = project_skeleton(session, project_id, skeleton).num_keypoints
    character = Character(
        annotation_id=annotation.id,
        name=name.strip() or "character",
        kind=kind,
        skeleton=skeleton,
        emotions=[],
        source=Source.human,
    )
    session.add(character)
    session.flush()
    if num_points:
        session.add(Track(character_id=character.id, num_points=num_points, source=Source.human))
    _human_edit(
        session,
        user,
        annotation,
        "character",
        character,
        "create",
        None,
        {"name": character.name, "kind": kind.value, "skeleton": skeleton},
    )
    session.flush()
    return character


def delete_character(session: Session, user: User, character_id: int, version: int) -> None:
    character, annotation = _editable_child(session, user, Character, character_id, "character")
    _check_version("character", character.version, version, {"name": character.name})
    _human_edit(
        session,
        user,
        annotation,
        "character",
        character,
        "delete",
        {"name": character.name, "kind": character.kind.value, "skeleton": character.skeleton},
        None,
    )
    session.delete(character)
    session.flush()


def update_caption(
    session: Session, user: User, caption_id: int, text: str, version: int
) -> Caption:
    caption, annotation = _editable_child(session, user, Caption, caption_id, "caption")
    _check_version("caption", caption.version, version, {"text": caption.text})
    _write_caption(session, user, annotation, caption, text, "update", Source.human)
    return caption


def review_fix_caption(session: Session, reviewer: User, caption: Caption, text: str) -> None:
    """A reviewer's correction of a caption, recorded as theirs (source ``review``).

    No edit check: review's Fix and accept decides who may, and accepts in the same step."""
    annotation = session.get_one(Annotation, caption.annotation_id)
    _write_caption(session, reviewer, annotation, caption, text, "review_fix", Source.review)


def _write_caption(
    session: Session,
    user: User,
    annotation: Annotation,
    caption: Caption,
    text: str,
    action: str,
    source: Source,
) -> None:
    before = caption.text
    caption.text = text
    caption.updated_by_id = user.id
    session.flush()
    _human_edit(
        session, user, annotation, "caption", caption, action, {"text": before}, {"text": text},
        source,
    )  # fmt: skip


FREE_TAG = re.compile(r"^[\w\-]{1,40}$")


def free_tag(typed: str, *, allowed: bool) -> str:
    """A tag value an annotator typed, for projects that allow free-text tags; spaces
    become ``_`` so it reads like the vocabulary's own values."""
    if not allowed:
        raise Invalid("This project takes only the listed tags: choose one of them.")
    value = "_".join(typed.split())
    if not FREE_TAG.match(value):
        raise Invalid("A tag may use letters, digits, '_' and '-' (at most 40 characters).")
    return value


def set_tags(
    session: Session,
    user: User,
    annotation_id: int,
    tags: dict[str, Any],
    version: int,
    vocabulary: dict[str, list[str]],
    *,
    free_text: bool = False,
) -> Annotation:
    """Set tag groups; values come from the vocabulary, or are typed (``free_text``)."""
    annotation = get_annotation(session, annotation_id)
    check_editable(session, annotation, user)
    for group, value in tags.items():
        allowed = vocabulary.get(group)
        values = [v for v in (value if isinstance(value, list) else [value]) if v is not None]
        typed = [v for v in values if v not in (allowed or [])]
        if allowed is None or (
            typed and not (free_text and all(FREE_TAG.match(str(v)) for v in typed))
        ):
            raise Invalid(f"{group}={value!r} is not in the project's tag vocabulary.")
    _check_version("annotation", annotation.version, version, {"tags": annotation.tags})
    before = dict(annotation.tags)
    annotation.tags = {**annotation.tags, **tags}
    session.flush()
    _human_edit(
        session,
        user,
        annotation,
        "annotation",
        annotation,
        "tags",
        before,
        annotation.tags,
    )
    return annotation


def set_shot_boundaries(
    session: Session, user: User, annotation_id: int, starts: Sequence[int], version: int
) -> list[Shot]:
    """Move, split or merge shots by giving the new list of shot start frames."""
    annotation = get_annotation(session, annotation_id)
    check_editable(session, annotation, user)
    clip = session.get_one(Clip, annotation.clip_id)
    n = clip.frame_count or 0
    cuts = sorted({int(s) for s in starts} | {0})
    if any(not 0 <= s < n for s in cuts):
        raise Invalid(f"Shot starts must lie within 0-{n - 1}.")
    _check_version("annotation", annotation.version, version, {"shots": "changed"})
    old = list(
        session.scalars(
            select(Shot).where(Shot.annotation_id == annotation.id).order_by(Shot.start_frame)
        )
    )
    before = [[s.start_frame, s.end_frame] for s in old]
    if before == [[a, b] for a, b in itertools.pairwise([*cuts, n])]:
        return old  # the same boundaries again: nothing to write
    by_start = {s.start_frame: s for s in old}
    keep: list[Shot] = []
    for start, end in zip(cuts, [*cuts[1:], n], strict=True):
        shot = by_start.pop(start, None)
        if shot is None:
            shot = Shot(
                annotation_id=annotation.id, start_frame=start, end_frame=end, source=Source.human
            )
            session.add(shot)
        shot.end_frame = end
        keep.append(shot)
    for gone in by_start.values():
        session.execute(
            delete(Caption).where(
                Caption.annotation_id == annotation.id,
                Caption.level == "shot",
                Caption.target_id == gone.id,
            )
        )
        session.delete(gone)
    annotation.updated_at = utcnow()
    session.flush()
    _human_edit(
        session,
        user,
        annotation,
        "annotation",
        annotation,
        "shots",
        before,
        [[s.start_frame, s.end_frame] for s in keep],
    )
    return keep


# ---------------------------------------------------------------- submit


def missing_levels(
    session: Session, annotation: Annotation, required: dict[str, list[str]]
) -> list[str]:
    """Which required levels (per the clip's subsets) are still empty."""
    clip = session.get_one(Clip, annotation.clip_id)
    needed = sorted({level for subset in clip.subsets for level in required.get(subset, [])})
    payload = annotation_payload(session, annotation)
    captions = payload["captions"]
    checks = {
        "clip_caption": any(
            c["level"] == "clip" and c["field"] == "short" and c["text"].strip() for c in captions
        ),
        "shot_captions": bool(payload["shots"])
        and all(
            any(
                c["level"] == "shot" and c["target_id"] == s["id"] and c["text"].strip()
                for c in captions
            )
            for s in payload["shots"]
        ),
        "tags": bool(annotation.tags)
        and all(v not in (None, "", []) for v in annotation.tags.values()),
        "quality": "keep" in annotation.quality,
        "characters": bool(payload["characters"]),
        "keypoints": bool(payload["characters"])
        and all(
            any(any(p[2] > 0 for p in f["points"]) for t in c["tracks"] for f in t["frames"])
            for c in payload["characters"]
            if c["tracks"]
        ),
        "emotions": bool(payload["characters"])
        and all(c["emotions"] for c in payload["characters"]),
        "speech": bool(payload["speech"]) or annotation.quality.get("no_speech") is True,
    }
    return [level for level in needed if not checks.get(level, True)]


def submit(
    session: Session, user: User, annotation_id: int, required: dict[str, list[str]]
) -> Annotation:
    """Send the annotation to review, only when every required level is filled."""
    annotation = get_annotation(session, annotation_id)
    check_editable(session, annotation, user)
    missing = missing_levels(session, annotation, required)
    if missing:
        raise Invalid(
            f"Not ready for review: fill {', '.join(missing)} first.", detail={"missing": missing}
        )
    # Review's rules (resubmit needs a change or an answer; children follow the clip). Imported
    # here because the review service builds on this module.
    from app.review.service import prepare_submit

    prepare_submit(session, user, annotation)
    before = annotation.status.value
    annotation.status = NodeStatus.submitted
    annotation.submitted_at = utcnow()
    assignment = session.scalar(select(Assignment).where(Assignment.annotation_id == annotation.id))
    if assignment is not None:
        assignment.state = AssignmentState.submitted
        assignment.submitted_at = utcnow()
    session.flush()
    _human_edit(
        session,
        user,
        annotation,
        "annotation",
        annotation,
        "status",
        {"status": before},
        {"status": "submitted"},
    )
    from app.agreement.recompute import on_annotation_submitted

    on_annotation_submitted(session, annotation)
    return annotation


# ---------------------------------------------------------------- emotions, quality, speech


def set_emotions(
    session: Session,
    user: User,
    character_id: int,
    spans: Sequence[dict[str, Any]],
    version: int,
    labels: Sequence[str],
) -> Character:
    """Replace a character's emotion labels over frame ranges ([start, end) with a label)."""
    character, annotation = _editable_child(session, user, Character, character_id, "character")
    clip = session.get_one(Clip, annotation.clip_id)
    clean = []
    for span in spans:
        start, end, label = int(span["start"]), int(span["end"]), str(span["label"])
        if label not in labels:
            raise Invalid(f"{label!r} is not one of the project's emotion labels.")
        if not 0 <= start < end <= (clip.frame_count or 0):
            raise Invalid(f"Emotion range {start}-{end} is outside the clip.")
        clean.append({"start": start, "end": end, "label": label})
    _check_version("character", character.version, version, {"emotions": character.emotions})
    before = list(character.emotions)
    character.emotions = sorted(clean, key=lambda s: s["start"])
    session.flush()
    _human_edit(
        session,
        user,
        annotation,
        "character",
        character,
        "emotions",
        before,
        character.emotions,
    )
    return character


def set_quality(
    session: Session,
    user: User,
    annotation_id: int,
    keep: bool,
    reasons: Sequence[str],
    version: int,
    *,
    no_speech: bool | None = None,
) -> Annotation:
    """The clip's keep/discard decision with reasons (and the explicit 'no speech' answer)."""
    annotation = get_annotation(session, annotation_id)
    check_editable(session, annotation, user)
    if not keep and not reasons:
        raise Invalid("Say why the clip should be discarded.")
    _check_version("annotation", annotation.version, version, {"quality": annotation.quality})
    before = dict(annotation.quality)
    quality: dict[str, Any] = {"keep": keep, "reasons": [r for r in reasons if r]}
    if no_speech is not None:
        quality["no_speech"] = no_speech
    annotation.quality = quality
    session.flush()
    _human_edit(
        session,
        user,
        annotation,
        "annotation",
        annotation,
        "quality",
        before,
        quality,
    )
    return annotation


def _speech_bounds(clip: Clip, start_s: float, end_s: float) -> None:
    duration = clip.duration_s or 0.0
    if not 0 <= start_s < end_s <= duration + 1e-6:
        raise Invalid(f"A speech segment must satisfy 0 <= start < end <= {duration:.2f} s.")


def add_speech(
    session: Session,
    user: User,
    annotation_id: int,
    start_s: float,
    end_s: float,
    transcript: str = "",
) -> SpeechSegment:
    annotation = get_annotation(session, annotation_id)
    check_editable(session, annotation, user)
    _speech_bounds(session.get_one(Clip, annotation.clip_id), start_s, end_s)
    segment = SpeechSegment(
        annotation_id=annotation.id,
        start_s=start_s,
        end_s=end_s,
        transcript=transcript,
        source=Source.human,
    )
    session.add(segment)
    session.flush()
    _human_edit(
        session,
        user,
        annotation,
        "speech_segment",
        segment,
        "create",
        None,
        {"start": start_s, "end": end_s, "transcript": transcript},
    )
    return segment


def update_speech(
    session: Session,
    user: User,
    segment_id: int,
    start_s: float,
    end_s: float,
    transcript: str,
    version: int,
) -> SpeechSegment:
    segment, annotation = _editable_child(
        session, user, SpeechSegment, segment_id, "speech segment"
    )
    _speech_bounds(session.get_one(Clip, annotation.clip_id), start_s, end_s)
    before = {"start": segment.start_s, "end": segment.end_s, "transcript": segment.transcript}
    _check_version("speech segment", segment.version, version, before)
    segment.start_s, segment.end_s, segment.transcript = start_s, end_s, transcript
    session.flush()
    _human_edit(
        session,
        user,
        annotation,
        "speech_segment",
        segment,
        "update",
        before,
        {"start": start_s, "end": end_s, "transcript": transcript},
    )
    return segment


def delete_speech(session: Session, user: User, segment_id: int, version: int) -> None:
    segment, annotation = _editable_child(
        session, user, SpeechSegment, segment_id, "speech segment"
    )
    before = {"start": segment.start_s, "end": segment.end_s, "transcript": segment.transcript}
    _check_version("speech segment", segment.version, version, before)
    _human_edit(
        session,
        user,
        annotation,
        "speech_segment",
        segment,
        "delete",
        before,
        None,
    )
    session.delete(segment)
    session.flush()
