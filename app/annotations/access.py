"""Who may see and who may edit an annotation: the one visibility rule and the one editing rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

from app.annotations.models import Annotation, Caption, Character, NodeStatus, SpeechSegment
from app.auth.models import Role, User
from app.batches.assignments import holds_clip
from app.batches.models import Assignment
from app.core.errors import Forbidden, NotFound

EDITABLE = (NodeStatus.draft, NodeStatus.rejected)


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


def edit_refusal(annotation: Annotation, user: User) -> str | None:
    """Why ``user`` may not edit ``annotation`` now, or None when they may.

    The one "may this person edit" rule: the saves enforce it, the workspace page and its
    payload show it (reviewers correct through review's Fix and accept instead)."""
    if annotation.annotator_id != user.id and user.role != Role.admin:
        return "Only the annotator who owns this annotation can edit it."
    if annotation.status not in EDITABLE:
        return f"This annotation is {annotation.status.value}; it cannot be edited now."
    return None


@dataclass(frozen=True)
class EditRights:
    """The editing rule's answer for one person and annotation, computed once per request and
    sent as it is to the workspace page, its payload and the review document."""

    editable: bool
    notice: str | None  # what the workspace says to someone who may not edit


def edit_rights(annotation: Annotation, user: User) -> EditRights:
    """Whether ``user`` may edit ``annotation`` now and, when not, the workspace's notice."""
    refusal = edit_refusal(annotation, user)
    if refusal is None:
        return EditRights(editable=True, notice=None)
    return EditRights(editable=False, notice=_read_only_notice(annotation, user, refusal))


def _read_only_notice(annotation: Annotation, user: User, refusal: str) -> str:
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


NodeT = TypeVar("NodeT", Character, Caption, SpeechSegment)


def editable_child(
    session: Session, user: User, model: type[NodeT], node_id: int, label: str
) -> tuple[NodeT, Annotation]:
    """A clip-level child node and its annotation, once the caller may edit it."""
    node = session.get(model, node_id)
    if node is None:
        raise NotFound(f"No {label} {node_id}.")
    annotation = session.get_one(Annotation, node.annotation_id)
    check_editable(session, annotation, user)
    return node, annotation


def editable_annotation(session: Session, user: User, annotation_id: int) -> Annotation:
    """The annotation, once the caller may edit it (:func:`check_editable`)."""
    annotation = get_annotation(session, annotation_id)
    check_editable(session, annotation, user)
    return annotation
