"""Batches of clips, their pools, and the assignments (claimed slots) of annotators and
reviewers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Enum, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, StrEnum, utcnow


class Batch(Base):
    __tablename__ = "batch"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    filter: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    priority: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[datetime | None]
    overlap_k: Mapped[int] = mapped_column(default=1)
    overlap_pct: Mapped[float] = mapped_column(default=0.0)
    gold_pct: Mapped[float] = mapped_column(default=0.0)
    lease_minutes: Mapped[int] = mapped_column(default=60)
    seed: Mapped[int] = mapped_column(default=0, server_default="0")  # reproducible sampling
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# Claim order inside a batch; the index holds only clips with a free slot, so the scan for the
# next clip skips every clip whose slots are all claimed (see app.batches.claims.next_clip).
_OPEN_SLOT = text("handed_out < required_annotators")


class BatchClip(Base):
    """A clip in a batch and how many distinct annotators it needs (k on overlapped clips).

    ``handed_out`` counts the clip's claimed slots (its assignments that are not released);
    ``position`` orders the claims (gold clips borrow a random regular clip's position so they
    are mixed in).
    """

    __tablename__ = "batch_clip"
    __table_args__ = (
        UniqueConstraint("batch_id", "clip_id"),
        Index(
            "ix_batch_clip_open_slots",
            "batch_id",
            "position",
            "id",
            postgresql_where=_OPEN_SLOT,
            sqlite_where=_OPEN_SLOT,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id", ondelete="CASCADE"))
    clip_id: Mapped[int] = mapped_column(ForeignKey("clip.id", ondelete="CASCADE"), index=True)
    required_annotators: Mapped[int] = mapped_column(default=1)
    is_gold: Mapped[bool] = mapped_column(default=False)
    handed_out: Mapped[int] = mapped_column(default=0)
    position: Mapped[int] = mapped_column(default=0, server_default="0")


class BatchMember(Base):
    """Who works on a batch; annotators without a named assignment draw from its pool."""

    __tablename__ = "batch_member"
    __table_args__ = (
        UniqueConstraint("batch_id", "user_id", "role"),
        Index("ix_batch_member_user_role", "user_id", "role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))  # annotator|reviewer


class AssignmentState(StrEnum):
    assigned = "assigned"
    in_progress = "in_progress"
    submitted = "submitted"
    approved = "approved"
    rejected = "rejected"
    released = "released"


# Work its annotator still holds: the slot is taken and the lease (once started) runs.
OPEN_STATES = (AssignmentState.assigned, AssignmentState.in_progress)


_OPEN_LEASE = text("state IN ('assigned', 'in_progress')")


class Assignment(Base):
    __tablename__ = "assignment"
    __table_args__ = (
        UniqueConstraint("batch_clip_id", "annotator_id"),
        Index("ix_assignment_annotator_state", "annotator_id", "state"),
        # Open leases only: the sweep for abandoned clips is an index range scan.
        Index(
            "ix_assignment_open_lease",
            "leased_until",
            postgresql_where=_OPEN_LEASE,
            sqlite_where=_OPEN_LEASE,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_clip_id: Mapped[int] = mapped_column(ForeignKey("batch_clip.id", ondelete="CASCADE"))
    clip_id: Mapped[int] = mapped_column(ForeignKey("clip.id", ondelete="CASCADE"), index=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    annotation_id: Mapped[int | None] = mapped_column(ForeignKey("annotation.id"), index=True)
    state: Mapped[AssignmentState] = mapped_column(
        Enum(AssignmentState, native_enum=False, length=16), default=AssignmentState.assigned
    )
    leased_until: Mapped[datetime | None]
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    submitted_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
