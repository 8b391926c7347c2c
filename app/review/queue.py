"""The review queue: submitted annotations of others waiting for a reviewer, with its filters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.annotations.models import Annotation, AnnotationKind, NodeStatus
from app.auth.models import Role, User
from app.batches.models import Assignment, Batch, BatchClip
from app.clips.models import Clip
from app.core.db import utcnow
from app.projects.models import Project
from app.review.models import ReviewComment
from app.review.workflow import awaiting_acceptance


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
