"""Hierarchical review: the approval state machine, pinned comments, history, diff and restore.

Nodes and their children (what "a parent is approved only when all its children are" means)::

    annotation (the clip: tags, quality and timing are its own fields)
     ├─ shot, caption, speech_segment
     └─ character
         └─ track (its keypoint frames carry no status; they are the track's content)

Every node goes draft → submitted → approved | rejected. The rules, all enforced here:

* only reviewers and admins review, never their own annotation (self-approval ban, admins too);
* a node is approved only while submitted, a parent only when every child is approved, and
  each approval names the node's ``version`` the reviewer saw (a race is a Conflict);
* rejecting any node sends the clip back: the annotation and its Assignment become rejected and
  a ReviewComment (reason from the project's taxonomy + text, pinned to the node and optionally
  a frame, point or region) says why;
* resubmitting needs, for each open rejection, a change to the rejected node (or anything under
  it) after the comment, or the annotator's reply in its thread (:func:`check_resubmit`);
* two levels: with ``Project.admin_acceptance`` the reviewer's approval of the clip sets
  ``approved_at`` and leaves the status ``submitted`` ("awaiting acceptance"); the admin's
  :func:`accept` makes it ``approved``. Without it the reviewer's approval is final. Only a final
  approval marks the annotation primary (when the clip has none) and the Assignment approved, so
  exports of ``approved`` annotations can never see a clip an admin has yet to accept;
* approving a node resolves the rejection threads pinned to it (the fix was accepted);
* admins reopen any node with a reason: it and its ancestors go back to draft.

"Approve all remaining children" approves only the children the client says it showed the
reviewer (the review panel records each node it displayed); the others are returned unapproved.

History: every transition is a Revision with action ``status`` (edits use other actions), so
"changed since" questions read the same table the history panel shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeAlias

import numpy as np
from sqlalchemy import ColumnElement, and_, false, func, or_, select, true
from sqlalchemy.orm import Session

from app.agreement.recompute import on_annotation_approved
from app.annotations import service as edits
from app.annotations.models import (
    Annotation,
    AnnotationKind,
    Caption,
    Character,
    KeypointFrame,
    NodeStatus,
    Revision,
    Shot,
    Source,
    SpeechSegment,
    Track,
)
from app.annotations.points import decode_points
from app.auth.models import Role, User
from app.batches.models import Assignment, AssignmentState, Batch, BatchClip
from app.clips.models import Clip
from app.core.db import utcnow
from app.core.errors import Conflict, Forbidden, Invalid, NotFound
from app.projects.models import Project
from app.projects.reasons import KINDS, reason_label, reasons_by_kind
from app.review.models import ReviewComment

Node: TypeAlias = Annotation | Shot | Character | Track | Caption | SpeechSegment
NODE_MODELS: dict[str, type[Node]] = {
    "annotation": Annotation,
    "shot": Shot,
    "character": Character,
    "track": Track,
    "caption": Caption,
    "speech_segment": SpeechSegment,
}
STAFF = (Role.reviewer, Role.admin)
STATUS_ACTION = "status"  # review transitions; every other Revision action is a change of content
RESTORE_ACTION = "restore"
NOT_RESTORABLE = frozenset({"status", "reviewer_approved", "accepted", "reason"})


@dataclass(frozen=True)
class NodeRef:
    type: str
    id: int


@dataclass(frozen=True)
class Pin:
    """Where a comment points, beyond its node: a frame, a point of a track in that frame,
    and a region ``{x, y, w, h}`` in the clip's pixels; each optional."""

    frame: int | None = None
    point: int | None = None
    region: dict[str, float] | None = None


UNPINNED = Pin()


@dataclass
class ChildrenApproval:
    """What "approve all remaining children" did: approved, left because unseen, or blocked."""

    approved: list[NodeRef] = field(default_factory=list)
    not_shown: list[NodeRef] = field(default_factory=list)
    blocked: dict[str, str] = field(default_factory=dict)  # "type:id" -> why


@dataclass
class RevisionView:
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


@dataclass
class QueueFilters:
    batch_id: int | None = None
    annotator_id: int | None = None
    min_age_hours: float | None = None
    min_rejections: int | None = None


@dataclass
class QueueRow:
    annotation_id: int
    clip_id: int
    filename: str
    project: str
    batch: str | None
    annotator: str | None
    submitted_at: datetime | None
    age_hours: float
    rejections: int
    awaiting_acceptance: bool


# ---------------------------------------------------------------- the tree


def get_node(session: Session, node_type: str, node_id: int) -> tuple[Node, Annotation]:
    """The node and the annotation it belongs to."""
    model = NODE_MODELS.get(node_type)
    if model is None:
        raise Invalid(f"Unknown node type {node_type!r}; use one of {', '.join(NODE_MODELS)}.")
    node: Node | None = session.get(model, node_id)  # type: ignore[assignment]
    if node is None:
        raise NotFound(f"No {node_type.replace('_', ' ')} {node_id}.")
    return node, annotation_of(session, node)


def annotation_of(session: Session, node: Node) -> Annotation:
    if isinstance(node, Annotation):
        return node
    if isinstance(node, Track):
        node = session.get_one(Character, node.character_id)
    return session.get_one(Annotation, node.annotation_id)


def node_type_of(node: Node) -> str:
    return next(name for name, model in NODE_MODELS.items() if isinstance(node, model))


def children_of(session: Session, node: Node) -> list[Node]:
    if isinstance(node, Annotation):
        owned: list[Node] = []
        for model in (Shot, Character, Caption, SpeechSegment):
            owned += session.scalars(
                select(model).where(model.annotation_id == node.id).order_by(model.id)
            )
        return owned
    if isinstance(node, Character):
        return list(
            session.scalars(select(Track).where(Track.character_id == node.id).order_by(Track.id))
        )
    return []


def _ancestors(session: Session, node: Node) -> list[Node]:
    if isinstance(node, Annotation):
        return []
    if isinstance(node, Track):
        character = session.get_one(Character, node.character_id)
        return [character, annotation_of(session, character)]
    return [annotation_of(session, node)]


def label_of(node: Node) -> str:
    return f"{node_type_of(node).replace('_', ' ')} {node.id}"


def project_of(session: Session, annotation: Annotation) -> Project:
    clip = session.get_one(Clip, annotation.clip_id)
    return session.get_one(Project, clip.project_id)


def _assignment(session: Session, annotation: Annotation) -> Assignment | None:
    return session.scalar(select(Assignment).where(Assignment.annotation_id == annotation.id))


# ---------------------------------------------------------------- rules


def awaiting_acceptance(annotation: Annotation) -> bool:
    return annotation.status == NodeStatus.submitted and annotation.approved_at is not None


def check_reviewer(user: User, annotation: Annotation) -> None:
    if user.role not in STAFF:
        raise Forbidden("Only reviewers and admins review annotations.")
    if annotation.annotator_id == user.id:
        raise Forbidden("Self-approval ban: nobody reviews their own annotation.")
    if annotation.kind == AnnotationKind.model:
        raise Forbidden("The model's draft is not reviewed; review a person's annotation.")


def check_version(node: Node, version: int) -> None:
    if node.version != version:
        raise Conflict(
            f"This {label_of(node)} changed since you loaded it (now version {node.version}, "
            f"you saw {version}). Reload to review the current version.",
            detail={"current_version": node.version, "status": node.status.value},
        )


def check_in_review(annotation: Annotation) -> None:
    if annotation.status != NodeStatus.submitted:
        raise Forbidden(
            f"This annotation is {annotation.status.value}; only submitted work is reviewed."
        )
    if annotation.approved_at is not None:
        raise Forbidden("A reviewer already approved this clip; it awaits an admin's acceptance.")


def _record_status(
    session: Session,
    annotation: Annotation,
    node: Node,
    user: User | None,
    before: NodeStatus,
    after: dict[str, Any],
    comment: str | None = None,
) -> None:
    session.flush()  # the version the revision records is the one after this change
    edits._record(
        session,
        annotation,
        node_type_of(node),
        node.id,
        node.version,
        STATUS_ACTION,
        user,
        Source.human,
        {"status": before.value},
        after,
        comment,
    )


def _set_status(
    session: Session,
    annotation: Annotation,
    node: Node,
    user: User | None,
    status: NodeStatus,
    comment: str | None = None,
) -> None:
    before = node.status
    node.status = status
    if user is not None:
        node.updated_by_id = user.id
    _record_status(session, annotation, node, user, before, {"status": status.value}, comment)


# ---------------------------------------------------------------- transitions


def approve(session: Session, user: User, node_type: str, node_id: int, version: int) -> Node:
    """Approve one submitted node; a parent only once every child is approved."""
    node, annotation = get_node(session, node_type, node_id)
    check_reviewer(user, annotation)
    check_in_review(annotation)
    check_version(node, version)
    if node.status != NodeStatus.submitted:
        raise Forbidden(
            f"This {label_of(node)} is {node.status.value}; only submitted items can be approved."
        )
    pending = [c for c in children_of(session, node) if c.status != NodeStatus.approved]
    if pending:
        names = ", ".join(label_of(c) for c in pending[:5]) + (" …" if len(pending) > 5 else "")
        raise Forbidden(
            f"Parent gating: approve every child of this {label_of(node)} first "
            f"({len(pending)} not approved: {names}).",
            detail={"pending": [{"type": node_type_of(c), "id": c.id} for c in pending]},
        )
    _resolve_rejections(session, annotation, node)
    if not isinstance(node, Annotation):
        _set_status(session, annotation, node, user, NodeStatus.approved)
        return node
    node.approved_at = utcnow()
    node.updated_by_id = user.id
    if project_of(session, annotation).admin_acceptance:
        _record_status(
            session,
            annotation,
            node,
            user,
            node.status,
            {"status": node.status.value, "reviewer_approved": True},
            "approved by the reviewer; awaiting admin acceptance",
        )
    else:
        _set_status(session, annotation, node, user, NodeStatus.approved)
        _finalise(session, node)
    return node


def accept(session: Session, user: User, annotation_id: int, version: int) -> Annotation:
    """The admin's acceptance of a clip a reviewer approved (projects with admin_acceptance)."""
    annotation = edits.get_annotation(session, annotation_id)
    if user.role != Role.admin:
        raise Forbidden("Only admins accept clips.")
    check_reviewer(user, annotation)
    if not project_of(session, annotation).admin_acceptance:
        raise Invalid(
            "This project has no admin acceptance step: the reviewer's approval is final."
        )
    if not awaiting_acceptance(annotation):
        raise Forbidden(
            f"Only a clip a reviewer approved can be accepted (this one is "
            f"{annotation.status.value})."
        )
    check_version(annotation, version)
    _set_status(session, annotation, annotation, user, NodeStatus.approved, "accepted by an admin")
    _finalise(session, annotation)
    return annotation


def _finalise(session: Session, annotation: Annotation) -> None:
    """The clip's final approval: primary if the clip has none, assignment approved."""
    has_primary = session.scalar(
        select(Annotation.id).where(
            Annotation.clip_id == annotation.clip_id,
            Annotation.is_primary.is_(True),
            Annotation.id != annotation.id,
        )
    )
    if has_primary is None:
        annotation.is_primary = True
    assignment = _assignment(session, annotation)
    if assignment is not None:
        assignment.state = AssignmentState.approved
        assignment.completed_at = utcnow()
    session.flush()
    on_annotation_approved(session, annotation)


def approve_children(
    session: Session, user: User, node_type: str, node_id: int, shown: Sequence[NodeRef]
) -> ChildrenApproval:
    """Approve the parent's submitted children that the reviewer was shown, and only those."""
    node, annotation = get_node(session, node_type, node_id)
    check_reviewer(user, annotation)
    check_in_review(annotation)
    seen = set(shown)
    result = ChildrenApproval()
    for child in children_of(session, node):
        ref = NodeRef(node_type_of(child), child.id)
        if child.status != NodeStatus.submitted:
            continue
        if ref not in seen:
            result.not_shown.append(ref)
            continue
        try:
            approve(session, user, ref.type, ref.id, child.version)
        except Forbidden as exc:  # e.g. a character whose tracks are not all approved yet
            result.blocked[f"{ref.type}:{ref.id}"] = exc.message
        else:
            result.approved.append(ref)
    if not result.approved and result.not_shown:
        raise Forbidden(
            f"Look at each item before approving it: {len(result.not_shown)} of this "
            f"{label_of(node)}'s children were not shown to you yet.",
            detail={"not_shown": [{"type": r.type, "id": r.id} for r in result.not_shown]},
        )
    return result


def reject(
    session: Session,
    user: User,
    node_type: str,
    node_id: int,
    version: int,
    reason: str,
    body: str,
    pin: Pin = UNPINNED,
) -> ReviewComment:
    """Reject a node with a pinned comment; the whole clip returns to its annotator."""
    node, annotation = get_node(session, node_type, node_id)
    check_reviewer(user, annotation)
    if awaiting_acceptance(annotation):
        if user.role != Role.admin:
            raise Forbidden("This clip awaits an admin's acceptance; only an admin can reject it.")
    else:
        check_in_review(annotation)
        if node.status != NodeStatus.submitted:
            raise Forbidden(
                f"This {label_of(node)} is {node.status.value}; only submitted items can be "
                "rejected (an admin can reopen approved ones)."
            )
    check_version(node, version)
    comment = _new_comment(session, user, annotation, node, body, reason, pin)
    if node.status != NodeStatus.rejected:
        _set_status(session, annotation, node, user, NodeStatus.rejected, reason)
    annotation.approved_at = None
    if annotation is not node:
        _set_status(session, annotation, annotation, user, NodeStatus.rejected, reason)
    assignment = _assignment(session, annotation)
    if assignment is not None:
        assignment.state = AssignmentState.rejected
    session.flush()
    return comment


def reopen(
    session: Session, user: User, node_type: str, node_id: int, version: int, reason: str
) -> Node:
    """Admins only: a node (and its ancestors) back to draft, with the reason recorded."""
    if user.role != Role.admin:
        raise Forbidden("Only admins reopen reviewed work.")
    if not reason.strip():
        raise Invalid("Say why you reopen it.")
    node, annotation = get_node(session, node_type, node_id)
    check_version(node, version)
    if node.status == NodeStatus.draft:
        raise Invalid(f"This {label_of(node)} is already a draft.")
    for item in [node, *_ancestors(session, node)]:
        if item.status != NodeStatus.draft:
            _set_status(session, annotation, item, user, NodeStatus.draft, f"reopen: {reason}")
    annotation.approved_at = None
    assignment = _assignment(session, annotation)
    if assignment is not None and assignment.state != AssignmentState.released:
        assignment.state = AssignmentState.in_progress
        assignment.completed_at = None
    session.flush()
    return node


# ---------------------------------------------------------------- submitting (hook)


def prepare_submit(session: Session, user: User, annotation: Annotation) -> None:
    """Called by annotations.service.submit: enforce the resubmit rule, then mark children.

    A child goes to ``submitted`` unless it is approved and unchanged since its approval, so a
    resubmission only asks the reviewer about what is new or was sent back.
    """
    check_resubmit(session, annotation)
    approved_at = _last_approvals(session, annotation)
    for child in _descendants(session, annotation):
        if child.status == NodeStatus.submitted:
            continue
        key = (node_type_of(child), child.id)
        if child.status == NodeStatus.approved and not _changed_since(
            session, annotation, child, approved_at.get(key)
        ):
            continue
        _set_status(session, annotation, child, user, NodeStatus.submitted)


def _descendants(session: Session, node: Node) -> list[Node]:
    found: list[Node] = []
    for child in children_of(session, node):
        found += [child, *_descendants(session, child)]
    return found


def _last_approvals(session: Session, annotation: Annotation) -> dict[tuple[str, int], datetime]:
    rows = session.execute(
        select(Revision.node_type, Revision.node_id, Revision.created_at, Revision.after).where(
            Revision.annotation_id == annotation.id, Revision.action == STATUS_ACTION
        )
    )
    found: dict[tuple[str, int], datetime] = {}
    for node_type, node_id, created_at, after in rows:
        if (after or {}).get("status") == NodeStatus.approved.value:
            key = (node_type, node_id)
            found[key] = max(found.get(key, created_at), created_at)
    return found


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


def _changed_since(
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
        if node is None or _changed_since(session, annotation, node, comment.created_at):
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


# ---------------------------------------------------------------- comments


def _new_comment(
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
        region=pin.region,
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


def _check_region(region: dict[str, float], clip: Clip) -> None:
    try:
        x, y, w, h = (float(region[k]) for k in ("x", "y", "w", "h"))
    except (KeyError, TypeError, ValueError) as exc:
        raise Invalid("A region is {x, y, w, h} in the clip's pixels.") from exc
    if (
        w <= 0
        or h <= 0
        or x < 0
        or y < 0
        or x + w > (clip.width or 0)
        or y + h > (clip.height or 0)
    ):
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
    return _new_comment(session, user, annotation, node, body, None, pin)


def _visible_comment(session: Session, user: User, comment_id: int) -> ReviewComment:
    comment = session.get(ReviewComment, comment_id)
    if comment is None:
        raise NotFound(f"No comment {comment_id}.")
    edits.visible_annotation(session, user, comment.annotation_id)
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


def _resolve_rejections(session: Session, annotation: Annotation, node: Node) -> None:
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


# ---------------------------------------------------------------- the review document


def review_payload(session: Session, user: User, annotation: Annotation) -> dict[str, Any]:
    """Per-node statuses, comment threads, the model draft per frame and what the caller may do.

    ``model`` maps track id -> frame -> numpy (k, 3) [x, y, v] (serialise with orjson)."""
    project = project_of(session, annotation)
    staff_other = user.role in STAFF and annotation.annotator_id != user.id
    in_review = annotation.status == NodeStatus.submitted and annotation.approved_at is None
    nodes: list[dict[str, Any]] = [_node_view(annotation, None, "Clip: tags, quality, timing")]
    shot_names: dict[int, str] = {}
    char_names: dict[int, str] = {}
    model: dict[int, dict[int, Any]] = {}
    for child in children_of(session, annotation):
        if isinstance(child, Shot):
            shot_names[child.id] = f"Shot {len(shot_names) + 1}"
            name = f"{shot_names[child.id]} (frames {child.start_frame}-{child.end_frame - 1})"
            nodes.append(_node_view(child, annotation, name, frame=child.start_frame))
        elif isinstance(child, Character):
            char_names[child.id] = child.name
            nodes.append(_node_view(child, annotation, f"Character {child.name}"))
            for track in children_of(session, child):
                assert isinstance(track, Track)
                nodes.append(
                    _node_view(track, child, f"{child.name}: keypoints ({track.num_points})")
                )
                model[track.id] = _model_points(session, track)
        elif isinstance(child, Caption):
            owner = {
                "clip": "Clip",
                "shot": shot_names.get(child.target_id, "Shot"),
                "character": char_names.get(child.target_id, "Character"),
            }[child.level.value]
            nodes.append(_node_view(child, annotation, f"{owner} {child.field} caption"))
        elif isinstance(child, SpeechSegment):
            nodes.append(
                _node_view(child, annotation, f"Speech {child.start_s:.2f}-{child.end_s:.2f} s")
            )
    return {
        "annotation": {
            "id": annotation.id,
            "status": annotation.status.value,
            "version": annotation.version,
            "annotator_id": annotation.annotator_id,
            "awaiting_acceptance": awaiting_acceptance(annotation),
            "is_primary": annotation.is_primary,
        },
        "admin_acceptance": project.admin_acceptance,
        "reasons": {
            kind: [{"value": r, "label": reason_label(r)} for r in reasons]
            for kind, reasons in reasons_by_kind(project.rejection_reasons).items()
        },
        "can_review": staff_other and in_review,
        "can_accept": staff_other and user.role == Role.admin and awaiting_acceptance(annotation),
        "can_reopen": user.role == Role.admin,
        "can_comment": user.role in STAFF,
        "can_edit": edits.may_edit(annotation, user),
        "nodes": nodes,
        "comments": comment_threads(session, annotation),
        "unanswered": [c.id for c in unanswered_rejections(session, annotation)],
        "model": model,
    }


def _node_view(
    node: Node, parent: Node | None, label: str, *, frame: int | None = None
) -> dict[str, Any]:
    return {
        "type": node_type_of(node),
        "id": node.id,
        "parent": {"type": node_type_of(parent), "id": parent.id} if parent is not None else None,
        "label": label,
        "status": node.status.value,
        "version": node.version,
        "frame": frame,
    }


def _model_points(session: Session, track: Track) -> dict[int, Any]:
    rows = session.execute(
        select(KeypointFrame.frame_index, KeypointFrame.model_points).where(
            KeypointFrame.track_id == track.id, KeypointFrame.model_points.is_not(None)
        )
    )
    found = {}
    for frame_index, blob in rows:
        pose, _ = decode_points(blob or b"")
        found[frame_index] = np.ascontiguousarray(np.round(pose[:, :3], 2))
    return found


# ---------------------------------------------------------------- history, diff, restore


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
    edits.visible_annotation(session, user, annotation.id)
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
        RevisionView(
            id=rev.id,
            node_type=rev.node_type,
            node_id=rev.node_id,
            frame=frames.get(rev.node_id) if rev.node_type == "keypoint_frame" else None,
            version=rev.version,
            action=rev.action,
            source=rev.source.value,
            user=username,
            created_at=rev.created_at,
            before=rev.before,
            after=rev.after,
            comment=rev.comment,
        )
        for rev, username in rows
    ]


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
    edits.visible_annotation(session, user, revision.annotation_id)


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
        return [lambda: edits.save_frame(session, user, track_id, frame_index, points, version)]
    if kind == "caption" and "text" in wanted:
        return [lambda: edits.update_caption(session, user, node_id, wanted["text"], version)]
    if kind == "speech_segment":
        segment = session.get(SpeechSegment, node_id)
        if segment is None:
            raise Invalid("That speech segment was deleted; add it again instead.")
        start = wanted.get("start", segment.start_s)
        end = wanted.get("end", segment.end_s)
        text = wanted.get("transcript", segment.transcript)
        return [lambda: edits.update_speech(session, user, node_id, start, end, text, version)]
    if kind == "character" and "emotions" in wanted:
        character = session.get(Character, node_id)
        if character is None:
            raise Invalid("That character was deleted.")
        labels = project_of(session, annotation_of(session, character)).emotion_labels
        return [
            lambda: edits.set_emotions(session, user, node_id, wanted["emotions"], version, labels)
        ]
    if kind == "annotation":
        return _restore_annotation(session, user, node_id, wanted, version)
    raise Invalid(f"Revision {revision.id} has nothing that can be restored.")


def _restore_annotation(
    session: Session, user: User, annotation_id: int, wanted: dict[str, Any], version: int
) -> list[Callable[[], Any]]:
    annotation = edits.get_annotation(session, annotation_id)
    project = project_of(session, annotation)
    # The first save checks the caller's version; the later ones follow the version it left.
    versions = iter([version])

    def next_version() -> int:
        return next(versions, annotation.version)

    saves: list[Callable[[], Any]] = []
    if "tags" in wanted:
        saves.append(
            lambda: edits.set_tags(
                session, user, annotation_id, wanted["tags"], next_version(),
                project.tag_vocabulary,
            )
        )  # fmt: skip
    if "quality" in wanted:
        quality = wanted["quality"] or {}
        saves.append(
            lambda: edits.set_quality(
                session, user, annotation_id, bool(quality.get("keep", True)),
                quality.get("reasons", []), next_version(), no_speech=quality.get("no_speech"),
            )
        )  # fmt: skip
    if "shots" in wanted:
        starts = [int(s[0]) for s in wanted["shots"]]
        saves.append(
            lambda: edits.set_shot_boundaries(session, user, annotation_id, starts, next_version())
        )
    if not saves:
        raise Invalid("Only tags, quality and shot boundaries of a clip can be restored.")
    return saves


# ---------------------------------------------------------------- the review queue


def rejection_counts() -> Any:
    return (
        select(ReviewComment.annotation_id, func.count().label("n"))
        .where(ReviewComment.parent_id.is_(None), ReviewComment.reason.is_not(None))
        .group_by(ReviewComment.annotation_id)
        .subquery()
    )


def review_queue(
    session: Session, user: User, filters: QueueFilters, *, now: datetime | None = None,
    limit: int = 200,
) -> list[QueueRow]:  # fmt: skip
    """Submitted annotations of others, oldest first; admins also see clips awaiting acceptance."""
    now = now or utcnow()
    counts = rejection_counts()
    rejections = func.coalesce(counts.c.n, 0)
    query = (
        select(Annotation, Clip.filename, Project.name, Batch.name, User.username, rejections)
        .join(Clip, Clip.id == Annotation.clip_id)
        .join(Project, Project.id == Clip.project_id)
        .outerjoin(User, User.id == Annotation.annotator_id)
        .outerjoin(Assignment, Assignment.annotation_id == Annotation.id)
        .outerjoin(BatchClip, BatchClip.id == Assignment.batch_clip_id)
        .outerjoin(Batch, Batch.id == BatchClip.batch_id)
        .outerjoin(counts, counts.c.annotation_id == Annotation.id)
        .where(
            Annotation.kind != AnnotationKind.model,
            Annotation.status == NodeStatus.submitted,
            or_(Annotation.annotator_id.is_(None), Annotation.annotator_id != user.id),
        )
        .order_by(Annotation.submitted_at.asc().nulls_last(), Annotation.id)
        .limit(limit)
    )
    if user.role != Role.admin:
        query = query.where(Annotation.approved_at.is_(None))
    if filters.batch_id is not None:
        query = query.where(Batch.id == filters.batch_id)
    if filters.annotator_id is not None:
        query = query.where(Annotation.annotator_id == filters.annotator_id)
    if filters.min_age_hours is not None:
        query = query.where(Annotation.submitted_at <= now - timedelta(hours=filters.min_age_hours))
    if filters.min_rejections is not None:
        query = query.where(rejections >= filters.min_rejections)
    return [
        QueueRow(
            annotation_id=a.id,
            clip_id=a.clip_id,
            filename=filename,
            project=project,
            batch=batch,
            annotator=annotator,
            submitted_at=a.submitted_at,
            age_hours=((now - a.submitted_at).total_seconds() / 3600) if a.submitted_at else 0.0,
            rejections=int(n),
            awaiting_acceptance=awaiting_acceptance(a),
        )
        for a, filename, project, batch, annotator, n in session.execute(query)
    ]


def queue_choices(session: Session) -> dict[str, list[tuple[int, str]]]:
    """Batches and annotators for the queue's filter menus."""
    batches = session.execute(select(Batch.id, Batch.name).order_by(Batch.name))
    people = session.execute(
        select(User.id, User.username).where(User.role == Role.annotator).order_by(User.username)
    )
    return {
        "batches": [(i, name) for i, name in batches],
        "annotators": [(i, name) for i, name in people],
    }
