"""Agreement results stored per clip, level, metric and pair, plus rollups."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, utcnow


class AgreementScore(Base):
    __tablename__ = "agreement_score"
    __table_args__ = (
        Index("ix_agreement_score_clip_level", "clip_id", "level", "metric"),
        Index("ix_agreement_score_project_metric", "project_id", "metric"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    clip_id: Mapped[int] = mapped_column(ForeignKey("clip.id", ondelete="CASCADE"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batch.id", ondelete="SET NULL"))
    level: Mapped[str] = mapped_column(String(20))  # keypoints|shots|tags|emotions|captions|...
    metric: Mapped[str] = mapped_column(String(30))  # oks|pck|boundary_f1|alpha|kappa|chrf|...
    against: Mapped[str] = mapped_column(String(10))  # human|gold|model
    annotation_a_id: Mapped[int | None] = mapped_column(
        ForeignKey("annotation.id", ondelete="CASCADE")
    )
    annotation_b_id: Mapped[int | None] = mapped_column(
        ForeignKey("annotation.id", ondelete="CASCADE")
    )
    annotator_a_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    annotator_b_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    value: Mapped[float | None]
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    annotation_versions: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgreementRollup(Base):
    __tablename__ = "agreement_rollup"
    __table_args__ = (Index("ix_agreement_rollup_scope", "project_id", "scope", "scope_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(12))  # annotator|batch|project
    scope_id: Mapped[int | None]
    level: Mapped[str] = mapped_column(String(20))
    metric: Mapped[str] = mapped_column(String(30))
    value: Mapped[float | None]
    n: Mapped[int] = mapped_column(default=0)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
