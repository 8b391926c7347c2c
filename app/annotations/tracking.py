"""Point tracking in a person's annotation: a frame's points carried through the shot.

Pressing Track on a frame is the person's acceptance of that frame, as CVAT takes the frame
you track from as your keyframe: its labelled guesses (the model's or the tracker's, as shown)
become accepted and the frame a keyframe, in the same step. From there :func:`track_from`
follows its points forward
or backward (:func:`app.media.pointtrack.track_points`, on the frames of the clip's frame
cache) up to the next keyframe, the next frame where a person set one of them, or the shot's
end. What it writes is a guess (``SRC_TRACKED``, with the tracker's confidence): exports do
not label it until a person accepts or moves it. A person's point is never overwritten. Points
nobody sees (set as not visible, off the frame, or leaving it) are carried with the points the
tracker follows and written as not visible, at a low confidence; one carried back into the
frame after leaving it is written as visible (still a low-confidence guess). A point the
tracker loses stops there, and that frame gets the review flag ``track_lost:<n>``.
The whole step is one revision of the track (each written frame's points before and after).
:func:`accept_span` accepts the guesses shown on the frames from the last keyframe up to the
current one (those a person has just stepped through and found right) in one step.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations.held_drawings import inside_frame, track_runs
from app.annotations.keypoint_edits import acceptance_claims, editable_track, frame_row, write_pose
from app.annotations.models import Annotation, Character, KeypointFrame, Shot, Source, Track
from app.annotations.payload import frame_payload
from app.annotations.points import (
    SRC_TRACKED,
    BoolArray,
    by_person,
    decode_with_sources,
    encode_points,
)
from app.annotations.revisions import check_node_version, record_revision
from app.auth.models import User
from app.clips.models import Clip
from app.clips.paths import clip_frames
from app.core.errors import Invalid
from app.media.drawings import DrawingRun, Move, run_at
from app.media.framecache import FrameCache
from app.media.pointtrack import track_points
from app.projects.skeletons import CONF, V_HIDDEN, V_VISIBLE, PoseArray, V, X, Y

Direction = Literal["forward", "backward"]
TRACK_LOST = "track_lost:"  # flag: this many points were lost here (tracking stopped them)
TRACK_ACTION = "track"
KEYFRAME_ACTION = "track_keyframe"  # the frame tracked from, accepted and made a keyframe
SPAN_ACTION = "accept_span"
# Frames one step goes through at most (10 s at 24 fps): their images are held in memory, and a
# person checks a tracked stretch before carrying it further (accept its last frame, track on).
MAX_FRAMES = 240


@dataclass
class Tracked:
    """What one tracking step did: how many points it wrote, and where points stopped."""

    points: int = 0  # point positions written
    lost: dict[int, list[int]] = field(default_factory=dict)  # frame -> points that stopped
    reached: int | None = None  # the last frame tracking went through


def track_from(
    session: Session,
    user: User,
    track_id: int,
    frame_index: int,
    version: int,
    direction: Direction,
    only: Sequence[int] | None = None,
) -> Tracked:
    """Accept the labelled points shown on ``frame_index`` (``only`` those, if given), make
    it a keyframe, and carry those points through the shot in ``direction``; ``version`` is
    the frame's (a stale one is a Conflict)."""
    track, annotation, clip = editable_track(session, user, track_id)
    key = frame_row(session, track, frame_index, clip)
    check_node_version("frame", key.version, version, frame_payload(key))
    pose, _ = decode_with_sources(key.points)
    active = pose[:, V] > 0
    if only is not None:
        if any(not 0 <= i < track.num_points for i in only):
            raise Invalid(f"A point to track is a point index from 0 to {track.num_points - 1}.")
        active &= np.isin(np.arange(track.num_points), list(only))
    if not active.any():
        raise Invalid(
            f"Frame {frame_index} has no labelled point"
            f"{' among those selected' if only is not None else ''} to track: place the"
            " character's points (or give a faded suggestion a visibility) first."
        )
    _accept_shown(session, user, annotation, key, active, KEYFRAME_ACTION, keyframe=True)
    runs = track_runs(session, track, clip)
    span, rows = _span(session, track, clip, frame_index, direction, active, runs)
    done = Tracked(reached=frame_index)
    if len(span) < 2:
        return done
    cache = _frame_cache(clip)
    frames = [cache.image(n) for n in span]
    moves = [None, *(_held_move(runs, a, b) for a, b in itertools.pairwise(span))]
    scale = cache.info.width / cache.info.source_width
    hidden = pose[:, V] == V_HIDDEN
    result = track_points(frames, pose[:, :2], active, hidden=hidden, moves=moves, scale=scale)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for step, frame in enumerate(span[1:], start=1):
        carried = result.carried[step]
        ok = active & (result.ok[step] | carried) & inside_frame(result.xy[step], clip)
        lost = active & ~ok
        row = rows.get(frame) or frame_row(session, track, frame, clip)
        old, old_sources = decode_with_sources(row.points)
        write = ok & ~by_person(old_sources)
        if write.any():
            new, new_sources = old.copy(), old_sources.copy()
            new[write, X], new[write, Y] = result.xy[step, write, 0], result.xy[step, write, 1]
            unseen = carried & ~result.back_in_view[step]
            new[write, V] = np.where(unseen[write], V_HIDDEN, V_VISIBLE)
            new[write, CONF] = result.confidence[step, write]
            new_sources[write] = SRC_TRACKED
            before[str(frame)] = _points_of(old, write)
            after[str(frame)] = _points_of(new, write)
            row.points = encode_points(new, new_sources)
            row.updated_by_id = user.id
            done.points += int(write.sum())
        flags = [f for f in row.flags if not f.startswith(TRACK_LOST)]
        if lost.any():
            done.lost[frame] = np.flatnonzero(lost).tolist()
            flags.append(f"{TRACK_LOST}{int(lost.sum())}")
        if flags != row.flags:
            row.flags = flags
        if ok.any():
            done.reached = frame
        active = ok
        if not active.any():
            break
    session.flush()
    if after or done.lost:
        record_revision(
            session, annotation=annotation, node_type="track", node_id=track.id,
            version=track.version, action=TRACK_ACTION, user=user, source=Source.human,
            before={"frames": before},
            after={"frames": after, "from": frame_index, "direction": direction,
                   "lost": {str(f): points for f, points in done.lost.items()}},
        )  # fmt: skip
    return done


def accept_span(session: Session, user: User, track_id: int, frame_index: int) -> range:
    """Accept the labelled guesses shown (tracked, or the model's) on every frame after the
    last keyframe before ``frame_index`` in its shot, up to ``frame_index``: the frames a
    person stepped through since tracking from that keyframe. Returns the frames covered."""
    track, annotation, clip = editable_track(session, user, track_id)
    frame_row(session, track, frame_index, clip)  # Invalid outside the clip
    start, _ = _shot_of(session, track, clip, frame_index)
    keyframe = session.scalar(
        select(KeypointFrame.frame_index)
        .where(
            KeypointFrame.track_id == track.id,
            KeypointFrame.is_keyframe,
            KeypointFrame.frame_index.between(start, frame_index - 1),
        )
        .order_by(KeypointFrame.frame_index.desc())
        .limit(1)
    )
    if keyframe is None:
        raise Invalid(
            f"No keyframe before frame {frame_index} in its shot: accepting a tracked span"
            " starts at the frame tracked from (Track makes it a keyframe)."
        )
    span = range(keyframe + 1, frame_index + 1)
    rows = session.scalars(
        select(KeypointFrame)
        .where(KeypointFrame.track_id == track.id, KeypointFrame.frame_index.in_(span))
        .order_by(KeypointFrame.frame_index)
    )
    for row in rows:
        _accept_shown(session, user, annotation, row, None, SPAN_ACTION)
    session.flush()
    return span


def _accept_shown(
    session: Session,
    user: User,
    annotation: Annotation,
    row: KeypointFrame,
    which: BoolArray | None,
    action: str,
    *,
    keyframe: bool | None = None,
) -> None:
    """The person accepts the labelled guesses among ``which`` (None: all) on ``row`` as
    shown (a person's point stays the person's), recorded as ``action``."""
    pose, sources = decode_with_sources(row.points)
    guesses = ~by_person(sources) & (pose[:, V] > 0)
    if which is not None:
        guesses &= which
    claims = acceptance_claims(len(pose), np.flatnonzero(guesses).tolist())
    write_pose(session, user, annotation, row, pose, claims, action, keyframe)


def _points_of(pose: PoseArray, which: BoolArray) -> dict[str, list[float]]:
    """The revision's record of some points: {index: [x, y, v]}."""
    index = np.flatnonzero(which)
    return dict(zip(map(str, index), np.round(pose[index, :3], 2).tolist(), strict=True))


def _held_move(runs: list[DrawingRun], a: int, b: int) -> Move | None:
    """How the drawing on frame ``a`` moves to frame ``b`` when both show the same one."""
    run = run_at(runs, a)
    if run is None or b not in run:
        return None
    s0, dx0, dy0 = run.move_at(a)
    s1, dx1, dy1 = run.move_at(b)
    scale = s1 / s0
    return (scale, dx1 - scale * dx0, dy1 - scale * dy0)


def _span(
    session: Session,
    track: Track,
    clip: Clip,
    frame_index: int,
    direction: Direction,
    active: BoolArray,
    runs: list[DrawingRun],
) -> tuple[list[int], dict[int, KeypointFrame]]:
    """The frames tracking goes through, ``frame_index`` first: to the shot's edge (at most
    ``MAX_FRAMES``), stopping before the next keyframe or frame where a person set one of the
    points (frames of the key's own held drawing do not stop it: a held-run edit set them
    all); with the stored rows up to there, read in one query."""
    start, end = _shot_of(session, track, clip, frame_index)
    step = 1 if direction == "forward" else -1
    last = (
        min(end - 1, frame_index + MAX_FRAMES - 1)
        if step == 1
        else max(start, frame_index - MAX_FRAMES + 1)
    )
    own = run_at(runs, frame_index)
    rows = {
        row.frame_index: row
        for row in session.scalars(
            select(KeypointFrame).where(
                KeypointFrame.track_id == track.id,
                KeypointFrame.frame_index.between(min(frame_index, last), max(frame_index, last)),
            )
        )
    }
    stops = [
        n
        for n, row in rows.items()
        if n != frame_index
        and (own is None or n not in own)
        and (row.is_keyframe or (by_person(decode_with_sources(row.points)[1]) & active).any())
    ]
    if stops:
        last = min(stops) - 1 if step == 1 else max(stops) + 1
    return list(range(frame_index, last + step, step)), rows


def _shot_of(session: Session, track: Track, clip: Clip, frame_index: int) -> tuple[int, int]:
    """The [start, end) of the annotation's shot holding the frame (the clip without shots)."""
    annotation_id = session.get_one(Character, track.character_id).annotation_id
    shot = session.scalar(
        select(Shot).where(
            Shot.annotation_id == annotation_id,
            Shot.start_frame <= frame_index,
            Shot.end_frame > frame_index,
        )
    )
    if shot is None:
        return 0, clip.frame_count or 0
    return shot.start_frame, shot.end_frame


def _frame_cache(clip: Clip) -> FrameCache:
    try:
        return clip_frames(clip)
    except FileNotFoundError as exc:
        raise Invalid("The frames of this clip are not ready yet; try again shortly.") from exc
