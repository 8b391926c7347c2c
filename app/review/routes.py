"""The review queue page and the JSON API of every review transition, comment and restore."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.annotations import service as edits
from app.annotations.models import Annotation
from app.auth.deps import AdminOnly, AnyUser, Staff
from app.core.deps import DB
from app.core.errors import Invalid
from app.core.responses import json_response
from app.core.templating import render
from app.review import fixes, service
from app.review.schemas import (
    ApproveChildrenIn,
    ChildrenApprovalRead,
    CommentIn,
    CommentRead,
    DiffRead,
    FixIn,
    HistoryNodeType,
    NodeRead,
    NodeType,
    PinIn,
    RejectIn,
    ReopenIn,
    ReplyIn,
    ResolveIn,
    Transition,
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
) -> service.QueueFilters:
    return service.QueueFilters(
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
        "rows": service.review_queue(db, principal.user, filters),
        "choices": service.queue_choices(db),
        "ages": AGES,
        "chosen": filters,
    }
    return render(request, "review/queue.html", context, partial="review/_table.html")


# ----------------------------------------------------------------------------- JSON API


@api.get("/review/queue", response_model=list[service.QueueRow])
def api_queue(
    db: DB,
    principal: Staff,
    batch: str | None = None,
    annotator: str | None = None,
    age: str | None = None,
    rejections: str | None = None,
) -> Any:
    return service.review_queue(db, principal.user, _filters(batch, annotator, age, rejections))


@api.get("/annotations/{annotation_id}/review")
def api_review(db: DB, principal: AnyUser, annotation_id: int) -> Response:
    """Per-node statuses, comment threads, the model draft per frame, and the caller's rights."""
    annotation = edits.visible_annotation(db, principal.user, annotation_id)
    payload = service.review_payload(db, principal.user, annotation)
    payload["fixes"] = fixes.review_fixes(db, annotation.id)
    return json_response(payload)


def _node_read(node: service.Node) -> NodeRead:
    return NodeRead(
        type=service.node_type_of(node),
        id=node.id,
        status=node.status.value,
        version=node.version,
        awaiting_acceptance=isinstance(node, Annotation) and service.awaiting_acceptance(node),
    )


@api.post("/review/{node_type}/{node_id}/approve", response_model=NodeRead)
def api_approve(
    db: DB, principal: Staff, node_type: NodeType, node_id: int, body: Transition
) -> NodeRead:
    return _node_read(service.approve(db, principal.user, node_type, node_id, body.version))


@api.post("/review/{node_type}/{node_id}/approve-children", response_model=ChildrenApprovalRead)
def api_approve_children(
    db: DB, principal: Staff, node_type: NodeType, node_id: int, body: ApproveChildrenIn
) -> Any:
    shown = [service.NodeRef(ref.type, ref.id) for ref in body.shown]
    return asdict(service.approve_children(db, principal.user, node_type, node_id, shown))


@api.post("/review/{node_type}/{node_id}/fix-accept", response_model=NodeRead)
def api_fix_and_accept(
    db: DB, principal: Staff, node_type: NodeType, node_id: int, body: FixIn
) -> NodeRead:
    """Fix and accept: the reviewer's correction (their revision), then the item's approval."""
    frames = [fixes.FrameFix(f.frame, f.points, f.version) for f in body.frames]
    node = fixes.fix_and_accept(
        db, principal.user, node_type, node_id, body.version, text=body.text, frames=frames
    )
    return _node_read(node)


def _pin(body: PinIn) -> service.Pin:
    region = body.region.model_dump() if body.region else None
    return service.Pin(frame=body.frame, point=body.point, region=region)


@api.post("/review/{node_type}/{node_id}/reject", response_model=CommentRead, status_code=201)
def api_reject(db: DB, principal: Staff, node_type: NodeType, node_id: int, body: RejectIn) -> Any:
    return service.reject(
        db,
        principal.user,
        node_type,
        node_id,
        body.version,
        body.reason,
        body.body,
        _pin(body),
    )


@api.post("/review/{node_type}/{node_id}/reopen", response_model=NodeRead)
def api_reopen(
    db: DB, principal: AdminOnly, node_type: NodeType, node_id: int, body: ReopenIn
) -> NodeRead:
    node = service.reopen(db, principal.user, node_type, node_id, body.version, body.reason)
    return _node_read(node)


@api.post("/review/annotations/{annotation_id}/accept", response_model=NodeRead)
def api_accept(db: DB, principal: AdminOnly, annotation_id: int, body: Transition) -> NodeRead:
    return _node_read(service.accept(db, principal.user, annotation_id, body.version))


@api.post("/review/{node_type}/{node_id}/comments", response_model=CommentRead, status_code=201)
def api_comment(
    db: DB, principal: Staff, node_type: NodeType, node_id: int, body: CommentIn
) -> Any:
    return service.add_comment(
        db,
        principal.user,
        node_type,
        node_id,
        body.body,
        _pin(body),
    )


@api.post("/review/comments/{comment_id}/replies", response_model=CommentRead, status_code=201)
def api_reply(db: DB, principal: AnyUser, comment_id: int, body: ReplyIn) -> Any:
    return service.reply(db, principal.user, comment_id, body.body)


@api.post("/review/comments/{comment_id}/resolve", response_model=CommentRead)
def api_resolve(db: DB, principal: Staff, comment_id: int, body: ResolveIn) -> Any:
    return service.resolve(db, principal.user, comment_id, body.resolved)


@api.get("/review/history/{node_type}/{node_id}", response_model=list[service.RevisionView])
def api_history(db: DB, principal: AnyUser, node_type: HistoryNodeType, node_id: int) -> Any:
    return service.history(db, principal.user, node_type, node_id)


@api.get("/review/revisions/{first_id}/diff/{second_id}", response_model=DiffRead)
def api_diff(db: DB, principal: AnyUser, first_id: int, second_id: int) -> Any:
    return service.diff(db, principal.user, first_id, second_id)


@api.post("/review/revisions/{revision_id}/restore", response_model=list[service.RevisionView])
def api_restore(db: DB, principal: AnyUser, revision_id: int, body: Transition) -> Any:
    """Restore a node as of a revision through the normal save path (a new revision)."""
    written = service.restore(db, principal.user, revision_id, body.version)
    return [
        service.RevisionView(
            id=r.id, node_type=r.node_type, node_id=r.node_id, frame=None, version=r.version,
            action=r.action, source=r.source.value, user=principal.user.username,
            created_at=r.created_at, before=r.before, after=r.after, comment=r.comment,
        )
        for r in written
    ]  # fmt: skip
