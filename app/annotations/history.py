"""A node's history: its revisions, the difference between two of them, restoring one through
the normal save path, and whether anything under a node changed since a moment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select, true
from sqlalchemy.orm import Session

from app.annotations.access import get_annotation, visible_annotation
from app.annotations.keypoint_edits import save_frame
from app.annotations.models import (
    Annotation,
    Caption,
    Character,
    KeypointFrame,
    Revision,
    Shot,
    SpeechSegment,
    Track,
)
from app.annotations.node_edits import (
    set_emotions,
    set_quality,
    set_shot_boundaries,
    set_tags,
    update_caption,
    update_speech,
)
from app.annotations.points import decode_points
from app.annotations.revisions import STATUS_ACTION
from app.annotations.tree import Node, annotation_of, get_node, node_type_of, project_of
from app.auth.models import User
from app.core.errors import Invalid, NotFound

RESTORE_ACTION = "restore"
# Fields a revision may carry that describe review, not content: never written back.
NOT_RESTORABLE = frozenset({STATUS_ACTION, "reviewer_approved", "accepted", "reason"})


@dataclass
class RevisionView:
    """One revision as the history panel (and the API) shows it."""

    id: int
    node_type: str
    node_id: int
    frame: int | None
    version: int
    action: str
    source: str
    user: str | None
    created_at: datetime
    before: Any
    after: Any
    comment: str | None


def history(session: Session, user: User, node_type: str, node_id: int) -> list[RevisionView]:
    """A node's revisions; a track's include those of its keypoint frames (with the frame)."""
    if node_type == "keypoint_frame":
        row = session.get(KeypointFrame, node_id)
        if row is None:
            raise NotFound(f"No keypoint frame {node_id}.")
        node_type, node_id = "track", row.track_id
        only_frame: int | None = row.frame_index
    else:
        only_frame = None
    node, annotation = get_node(session, node_type, node_id)
    visible_annotation(session, user, annotation.id)
    condition = and_(Revision.node_type == node_type, Revision.node_id == node.id)
    frames: dict[int, int] = {}
    if isinstance(node, Track):
        frames = {
            frame_id: frame_index
            for frame_id, frame_index in session.execute(
                select(KeypointFrame.id, KeypointFrame.frame_index).where(
                    KeypointFrame.track_id == node.id
                )
            )
        }
        if only_frame is not None:
            frames = {k: v for k, v in frames.items() if v == only_frame}
            condition = false()
        condition = or_(
            condition,
            and_(Revision.node_type == "keypoint_frame", Revision.node_id.in_(list(frames))),
        )
    rows = session.execute(
        select(Revision, User.username)
        .outerjoin(User, User.id == Revision.user_id)
        .where(condition)
        .order_by(Revision.id)
    )
    return [
        revision_view(
            rev, username, frames.get(rev.node_id) if rev.node_type == "keypoint_frame" else None
        )
        for rev, username in rows
    ]


def revision_view(revision: Revision, username: str | None, frame: int | None) -> RevisionView:
    """A revision as the history panel shows it: its author's name, and the frame of a
    keypoint frame's revision."""
    return RevisionView(
        id=revision.id,
        node_type=revision.node_type,
        node_id=revision.node_id,
        frame=frame,
        version=revision.version,
        action=revision.action,
        source=revision.source.value,
        user=username,
        created_at=revision.created_at,
        before=revision.before,
        after=revision.after,
        comment=revision.comment,
    )


def _fields(action: str, value: Any) -> dict[str, Any]:
    """A revision's before/after as {field: value}, so any two revisions of a node compare."""
    if value is None or action == "accept":
        return {}
    if action in ("tags", "quality", "shots", "emotions"):
        return {action: value}
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "from_model"}
    return {}


def state_at(revisions: Sequence[Revision], revision_id: int) -> dict[str, Any]:
    """Every field the revisions touch, as it was right after ``revision_id``.

    A field's value is the ``after`` of its last revision up to that point, or else the
    ``before`` of the first later revision that touched it (its value before any edit)."""
    state: dict[str, Any] = {}
    for rev in revisions:
        if rev.id <= revision_id:
            state.update(_fields(rev.action, rev.after))
    for rev in revisions:
        if rev.id > revision_id:
            for key, value in _fields(rev.action, rev.before).items():
                state.setdefault(key, value)
    return state


def _node_revisions(session: Session, revision_id: int) -> tuple[Revision, list[Revision]]:
    revision = session.get(Revision, revision_id)
    if revision is None:
        raise NotFound(f"No revision {revision_id}.")
    revisions = list(
        session.scalars(
            select(Revision)
            .where(Revision.node_type == revision.node_type, Revision.node_id == revision.node_id)
            .order_by(Revision.id)
        )
    )
    return revision, revisions


def _check_visible(session: Session, user: User, revision: Revision) -> None:
    if revision.annotation_id is None:
        raise NotFound(f"No revision {revision.id}.")
    visible_annotation(session, user, revision.annotation_id)


def diff(session: Session, user: User, first_id: int, second_id: int) -> dict[str, Any]:
    """The fields that differ between the node as of two of its revisions."""
    first, revisions = _node_revisions(session, min(first_id, second_id))
    second = session.get(Revision, max(first_id, second_id))
    if second is None:
        raise NotFound(f"No revision {max(first_id, second_id)}.")
    if (second.node_type, second.node_id) != (first.node_type, first.node_id):
        raise Invalid("Compare two revisions of the same item.")
    _check_visible(session, user, first)
    a, b = state_at(revisions, first.id), state_at(revisions, second.id)
    changes = [
        {"field": key, "a": a.get(key), "b": b.get(key)}
        for key in sorted(set(a) | set(b), key=_field_order)
        if a.get(key) != b.get(key)
    ]
    return {"node_type": first.node_type, "node_id": first.node_id, "a": first.id,
            "b": second.id, "changes": changes}  # fmt: skip


def _field_order(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (10**6, key)


def restore(session: Session, user: User, revision_id: int, version: int) -> list[Revision]:
    """Put a node back as it was right after ``revision_id``, through the normal save path.

    ``version`` is the node's current version (a stale one is a Conflict, as for any save); the
    edit checks apply (only its annotator, or an admin, while draft or rejected). The writes are
    new revisions with action ``restore``; nothing is deleted."""
    revision, revisions = _node_revisions(session, revision_id)
    _check_visible(session, user, revision)
    target = state_at(revisions, revision.id)
    current = state_at(revisions, revisions[-1].id)
    wanted = {k: v for k, v in target.items() if k not in NOT_RESTORABLE and current.get(k) != v}
    if not wanted:
        raise Invalid(f"Nothing to restore: the item already matches revision {revision.id}.")
    saves = _restore_saves(session, user, revision, wanted, version)
    written: list[Revision] = []
    for save in saves:
        save()
        for item in list(session.new):
            if isinstance(item, Revision):
                item.action = RESTORE_ACTION
                item.comment = f"restored revision {revision.id}"
                written.append(item)
        session.flush()
    return written


def _restore_saves(
    session: Session, user: User, revision: Revision, wanted: dict[str, Any], version: int
) -> list[Callable[[], Any]]:
    """The normal edit calls that write ``wanted`` back onto the revision's node."""
    kind, node_id = revision.node_type, revision.node_id
    if kind == "keypoint_frame":
        row = session.get(KeypointFrame, node_id)
        if row is None:
            raise NotFound("That keypoint frame no longer exists.")
        pose, _ = decode_points(row.points)
        points = [[float(p[0]), float(p[1]), int(p[2])] for p in pose]
        for key, value in wanted.items():
            points[int(key)] = [float(value[0]), float(value[1]), int(value[2])]
        track_id, frame_index = row.track_id, row.frame_index
        return [lambda: save_frame(session, user, track_id, frame_index, points, version)]
    if kind == "caption" and "text" in wanted:
        return [lambda: update_caption(session, user, node_id, wanted["text"], version)]
    if kind == "speech_segment":
        segment = session.get(SpeechSegment, node_id)
        if segment is None:
            raise Invalid("That speech segment was deleted; add it again instead.")
        start = wanted.get("start", segment.start_s)
        end = wanted.get("end", segment.end_s)
        text = wanted.get("transcript", segment.transcript)
        return [lambda: update_speech(session, user, node_id, start, end, text, version)]
    if kind == "character" and "emotions" in wanted:
        character = session.get(Character, node_id)
        if character is None:
            raise Invalid("That character was deleted.")
        labels = project_of(session, annotation_of(session, character)).emotion_labels
        return [lambda: set_emotions(session, user, node_id, wanted["emotions"], version, labels)]
    if kind == "annotation":
        return _restore_annotation(session, user, node_id, wanted, version)
    raise Invalid(f"Revision {revision.id} has nothing that can be restored.")


def _restore_annotation(
    session: Session, user: User, annotation_id: int, wanted: dict[str, Any], version: int
) -> list[Callable[[], Any]]:
    annotation = get_annotation(session, annotation_id)
    project = project_of(session, annotation)
    # The first save checks the caller's version; the later ones follow the version it left.
    versions = iter([version])

    def next_version() -> int:
        return next(versions, annotation.version)

    saves: list[Callable[[], Any]] = []
    if "tags" in wanted:
        saves.append(
            lambda: set_tags(
                session, user, annotation_id, wanted["tags"], next_version(),
                project.tag_vocabulary,
            )
        )  # fmt: skip
    if "quality" in wanted:
        quality = wanted["quality"] or {}
        saves.append(
            lambda: set_quality(
                session, user, annotation_id, bool(quality.get("keep", True)),
                quality.get("reasons", []), next_version(), no_speech=quality.get("no_speech"),
            )
        )  # fmt: skip
    if "shots" in wanted:
        starts = [int(s[0]) for s in wanted["shots"]]
        saves.append(
            lambda: set_shot_boundaries(session, user, annotation_id, starts, next_version())
        )
    if not saves:
        raise Invalid("Only tags, quality and shot boundaries of a clip can be restored.")
    return saves


def _subtree_condition(session: Session, node: Node) -> ColumnElement[bool]:
    """Revisions that change this node or anything under it (or what it describes)."""

    def on(node_type: str, ids: Any) -> ColumnElement[bool]:
        return and_(Revision.node_type == node_type, Revision.node_id.in_(ids))

    def frames_of(track_ids: Any) -> Any:
        return select(KeypointFrame.id).where(KeypointFrame.track_id.in_(track_ids))

    if isinstance(node, Annotation):
        return true()
    if isinstance(node, Track):
        return or_(on("track", [node.id]), on("keypoint_frame", frames_of([node.id])))
    if isinstance(node, Character):
        tracks = select(Track.id).where(Track.character_id == node.id)
        captions = select(Caption.id).where(
            Caption.level == "character", Caption.target_id == node.id
        )
        return or_(
            on("character", [node.id]),
            on("track", tracks),
            on("keypoint_frame", frames_of(tracks)),
            on("caption", captions),
        )
    if isinstance(node, Shot):
        captions = select(Caption.id).where(Caption.level == "shot", Caption.target_id == node.id)
        return or_(
            on("shot", [node.id]),
            on("caption", captions),
            and_(Revision.node_type == "annotation", Revision.action == "shots"),
        )
    return on(node_type_of(node), [node.id])


def changed_since(
    session: Session, annotation: Annotation, node: Node, since: datetime | None
) -> bool:
    query = select(Revision.id).where(
        Revision.annotation_id == annotation.id,
        Revision.action != STATUS_ACTION,
        _subtree_condition(session, node),
    )
    if since is not None:
        query = query.where(Revision.created_at > since)
    return session.scalar(query.limit(1)) is not None
