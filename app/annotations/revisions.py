"""Revision bookkeeping: every change to an annotation node is a Revision with before/after,
and a save names the version it edited (a stale one is a Conflict, never an overwrite).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations.models import (
    Annotation,
    Caption,
    Character,
    KeypointFrame,
    Revision,
    Shot,
    Source,
    SpeechSegment,
    Track,
)
from app.annotations.payload import frame_payload
from app.auth.models import User
from app.core.db import describe_lost_races
from app.core.errors import Conflict

STATUS_ACTION = "status"  # review transitions; every other Revision action is a change of content


def record_revision(
    session: Session,
    *,
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
    """Append one Revision: ``node_type``/``node_id`` at ``version`` went from ``before`` to
    ``after`` by ``action`` (``STATUS_ACTION`` for review transitions)."""
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


class EditedNode(Protocol):
    id: int
    version: int


def record_edit(
    session: Session,
    *,
    user: User,
    annotation: Annotation,
    node_type: str,
    node: EditedNode,
    action: str,
    before: Any,
    after: Any,
    source: Source = Source.human,
) -> None:
    """Record a person's change to ``node`` at the id and version it has now; a save that
    changed nothing leaves no revision (saving twice is not two edits)."""
    if before == after:
        return
    record_revision(
        session,
        annotation=annotation,
        node_type=node_type,
        node_id=node.id,
        version=node.version,
        action=action,
        user=user,
        source=source,
        before=before,
        after=after,
    )


def check_node_version(kind: str, current: int, given: int, payload: Any) -> None:
    """A save names the version it edited: a stale one is a Conflict carrying the current state."""
    if current != given:
        raise Conflict(
            f"This {kind} was changed by someone else (now version {current}, you edited {given}).",
            detail={"current_version": current, "current": payload},
        )


def apply_edit(
    session: Session,
    user: User,
    annotation: Annotation,
    node: EditedNode,
    *,
    node_type: str,
    action: str,
    before: Any,
    change: Callable[[], Any],
    version: int | None = None,
    shown: Any = None,
    source: Source = Source.human,
) -> None:
    """The edit pattern, once the caller may edit ``node``: check the version they edited (a
    stale one is a Conflict showing ``shown``, by default ``before``; none for a new node),
    make the ``change`` (it returns the node's value after), flush, record the revision."""
    if version is not None:
        current = before if shown is None else shown
        check_node_version(node_type.replace("_", " "), node.version, version, current)
    after = change()
    session.flush()
    record_edit(
        session,
        user=user,
        annotation=annotation,
        node_type=node_type,
        node=node,
        action=action,
        before=before,
        after=after,
        source=source,
    )


def revisions_of(session: Session, node_type: str, node_id: int) -> list[Revision]:
    """A node's revisions, oldest first."""
    return list(
        session.scalars(
            select(Revision)
            .where(Revision.node_type == node_type, Revision.node_id == node_id)
            .order_by(Revision.id)
        )
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
