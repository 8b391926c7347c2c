"""Submitting an annotation for review: a flow across annotations, review and agreement.

The annotator's required levels must be filled, review's resubmit rule holds, the children
go to ``submitted`` (unless approved and unchanged), and agreement hears of it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.agreement.recompute import on_annotation_submitted
from app.annotations.access import editable_annotation
from app.annotations.history import changed_since
from app.annotations.models import Annotation, NodeStatus, Revision
from app.annotations.payload import annotation_payload
from app.annotations.revisions import STATUS_ACTION, apply_edit
from app.annotations.tree import descendants, node_type_of
from app.auth.models import User
from app.batches.models import Assignment, AssignmentState
from app.clips.models import Clip
from app.core.db import utcnow
from app.core.errors import Invalid
from app.review.comments import check_resubmit
from app.review.workflow import set_status


def missing_levels(
    session: Session, annotation: Annotation, required: dict[str, list[str]]
) -> list[str]:
    """Which required levels (per the clip's subsets) are still empty."""
    clip = session.get_one(Clip, annotation.clip_id)
    needed = sorted({level for subset in clip.subsets for level in required.get(subset, [])})
    payload = annotation_payload(session, annotation)
    captions = payload["captions"]
    checks = {
        "clip_caption": any(
            c["level"] == "clip" and c["field"] == "short" and c["text"].strip() for c in captions
        ),
        "shot_captions": bool(payload["shots"])
        and all(
            any(
                c["level"] == "shot" and c["target_id"] == s["id"] and c["text"].strip()
                for c in captions
            )
            for s in payload["shots"]
        ),
        "tags": bool(annotation.tags)
        and all(v not in (None, "", []) for v in annotation.tags.values()),
        "quality": "keep" in annotation.quality,
        "characters": bool(payload["characters"]),
        "keypoints": bool(payload["characters"])
        and all(
            any(any(p[2] > 0 for p in f["points"]) for t in c["tracks"] for f in t["frames"])
            for c in payload["characters"]
            if c["tracks"]
        ),
        "emotions": bool(payload["characters"])
        and all(c["emotions"] for c in payload["characters"]),
        "speech": bool(payload["speech"]) or annotation.quality.get("no_speech") is True,
    }
    return [level for level in needed if not checks.get(level, True)]


def submit(
    session: Session, user: User, annotation_id: int, required: dict[str, list[str]]
) -> Annotation:
    """Send the annotation to review, only when every required level is filled."""
    annotation = editable_annotation(session, user, annotation_id)
    missing = missing_levels(session, annotation, required)
    if missing:
        raise Invalid(
            f"Not ready for review: fill {', '.join(missing)} first.", detail={"missing": missing}
        )
    _prepare_review(session, user, annotation)

    def send() -> dict[str, str]:
        annotation.status = NodeStatus.submitted
        annotation.submitted_at = utcnow()
        assignment = session.scalar(
            select(Assignment).where(Assignment.annotation_id == annotation.id)
        )
        if assignment is not None:
            assignment.state = AssignmentState.submitted
            assignment.submitted_at = utcnow()
        return {"status": "submitted"}

    before = {"status": annotation.status.value}
    apply_edit(session, user, annotation, annotation, node_type="annotation",
               action=STATUS_ACTION, before=before, change=send)  # fmt: skip
    on_annotation_submitted(session, annotation)
    return annotation


def _prepare_review(session: Session, user: User, annotation: Annotation) -> None:
    """Review's rules for a submission: enforce the resubmit rule, then mark the children.

    A child goes to ``submitted`` unless it is approved and unchanged since its approval, so a
    resubmission only asks the reviewer about what is new or was sent back.
    """
    check_resubmit(session, annotation)
    approved_at = _last_approvals(session, annotation)
    for child in descendants(session, annotation):
        if child.status == NodeStatus.submitted:
            continue
        key = (node_type_of(child), child.id)
        if child.status == NodeStatus.approved and not changed_since(
            session, annotation, child, approved_at.get(key)
        ):
            continue
        set_status(session, annotation, child, user, NodeStatus.submitted)


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
