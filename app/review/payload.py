"""The review document: per-node statuses, comment threads, the model draft per frame and
what the caller may do."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations.access import edit_rights
from app.annotations.models import (
    Annotation,
    KeypointFrame,
    NodeStatus,
    Shot,
    Track,
)
from app.annotations.points import decode_points
from app.annotations.tree import Node, labelled_nodes, node_type_of, project_of
from app.auth.models import Role, User
from app.projects.reasons import reason_label, reasons_by_kind
from app.review.comments import STAFF, comment_threads, unanswered_rejections
from app.review.workflow import awaiting_acceptance


def review_payload(session: Session, user: User, annotation: Annotation) -> dict[str, Any]:
    """Per-node statuses, comment threads, the model draft per frame and what the caller may do.

    ``model`` maps track id -> frame -> numpy (k, 3) [x, y, v] (serialise with orjson)."""
    project = project_of(session, annotation)
    staff_other = user.role in STAFF and annotation.annotator_id != user.id
    in_review = annotation.status == NodeStatus.submitted and annotation.approved_at is None
    nodes: list[dict[str, Any]] = []
    model: dict[int, dict[int, Any]] = {}
    for node, parent, label in labelled_nodes(session, annotation):
        frame = node.start_frame if isinstance(node, Shot) else None
        nodes.append(_node_view(node, parent, label, frame=frame))
        if isinstance(node, Track):
            model[node.id] = _model_points(session, node)
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
        "can_edit": edit_rights(annotation, user).editable,
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
