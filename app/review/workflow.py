"""Hierarchical review's state machine: approve, accept, reject and reopen, and their rules.

Nodes and their children (app.annotations.tree; what "a parent is approved only when all its
children are" means)::

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
  it) after the comment, or the annotator's reply in its thread
  (:func:`app.review.comments.check_resubmit`, checked by app.review.submission);
* two levels: with ``Project.admin_acceptance`` the reviewer's approval of the clip sets
  ``approved_at`` and leaves the status ``submitted`` ("awaiting acceptance"); the admin's
  :func:`accept` makes it ``approved``. Without it the reviewer's approval is final. Only a final
  approval marks the annotation primary (when the clip has none) and the Assignment approved, so
  exports of ``approved`` annotations can never see a clip an admin has yet to accept;
* approving a node resolves the rejection threads pinned to it (the fix was accepted);
* admins reopen any node with a reason: it and its ancestors go back to draft.

"Approve all remaining children" approves only the children the client says it showed the
reviewer (the review panel records each node it displayed); the others are returned unapproved.

History: every transition is a Revision with action ``STATUS_ACTION`` (edits use other actions),
so "changed since" questions (app.annotations.history) read the table the history panel shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.agreement.recompute import on_annotation_approved
from app.annotations.access import get_annotation
from app.annotations.models import Annotation, AnnotationKind, NodeStatus, Source
from app.annotations.revisions import STATUS_ACTION, record_revision
from app.annotations.tree import (
    Node,
    NodeRef,
    ancestors,
    children_of,
    get_node,
    label_of,
    labelled_nodes,
    node_type_of,
    project_of,
)
from app.auth.models import Role, User
from app.batches.models import Assignment, AssignmentState
from app.core.db import utcnow
from app.core.errors import Conflict, Forbidden, Invalid
from app.review.comments import STAFF, UNPINNED, Pin, new_comment, resolve_rejections
from app.review.models import ReviewComment


def awaiting_acceptance(annotation: Annotation) -> bool:
    return annotation.status == NodeStatus.submitted and annotation.approved_at is not None


def check_reviewer(user: User, annotation: Annotation) -> None:
    if user.role not in STAFF:
        raise Forbidden("Only reviewers and admins review annotations.")
    if annotation.annotator_id == user.id:
        raise Forbidden("Self-approval ban: nobody reviews their own annotation.")
    if annotation.kind == AnnotationKind.model:
        raise Forbidden("The model's draft is not reviewed; review a person's annotation.")


def _named(session: Session, node: Node) -> str:
    """A node as a message names it: "the clip" for the annotation itself (its panel label
    lists its own fields), else its label in the review panel."""
    return "the clip" if isinstance(node, Annotation) else label_of(session, node)


def check_version(session: Session, node: Node, version: int) -> None:
    if node.version != version:
        raise Conflict(
            f"{label_of(session, node)} changed since you loaded it (now version "
            f"{node.version}, you saw {version}). Reload to review the current version.",
            detail={"current_version": node.version, "status": node.status.value},
        )


def check_in_review(annotation: Annotation) -> None:
    if annotation.status != NodeStatus.submitted:
        raise Forbidden(
            f"This annotation is {annotation.status.value}; only submitted work is reviewed."
        )
    if annotation.approved_at is not None:
        raise Forbidden("A reviewer already approved this clip; it awaits an admin's acceptance.")


def record_status(
    session: Session,
    annotation: Annotation,
    node: Node,
    user: User | None,
    before: NodeStatus,
    after: dict[str, Any],
    comment: str | None = None,
) -> None:
    session.flush()  # the version the revision records is the one after this change
    record_revision(
        session,
        annotation=annotation,
        node_type=node_type_of(node),
        node_id=node.id,
        version=node.version,
        action=STATUS_ACTION,
        user=user,
        source=Source.human,
        before={"status": before.value},
        after=after,
        comment=comment,
    )


def set_status(
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
    record_status(session, annotation, node, user, before, {"status": status.value}, comment)


def node_in_review(
    session: Session, user: User, node_type: str, node_id: int, version: int, *, doing: str
) -> tuple[Node, Annotation]:
    """A submitted node the reviewer may act on now (``doing``: "approved", "fixed and
    accepted", for the refusal), at the version they saw, and its annotation."""
    node, annotation = get_node(session, node_type, node_id)
    check_reviewer(user, annotation)
    check_in_review(annotation)
    check_version(session, node, version)
    if node.status != NodeStatus.submitted:
        raise Forbidden(
            f"{label_of(session, node)} is {node.status.value}; only submitted items can be "
            f"{doing}."
        )
    return node, annotation


def approve(session: Session, user: User, node_type: str, node_id: int, version: int) -> Node:
    """Approve one submitted node; a parent only once every child is approved."""
    node, annotation = node_in_review(session, user, node_type, node_id, version, doing="approved")
    pending = [c for c in children_of(session, node) if c.status != NodeStatus.approved]
    if pending:
        labels = {
            (node_type_of(item), item.id): label
            for item, _, label in labelled_nodes(session, annotation)
        }
        names = "; ".join(labels[node_type_of(c), c.id] for c in pending[:5])
        names += " …" if len(pending) > 5 else ""
        raise Forbidden(
            f"Parent gating: approve every item under {_named(session, node)} first "
            f"({len(pending)} not approved: {names}).",
            detail={"pending": [{"type": node_type_of(c), "id": c.id} for c in pending]},
        )
    resolve_rejections(session, annotation, node)
    if not isinstance(node, Annotation):
        set_status(session, annotation, node, user, NodeStatus.approved)
        return node
    node.approved_at = utcnow()
    node.updated_by_id = user.id
    if project_of(session, annotation).admin_acceptance:
        record_status(
            session,
            annotation,
            node,
            user,
            node.status,
            {"status": node.status.value, "reviewer_approved": True},
            "approved by the reviewer; awaiting admin acceptance",
        )
    else:
        set_status(session, annotation, node, user, NodeStatus.approved)
        _finalise(session, node)
    return node


def accept(session: Session, user: User, annotation_id: int, version: int) -> Annotation:
    """The admin's acceptance of a clip a reviewer approved (projects with admin_acceptance)."""
    annotation = get_annotation(session, annotation_id)
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
    check_version(session, annotation, version)
    set_status(session, annotation, annotation, user, NodeStatus.approved, "accepted by an admin")
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
    assignment = assignment_of(session, annotation)
    if assignment is not None:
        assignment.state = AssignmentState.approved
        assignment.completed_at = utcnow()
    session.flush()
    on_annotation_approved(session, annotation)


@dataclass
class ChildrenApproval:
    """What "approve all remaining children" did: approved, left because unseen, or blocked."""

    approved: list[NodeRef] = field(default_factory=list)
    not_shown: list[NodeRef] = field(default_factory=list)
    blocked: dict[str, str] = field(default_factory=dict)  # "type:id" -> why


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
            f"Look at each item before approving it: {len(result.not_shown)} of the items "
            f"under {_named(session, node)} were not shown to you yet.",
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
                f"{label_of(session, node)} is {node.status.value}; only submitted items can "
                "be rejected (an admin can reopen approved ones)."
            )
    check_version(session, node, version)
    comment = new_comment(session, user, annotation, node, body, reason, pin)
    if node.status != NodeStatus.rejected:
        set_status(session, annotation, node, user, NodeStatus.rejected, reason)
    annotation.approved_at = None
    if annotation is not node:
        set_status(session, annotation, annotation, user, NodeStatus.rejected, reason)
    assignment = assignment_of(session, annotation)
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
    check_version(session, node, version)
    if node.status == NodeStatus.draft:
        raise Invalid(f"{label_of(session, node)} is already a draft.")
    for item in [node, *ancestors(session, node)]:
        if item.status != NodeStatus.draft:
            set_status(session, annotation, item, user, NodeStatus.draft, f"reopen: {reason}")
    annotation.approved_at = None
    assignment = assignment_of(session, annotation)
    if assignment is not None and assignment.state != AssignmentState.released:
        assignment.state = AssignmentState.in_progress
        assignment.completed_at = None
    session.flush()
    return node


def assignment_of(session: Session, annotation: Annotation) -> Assignment | None:
    return session.scalar(select(Assignment).where(Assignment.annotation_id == annotation.id))
