"""Job rows (one per pipeline step per clip, the system of record for pre-annotation) and
browser uploads on their way to becoming clips."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, StrEnum, utcnow


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class Job(Base):
    __tablename__ = "job"
    __table_args__ = (
        UniqueConstraint("clip_id", "step"),
        Index("ix_job_state_queued", "state", "queued_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clip_id: Mapped[int] = mapped_column(ForeignKey("clip.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(20))
    state: Mapped[JobState] = mapped_column(
        Enum(JobState, native_enum=False, length=16), default=JobState.queued
    )
    # Raised by every claim: the fencing token a run checks on each write of its result.
    attempts: Mapped[int] = mapped_column(default=0)
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    # The run's last sign of life (claim, then every JOB_HEARTBEAT_S): a `running` job silent
    # for JOB_STALE_AFTER_S lost its worker and is taken over.
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    duration_s: Mapped[float | None]
    error: Mapped[str | None] = mapped_column(Text)
    task_id: Mapped[str | None] = mapped_column(String(64))
    worker: Mapped[str | None] = mapped_column(String(120))
    result: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class UploadState(StrEnum):
    open = "open"
    completed = "completed"
    aborted = "aborted"


class Upload(Base):
    """A browser's multipart upload straight to the bucket (``uploads/...``), from start until
    it becomes a clip or is aborted; what a resumed browser continues."""

    __tablename__ = "upload"
    __table_args__ = (Index("ix_upload_state_created", "state", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    created_by: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))
    subsets: Mapped[list[str]] = mapped_column(JSONType, default=list)
    key: Mapped[str] = mapped_column(String(500))
    upload_id: Mapped[str] = mapped_column(Text)
    part_size: Mapped[int]
    state: Mapped[UploadState] = mapped_column(
        Enum(UploadState, native_enum=False, length=16), default=UploadState.open
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]
    clip_id: Mapped[int | None] = mapped_column(ForeignKey("clip.id", ondelete="SET NULL"))
