"""Keypoint edits: a frame's points saved, copied, interpolated and accepted, each recorded as a
revision of the keypoint frame; a held drawing (cartoon frames that repeat) is edited as one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import Enum
from typing import Any

import numpy as np
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.annotations.access import check_editable
from app.annotations.held_drawings import (
    carried_box,
    carried_pose,
    held_run_of,
    inside_frame,
    move_in,
    track_runs,
)
from app.annotations.models import Annotation, Character, KeypointFrame, Source, Track
from app.annotations.payload import frame_payload, frames_of
from app.annotations.points import (
    SRC_ACCEPTED,
    SRC_MODEL,
    SRC_PERSON,
    BoolArray,
    SourceArray,
    as_sources,
    by_person,
    decode_points,
    decode_with_sources,
    encode_points,
    suggestions,
)
from app.annotations.revisions import apply_edit, check_node_version, record_edit
from app.auth.models import User
from app.clips.models import Clip
from app.core.errors import Invalid, NotFound
from app.media.drawings import run_at
from app.projects.skeletons import CONF, V_VISIBLE, PoseArray, V, X, Y, empty_pose

MOVE_EPSILON = 0.01  # px: a point "changed" when it moved more than this


class Unchanged(Enum):
    """A save that leaves the frame's character box as it is (the client did not send one)."""

    box = "unchanged"


KEEP_BOX = Unchanged.box
# A save's character box: [x, y, w, h] in clip pixels, None to clear it, or KEEP_BOX.
BoxEdit = list[float] | Unchanged | None


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


def track_context(session: Session, track_id: int) -> tuple[Track, Annotation, Clip]:
    """A track with its annotation and clip, in one round trip (every keypoint save needs
    all three)."""
    found = session.execute(_TRACK_CONTEXT, {"track_id": track_id}).one_or_none()
    if found is None:
        raise NotFound(f"No track {track_id}.")
    track, annotation, clip = found
    return track, annotation, clip


def editable_track(session: Session, user: User, track_id: int) -> tuple[Track, Annotation, Clip]:
    """A track with its annotation and clip, once the caller may edit it."""
    context = track_context(session, track_id)
    check_editable(session, context[1], user)
    return context


def frame_row(session: Session, track: Track, frame_index: int, clip: Clip) -> KeypointFrame:
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
    inside = inside_frame(xyv, clip)
    bad = np.flatnonzero(~(np.isfinite(x) & np.isfinite(y)) | ((v > 0) & ~inside))
    if bad.size:
        i = int(bad[0])
        raise Invalid(
            f"Point {i} ({x[i]:.1f}, {y[i]:.1f}) lies outside the {width}x{height} frame."
        )
    pose = empty_pose(k)
    pose[:, X], pose[:, Y], pose[:, V], pose[:, CONF] = x, y, v, 1.0
    return pose


def validate_box(raw: Sequence[float] | None, clip: Clip) -> list[float] | None:
    """A client's character box [x, y, w, h] (clip pixels, rounded to 0.01), or None (no box):
    w and h above 0, inside the frame with half a pixel of slack as points have."""
    if raw is None:
        return None
    if len(raw) != 4:
        raise Invalid(f"A box is [x, y, w, h]; got {len(raw)} numbers.")
    x, y, w, h = (float(v) for v in raw)
    if not all(np.isfinite((x, y, w, h))):
        raise Invalid("A box's x, y, w and h are finite numbers.")
    if w <= 0 or h <= 0:
        raise Invalid(f"A box needs a width and a height above 0 (got {w:g} x {h:g}).")
    width, height = clip.width or 0, clip.height or 0
    if x < -0.5 or y < -0.5 or x + w > width + 0.5 or y + h > height + 0.5:
        raise Invalid(
            f"The box ({x:.1f}, {y:.1f}, {w:.1f}, {h:.1f}) does not lie inside the"
            f" {width}x{height} frame."
        )
    return [round(x, 2), round(y, 2), round(w, 2), round(h, 2)]


def moved_points(old: PoseArray, new: PoseArray) -> BoolArray:
    """Points whose position differs by more than ``MOVE_EPSILON``."""
    return np.hypot(old[:, X] - new[:, X], old[:, Y] - new[:, Y]) > MOVE_EPSILON


def changed_points(old: PoseArray, new: PoseArray) -> BoolArray:
    """Points that moved or changed visibility."""
    return moved_points(old, new) | (old[:, V] != new[:, V])


def claimed_sources(
    old: PoseArray, old_sources: SourceArray, pose: PoseArray, claims: SourceArray
) -> SourceArray:
    """Who stands behind each point of ``pose`` written over ``old``, decided here from what
    changed, never taken from the client: a point that moved or changed visibility is the
    person's; a claim ``SRC_ACCEPTED`` holds for the model's point left where the model put
    it (a suggestion given a visibility, or a labelled guess); a claim ``SRC_PERSON`` raises a
    model point to the person's; the others keep their source. A tracked point is a guess
    like the model's: accepted, moved or claimed, it becomes the person's the same way."""
    moved = moved_points(old, pose)
    sources = np.where(changed_points(old, pose), SRC_PERSON, old_sources).astype(np.uint8)
    guessed = ~by_person(old_sources)
    accepted = (claims == SRC_ACCEPTED) & ~moved & guessed & (pose[:, V] > 0)
    sources[accepted] = SRC_ACCEPTED
    sources[(claims == SRC_PERSON) & ~by_person(sources)] = SRC_PERSON
    return sources


def write_pose(
    session: Session,
    user: User,
    annotation: Annotation,
    row: KeypointFrame,
    pose: PoseArray,
    claims: SourceArray | BoolArray,
    action: str,
    keyframe: bool | None,
    source: Source = Source.human,
    *,
    exact: bool = False,
    box: BoxEdit = KEEP_BOX,
) -> None:
    """Write ``pose`` onto ``row``: a point that changes becomes the person's (confidence 1),
    the others keep their source and confidence; ``claims`` (see :func:`claimed_sources`;
    a boolean mask claims ``SRC_PERSON``) marks more points as the person's or accepted.
    With ``exact``, ``pose`` and ``claims`` are stored as given (a copied drawing keeps each
    point's source and confidence). ``box`` (validated) replaces the character box unless it
    is ``KEEP_BOX``; it is recorded in the revision like the points."""
    old, old_sources = decode_with_sources(row.points)
    changed = changed_points(old, pose)
    pose = pose.copy()
    if exact:
        new_sources = as_sources(claims)
    else:
        new_sources = claimed_sources(old, old_sources, pose, as_sources(claims))
        keep = ~changed | (new_sources == SRC_ACCEPTED)  # an accepted guess keeps its confidence
        pose[keep, CONF] = old[keep, CONF]
    before: dict[str, Any] = {str(i): old[i, :3].tolist() for i in np.flatnonzero(changed)}
    after: dict[str, Any] = {str(i): pose[i, :3].tolist() for i in np.flatnonzero(changed)}
    if keyframe is not None and keyframe != row.is_keyframe:
        before["keyframe"], after["keyframe"] = row.is_keyframe, keyframe
    if not isinstance(box, Unchanged) and box != row.box:
        before["box"], after["box"] = row.box, box
    if ((old_sources != new_sources) & ~changed).any():  # who set a point that did not move
        before["by_person"] = np.flatnonzero(by_person(old_sources)).tolist()
        after["by_person"] = np.flatnonzero(by_person(new_sources)).tolist()
        if ((old_sources == SRC_ACCEPTED) != (new_sources == SRC_ACCEPTED)).any():
            before["accepted"] = np.flatnonzero(old_sources == SRC_ACCEPTED).tolist()
            after["accepted"] = np.flatnonzero(new_sources == SRC_ACCEPTED).tolist()

    def write() -> dict[str, Any]:
        if "keyframe" in after:
            row.is_keyframe = after["keyframe"]
        if "box" in after:
            row.box = after["box"]
        if before != after:  # an identical save writes nothing (no version, no revision)
            row.points = encode_points(pose, new_sources)
            row.updated_by_id = user.id
        if "model_changed" in row.flags and changed.any():
            row.flags = [f for f in row.flags if f != "model_changed"]
        return after

    apply_edit(session, user, annotation, row, node_type="keypoint_frame", action=action,
               before=before, change=write, source=source)  # fmt: skip


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
    accepted: Sequence[int] = (),
    box: Sequence[float] | Unchanged | None = KEEP_BOX,
) -> list[KeypointFrame]:
    """Save one frame's points and character box (version-checked); optionally apply them to
    its whole held run.

    ``accepted``: points the person accepted as the model placed them (a suggestion given a
    visibility, or a labelled guess); they count as accepted only where they did not move.
    ``box``: the person-drawn box [x, y, w, h] (see :func:`validate_box`), None clears it,
    ``KEEP_BOX`` leaves it."""
    track, annotation, clip = editable_track(session, user, track_id)
    drawn = box if isinstance(box, Unchanged) else validate_box(box, clip)
    row, pose = _save_points(
        session, user, (track, annotation, clip), frame_index, raw_points, version, "update",
        keyframe, accepted=accepted, box=drawn,
    )  # fmt: skip
    if not apply_to_held_run:
        return [row]
    return [row, *_write_held_run(session, user, (track, annotation, clip), frame_index, pose,
                                  accepted=accepted, box=drawn)]  # fmt: skip


def acceptance_claims(k: int, accepted: Sequence[int]) -> SourceArray:
    """Claims (see :func:`claimed_sources`) that ``accepted`` points were accepted."""
    if any(not 0 <= i < k for i in accepted):
        raise Invalid(f"An accepted point is a point index from 0 to {k - 1}.")
    claims = np.full(k, SRC_MODEL, dtype=np.uint8)
    claims[list(accepted)] = SRC_ACCEPTED
    return claims


def _write_held_run(
    session: Session,
    user: User,
    context: tuple[Track, Annotation, Clip],
    frame_index: int,
    pose: PoseArray,
    action: str = "held_run",
    source: Source = Source.human,
    *,
    accepted: Sequence[int] = (),
    box: BoxEdit = KEEP_BOX,
) -> list[KeypointFrame]:
    """The pose (and box) written on every other frame of ``frame_index``'s held drawing,
    carried by each frame's move (see :func:`carried_pose`): a point not labelled in ``pose``
    is not labelled there either and keeps that frame's position."""
    track, annotation, clip = context
    run = held_run_of(session, track, clip, frame_index)
    if run is None:
        return []
    claims = acceptance_claims(track.num_points, accepted)
    labelled, edited = pose[:, V] > 0, run.move_at(frame_index)
    written = []
    for other in range(run.start, run.end):
        if other != frame_index:
            row = frame_row(session, track, other, clip)
            onto, _ = decode_points(row.points)
            here = run.move_at(other)
            moved = carried_pose(pose, labelled, onto, edited, here, clip)
            moved_box = box if isinstance(box, Unchanged) else carried_box(box, edited, here, clip)
            write_pose(session, user, annotation, row, moved, claims, action, None, source,
                       box=moved_box)  # fmt: skip
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
    *,
    accepted: Sequence[int] = (),
    box: BoxEdit = KEEP_BOX,
) -> tuple[KeypointFrame, PoseArray]:
    """Validate and write one frame's points (version-checked), recorded as ``action``;
    ``box`` is validated already."""
    track, annotation, clip = context
    pose = validate_points(raw_points, track.num_points, clip)
    claims = acceptance_claims(track.num_points, accepted)
    row = frame_row(session, track, frame_index, clip)
    check_node_version("frame", row.version, version, frame_payload(row))
    write_pose(session, user, annotation, row, pose, claims, action, keyframe, source, box=box)
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
    context = track_context(session, track_id)
    row, pose = _save_points(
        session, reviewer, context, frame_index, raw_points, version, "review_fix",
        source=Source.review,
    )  # fmt: skip
    return [row, *_write_held_run(session, reviewer, context, frame_index, pose, "review_fix",
                                  Source.review)]  # fmt: skip


def copy_previous_drawing(
    session: Session, user: User, track_id: int, frame_index: int, version: int
) -> list[KeypointFrame]:
    """Copy the pose and character box of the drawing before this one onto this frame's held
    run.

    Copied points keep their source and confidence: a model guess copied forward is still a
    model guess (listed among the least confident, not exported as labelled) until a person
    moves or accepts it."""
    track, annotation, clip = editable_track(session, user, track_id)
    run = held_run_of(session, track, clip, frame_index)
    start, end = (run.start, run.end) if run else (frame_index, frame_index + 1)
    if start == 0:
        raise Invalid("There is no earlier drawing to copy.")
    previous = frame_row(session, track, start - 1, clip)
    pose, sources = decode_with_sources(previous.points)
    placed = (pose[:, V] > 0) | (pose[:, CONF] > 0)  # labelled, or the model's suggestion
    row = frame_row(session, track, frame_index, clip)
    check_node_version("frame", row.version, version, frame_payload(row))
    rows = [
        row if f == frame_index else frame_row(session, track, f, clip) for f in range(start, end)
    ]
    for target in rows:
        # The copy lands as it was on the run's first frame; the run's move carries it on.
        first, here = move_in(run, start), move_in(run, target.frame_index)
        write_pose(session, user, annotation, target,
                   carried_pose(pose, placed, pose, first, here, clip), sources, "copy", None,
                   exact=True, box=carried_box(previous.box, first, here, clip))  # fmt: skip
    return rows


def interpolate(
    session: Session, user: User, track_id: int, start_frame: int, end_frame: int
) -> list[KeypointFrame]:
    """Linear interpolation between two human keyframes for the frames strictly between them.

    Only points labelled in both keyframes are interpolated; points a person already set on an
    in-between frame are kept; frames of a held drawing share one value (cartoons move in
    steps, not smoothly)."""
    track, annotation, clip = editable_track(session, user, track_id)
    if end_frame - start_frame < 2:
        raise Invalid("Interpolation needs two keyframes with at least one frame between them.")
    first, last = (
        frame_row(session, track, start_frame, clip),
        frame_row(session, track, end_frame, clip),
    )
    if not (first.is_keyframe and last.is_keyframe):
        raise Invalid("Mark both ends as keyframes before interpolating between them.")
    a, _ = decode_points(first.points)
    b, _ = decode_points(last.points)
    both = (a[:, V] > 0) & (b[:, V] > 0)
    runs = track_runs(session, track, clip)
    written = []
    for f in range(start_frame + 1, end_frame):
        row = frame_row(session, track, f, clip)
        current, human = decode_points(row.points)
        # A held drawing does not move by itself: every frame of a run takes the value at its
        # first frame (or the first keyframe), carried by the run's move to this frame.
        run = run_at(runs, f)
        drawing = max(run.start, start_frame) if run else f
        t = (drawing - start_frame) / (end_frame - start_frame)
        pose = current.copy()
        fill = both & ~human
        pose[fill, X] = a[fill, X] + t * (b[fill, X] - a[fill, X])
        pose[fill, Y] = a[fill, Y] + t * (b[fill, Y] - a[fill, Y])
        pose[fill, V] = np.where(t < 0.5, a[fill, V], b[fill, V])
        pose = carried_pose(pose, fill, current, move_in(run, drawing), move_in(run, f), clip)
        write_pose(session, user, annotation, row, pose, fill, "interpolate", None)
        written.append(row)
    return written


def accept_above(
    session: Session,
    user: User,
    track_id: int,
    threshold: float,
    frames: Iterable[int] | None = None,
) -> int:
    """Mark the model's (and the tracker's) points with confidence >= threshold as accepted by
    a person: labelled guesses, and the model's suggestions inside the frame (which become
    visible); returns the count."""
    track, annotation, clip = editable_track(session, user, track_id)
    wanted = set(frames) if frames is not None else None
    accepted = 0
    for row in frames_of(session, track.id):
        if wanted is not None and row.frame_index not in wanted:
            continue
        pose, sources = decode_with_sources(row.points)
        confident = ~by_person(sources) & (pose[:, CONF] >= threshold)
        shown = suggestions(pose, sources) & inside_frame(pose, clip)
        take = confident & ((pose[:, V] > 0) | shown)
        if take.any():
            pose[take & shown, V] = V_VISIBLE
            sources[take] = SRC_ACCEPTED
            row.points = encode_points(pose, sources)
            accepted_now = {"accepted": np.flatnonzero(take).tolist(), "threshold": threshold}
            record_edit(session, user=user, annotation=annotation, node_type="keypoint_frame",
                        node=row, action="accept", before=None, after=accepted_now)  # fmt: skip
            accepted += int(take.sum())
    session.flush()
    return accepted
