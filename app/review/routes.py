"""The review queue page and the JSON API of every review transition, comment and restore."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.annotations.access import visible_annotation
from app.annotations.history import RevisionView, diff, history, restore, revision_view
from app.annotations.models import Annotation
from app.annotations.tree import Node, NodeType, node_type_of
from app.auth.deps import AdminOnly, AnyUser, Staff
from app.core.deps import DB
from app.core.errors import Invalid
from app.core.responses import json_response
from app.core.templating import render
from app.review import fixes
from app.review.comments import add_comment, reply, resolve
from app.review.payload import review_payload
from app.review.queue import QueueFilters, QueueRow, queue_choices, review_queue
from app.review.schemas import (
    ApproveChildrenIn,
    CommentIn,
    CommentRead,
    DiffRead,
    FixIn,
    HistoryNodeType,
    NodeRead,
    RejectIn,
    ReopenIn,
    ReplyIn,
    ResolveIn,
    Transition,
)
from app.review.workflow import (
    ChildrenApproval,
    accept,
    approve,
    approve_children,
    awaiting_acceptance,
    reject,
    reopen,
)

router = APIRouter()
api = APIRouter(prefix="/api", tags=["review"])

AGES = ((None, "any age"), (1.0, "over 1 hour"), (24.0, "over a day"), (72.0, "over 3 days"))


def _number(value: str | None, kind: type[int] | type[float], name: str) -> Any:
    """Filter menus send "" for "any"; anything else must be a non-negative number."""
    if value is None or not value.strip():
        return None
    try:
        number = kind(value)
    except ValueError as exc:
        raise Invalid(f"The {name} filter must be a number.") from exc
    if number < 0:
        raise Invalid(f"The {name} filter cannot be negative.")
    return number


def _filters(
    batch: str | None, annotator: str | None, age: str | None, rejections: str | None
) -> QueueFilters:
    return QueueFilters(
        batch_id=_number(batch, int, "batch"),
        annotator_id=_number(annotator, int, "annotator"),
        min_age_hours=_number(age, float, "age"),
        min_rejections=_number(rejections, int, "rejections"),
    )


@router.get("/review", response_class=HTMLResponse)
def review_queue_page(
    request: Request,
    db: DB,
    principal: Staff,
    batch: str | None = None,
    annotator: str | None = None,
    age: str | None = None,
    rejections: str | None = None,
) -> Response:
    """Submitted clips to review, filtered with HTMX (the table alone on HX-Request)."""
    filters = _filters(batch, annotator, age, rejections)
    context = {
        "rows": review_queue(db, principal.user, filters),
        "choices": queue_choices(db),
        "ages": AGES,
        "chosen": filters,
    }
    return render(request, "review/queue.html", context, partial="review/_table.html")


# ----------------------------------------------------------------------------- JSON API


@api.get("/review/queue", response_model=list[QueueRow])
def api_queue(
    db: DB,
    principal: Staff,
    batch: str | None = None,
    annotator: str | None = None,
    age: str | None = None,
    rejections: str | None = None,
) -> Any:
    return review_queue(db, principal.user, _filters(batch, annotator, age, rejections))


@api.get("/annotations/{annotation_id}/review")
def api_review(db: DB, principal: AnyUser, annotation_id: int) -> Response:
    """Per-node statuses, comment threads, the model draft per frame, and the caller's rights."""
    annotation = visible_annotation(db, principal.user, annotation_id)
    payload = review_payload(db, principal.user, annotation)
    payload["fixes"] = fixes.review_fixes(db, annotation.id)
    return json_response(payload)


def _node_read(node: Node) -> NodeRead:
    return NodeRead(
        type=node_type_of(node),
        id=node.id,
        status=node.status.value,
        version=node.version,
        awaiting_acceptance=isinstance(node, Annotation) and awaiting_acceptance(node),
    )


@api.post("/review/{node_type}/{node_id}/approve", response_model=NodeRead)
def api_approve(
    db: DB, principal: Staff, node_type: NodeType, node_id: int, body: Transition
) -> NodeRead:
    return _node_read(approve(db, principal.user, node_type, node_id, body.version))


@api.post("/review/{node_type}/{node_id}/approve-children", response_model=ChildrenApproval)
def api_approve_children(
    db: DB, principal: Staff, node_type: NodeType, node_id: int, body: ApproveChildrenIn
) -> Any:
    return approve_children(db, principal.user, node_type, node_id, body.shown)


@api.post("/review/{node_type}/{node_id}/fix-accept", response_model=NodeRead)
def api_fix_and_accept(
    db: DB, principal: Staff, node_type: NodeType, node_id: int, body: FixIn
) -> NodeRead:
    """Fix and accept: the reviewer's correction (their revision), then the item's approval."""
    node = fixes.fix_and_accept(
        db, principal.user, node_type, node_id, body.version, text=body.text, frames=body.frames
    )
    return _node_read(node)


@api.post("/review/{node_type}/{node_id}/reject", response_model=CommentRead, status_code=201)
def api_reject(db: DB, principal: Staff, node_type: NodeType, node_id: int, body: RejectIn) -> Any:
    return reject(
        db,
        principal.user,
        node_type,
        node_id,
        body.version,
        body.reason,
        body.body,
        body,
    )


@api.post("/review/{node_type}/{node_id}/reopen", response_model=NodeRead)
def api_reopen(
    db: DB, principal: AdminOnly, node_type: NodeType, node_id: int, body: ReopenIn
) -> NodeRead:
    node = reopen(db, principal.user, node_type, node_id, body.version, body.reason)
    return _node_read(node)


@api.post("/review/annotations/{annotation_id}/accept", response_model=NodeRead)
def api_accept(db: DB, principal: AdminOnly, annotation_id: int, body: Transition) -> NodeRead:
    return _node_read(accept(db, principal.user, annotation_id, body.version))


@api.post("/review/{node_type}/{node_id}/comments", response_model=CommentRead, status_code=201)
def api_comment(
    db: DB, principal: Staff, node_type: NodeType, node_id: int, body: CommentIn
) -> Any:
    return add_comment(
        db,
        principal.user,
        node_type,
        node_id,
        body.body,
        body,
    )


@api.post("/review/comments/{comment_id}/replies", response_model=CommentRead, status_code=201)
def api_reply(db: DB, principal: AnyUser, comment_id: int, body: ReplyIn) -> Any:
    return reply(db, principal.user, comment_id, body.body)


@api.post("/review/comments/{comment_id}/resolve", response_model=CommentRead)
def api_resolve(db: DB, principal: Staff, comment_id: int, body: ResolveIn) -> Any:
    return resolve(db, principal.user, comment_id, body.resolved)


@api.get("/review/history/{node_type}/{node_id}", response_model=list[RevisionView])
def api_history(db: DB, principal: AnyUser, node_type: HistoryNodeType, node_id: int) -> Any:
    return history(db, principal.user, node_type, node_id)


@api.get("/review/revisions/{first_id}/diff/{second_id}", response_model=DiffRead)
def api_diff(db: DB, principal: AnyUser, first_id: int, second_id: int) -> Any:
    return diff(db, principal.user, first_id, second_id)


@api.post("/review/revisions/{revision_id}/restore", response_model=list[RevisionView])
def api_restore(db: DB, principal: AnyUser, revision_id: int, body: Transition) -> Any:
    """Restore a node as of a revision through the normal save path (a new revision)."""
    written = restore(db, principal.user, revision_id, body.version)
    return [revision_view(r, principal.user.username, None) for r in written]
