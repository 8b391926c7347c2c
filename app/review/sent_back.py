"""Work a reviewer sent back, as the annotator's home page lists it: what, why, and where."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import User
from app.batches.models import Assignment, AssignmentState, Batch, BatchClip
from app.clips.models import Clip
from app.review.models import ReviewComment


@dataclass(frozen=True)
class SentBack:
    """One rejected assignment and the reviewer's latest open rejection on it."""

    assignment_id: int
    clip_id: int
    filename: str
    batch_name: str
    reason: str | None
    comment: str
    reviewer: str | None
    node_type: str | None
    frame: int | None
    rejected_at: datetime | None
    rejections: int  # open rejections on the clip (the latest is shown)

    @property
    def url(self) -> str:
        """The workspace, opened at the frame the rejection is pinned to."""
        base = f"/annotate/{self.assignment_id}"
        return base if self.frame is None else f"{base}?frame={self.frame}"

    @property
    def reason_text(self) -> str:
        return (self.reason or "").replace("_", " ")


def sent_back(session: Session, annotator: User, limit: int = 50) -> list[SentBack]:
    """The annotator's rejected assignments, newest first, each with its latest rejection."""
    rows = session.execute(
        select(Assignment.id, Assignment.clip_id, Assignment.annotation_id, Clip.filename,
               Batch.name)
        .join(BatchClip, BatchClip.id == Assignment.batch_clip_id)
        .join(Batch, Batch.id == BatchClip.batch_id)
        .join(Clip, Clip.id == Assignment.clip_id)
        .where(Assignment.annotator_id == annotator.id,
               Assignment.state == AssignmentState.rejected)
        .order_by(Assignment.id.desc())
        .limit(limit)
    ).all()  # fmt: skip
    annotation_ids = [r.annotation_id for r in rows if r.annotation_id is not None]
    rejections: dict[int, list[tuple[ReviewComment, str | None]]] = {}
    if annotation_ids:
        comments = session.execute(
            select(ReviewComment, User.username)
            .join(User, User.id == ReviewComment.author_id, isouter=True)
            .where(ReviewComment.annotation_id.in_(annotation_ids),
                   ReviewComment.reason.is_not(None), ReviewComment.parent_id.is_(None),
                   ReviewComment.resolved.is_(False))
            .order_by(ReviewComment.id.desc())
        ).all()  # fmt: skip
        for comment, author in comments:
            rejections.setdefault(comment.annotation_id, []).append((comment, author))
    items = []
    for row in rows:
        found = rejections.get(row.annotation_id or -1, [])
        latest, reviewer = found[0] if found else (None, None)
        items.append(
            SentBack(
                assignment_id=row.id, clip_id=row.clip_id, filename=row.filename,
                batch_name=row.name, reason=latest.reason if latest else None,
                comment=latest.body if latest else "", reviewer=reviewer,
                node_type=latest.node_type if latest else None,
                frame=latest.frame_index if latest else None,
                rejected_at=latest.created_at if latest else None, rejections=len(found),
            )
        )  # fmt: skip
    return items
