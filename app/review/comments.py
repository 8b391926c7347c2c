"""Review comments: pinned threads, rejections and their answers (what resubmitting waits for)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations.access import visible_annotation
from app.annotations.history import changed_since
from app.annotations.models import Annotation, Track
from app.annotations.tree import NODE_MODELS, Node, get_node, node_type_of, project_of
from app.auth.models import Role, User
from app.clips.models import Clip
from app.core.errors import Forbidden, Invalid, NotFound
from app.projects.reasons import KINDS, reason_label, reasons_by_kind
from app.review.models import ReviewComment

STAFF = (Role.reviewer, Role.admin)


class Region(BaseModel):
    x: float = Field(ge=0)
    y: float = Field(ge=0)
    w: float = Field(gt=0)
    h: float = Field(gt=0)


class Pin(BaseModel):
    """Where a comment points, beyond its node: a frame, a point of a track in that frame,
    and a region in the clip's pixels; each optional."""

    frame: int | None = Field(default=None, ge=0)
    point: int | None = Field(default=None, ge=0)
    region: Region | None = None


UNPINNED = Pin()


def open_rejections(session: Session, annotation: Annotation) -> list[ReviewComment]:
    return list(
        session.scalars(
            select(ReviewComment)
            .where(
                ReviewComment.annotation_id == annotation.id,
                ReviewComment.parent_id.is_(None),
                ReviewComment.reason.is_not(None),
                ReviewComment.resolved.is_(False),
            )
            .order_by(ReviewComment.id)
        )
    )


def unanswered_rejections(session: Session, annotation: Annotation) -> list[ReviewComment]:
    """Open rejections with neither a change under the rejected node nor the annotator's reply."""
    waiting = []
    for comment in open_rejections(session, annotation):
        replied = session.scalar(
            select(ReviewComment.id).where(
                ReviewComment.parent_id == comment.id,
                ReviewComment.author_id == annotation.annotator_id,
            )
        )
        if replied is not None:
            continue
        model = NODE_MODELS.get(comment.node_type)
        node: Node | None = session.get(model, comment.node_id) if model else None  # type: ignore[assignment]
        if node is None or changed_since(session, annotation, node, comment.created_at):
            continue  # a removed node was changed by its removal
        waiting.append(comment)
    return waiting


def check_resubmit(session: Session, annotation: Annotation) -> None:
    waiting = unanswered_rejections(session, annotation)
    if waiting:
        where = "; ".join(_pin_text(c) for c in waiting)
        raise Forbidden(
            f"Fix or answer each rejection before resubmitting: {where} "
            "has neither a change nor your reply.",
            detail={"unanswered": [c.id for c in waiting]},
        )


def _pin_text(comment: ReviewComment) -> str:
    text = f"{comment.node_type.replace('_', ' ')} {comment.node_id}"
    if comment.frame_index is not None:
        text += f" frame {comment.frame_index}"
    if comment.point_index is not None:
        text += f" point {comment.point_index}"
    return f"{text} ({reason_label(comment.reason)})"


def new_comment(
    session: Session,
    user: User,
    annotation: Annotation,
    node: Node,
    body: str,
    reason: str | None,
    pin: Pin,
) -> ReviewComment:
    if not body.strip():
        raise Invalid("Write what is wrong (the comment is empty).")
    if reason is not None:
        _check_reason(session, annotation, node, reason)
    clip = session.get_one(Clip, annotation.clip_id)
    if pin.frame is not None and not 0 <= pin.frame < (clip.frame_count or 0):
        raise Invalid(f"Frame {pin.frame} is outside the clip.")
    if pin.point is not None:
        if not isinstance(node, Track):
            raise Invalid("Only a track's comments can be pinned to a point.")
        if pin.frame is None or not 0 <= pin.point < node.num_points:
            raise Invalid(f"Pin a point to a frame, with 0 <= point < {node.num_points}.")
    if pin.region is not None:
        _check_region(pin.region, clip)
    comment = ReviewComment(
        annotation_id=annotation.id,
        node_type=node_type_of(node),
        node_id=node.id,
        frame_index=pin.frame,
        point_index=pin.point,
        region=pin.region.model_dump() if pin.region else None,
        author_id=user.id,
        reason=reason,
        body=body.strip(),
    )
    session.add(comment)
    session.flush()
    return comment


def _check_reason(session: Session, annotation: Annotation, node: Node, reason: str) -> None:
    """A rejection names one of the project's reasons for this kind of item."""
    kind = node_type_of(node)
    fitting = reasons_by_kind(project_of(session, annotation).rejection_reasons)[kind]
    if reason not in fitting:
        choices = "; ".join(reason_label(r) for r in fitting)
        raise Invalid(
            f"{reason_label(reason) or 'No reason'!r} is not one of the project's rejection "
            f"reasons for a {KINDS[kind]}. Choose one of: {choices}.",
            detail={"reasons": fitting},
        )


def _check_region(region: Region, clip: Clip) -> None:
    if region.x + region.w > (clip.width or 0) or region.y + region.h > (clip.height or 0):
        raise Invalid(f"The region must lie inside the {clip.width}x{clip.height} frame.")


def add_comment(
    session: Session,
    user: User,
    node_type: str,
    node_id: int,
    body: str,
    pin: Pin = UNPINNED,
) -> ReviewComment:
    """A reviewer's pinned note that rejects nothing (it never blocks resubmission)."""
    node, annotation = get_node(session, node_type, node_id)
    if user.role not in STAFF:
        raise Forbidden("Only reviewers and admins start comment threads; reply to one instead.")
    return new_comment(session, user, annotation, node, body, None, pin)


def _visible_comment(session: Session, user: User, comment_id: int) -> ReviewComment:
    comment = session.get(ReviewComment, comment_id)
    if comment is None:
        raise NotFound(f"No comment {comment_id}.")
    visible_annotation(session, user, comment.annotation_id)
    return comment


def reply(session: Session, user: User, comment_id: int, body: str) -> ReviewComment:
    """A reply in a thread (the annotator's answer to a rejection counts for resubmitting)."""
    parent = _visible_comment(session, user, comment_id)
    root = session.get_one(ReviewComment, parent.parent_id) if parent.parent_id else parent
    if not body.strip():
        raise Invalid("The reply is empty.")
    answer = ReviewComment(
        annotation_id=root.annotation_id,
        node_type=root.node_type,
        node_id=root.node_id,
        frame_index=root.frame_index,
        point_index=root.point_index,
        parent_id=root.id,
        author_id=user.id,
        body=body.strip(),
    )
    session.add(answer)
    session.flush()
    return answer


def resolve(session: Session, user: User, comment_id: int, resolved: bool) -> ReviewComment:
    """Resolve or reopen a thread (reviewers and admins: annotators answer, they don't close)."""
    comment = _visible_comment(session, user, comment_id)
    if user.role not in STAFF:
        raise Forbidden("Only reviewers and admins resolve or reopen comment threads.")
    if comment.parent_id is not None:
        raise Invalid("Resolve the thread's first comment, not a reply.")
    comment.resolved = resolved
    session.flush()
    return comment


def resolve_rejections(session: Session, annotation: Annotation, node: Node) -> None:
    """Approving a node settles the rejections pinned to it."""
    for comment in open_rejections(session, annotation):
        if (comment.node_type, comment.node_id) == (node_type_of(node), node.id):
            comment.resolved = True


def comment_threads(session: Session, annotation: Annotation) -> list[dict[str, Any]]:
    rows = list(
        session.execute(
            select(ReviewComment, User.username)
            .join(User, User.id == ReviewComment.author_id)
            .where(ReviewComment.annotation_id == annotation.id)
            .order_by(ReviewComment.id)
        )
    )
    threads: dict[int, dict[str, Any]] = {}
    for comment, author in rows:
        item = {
            "id": comment.id,
            "author": author,
            "body": comment.body,
            "created_at": comment.created_at.isoformat(),
        }
        if comment.parent_id is None:
            threads[comment.id] = {
                **item,
                "node_type": comment.node_type,
                "node_id": comment.node_id,
                "frame": comment.frame_index,
                "point": comment.point_index,
                "region": comment.region,
                "reason": comment.reason,
                "reason_label": reason_label(comment.reason),
                "resolved": comment.resolved,
                "replies": [],
            }
        elif comment.parent_id in threads:
            threads[comment.parent_id]["replies"].append(item)
    return list(threads.values())
