"""Job rows: one per pipeline step per clip, the system of record for pre-annotation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Enum, ForeignKey, Index, String, Text, UniqueConstraint
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
