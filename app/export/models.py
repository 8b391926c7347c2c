"""Export snapshots: named, immutable selections of approved annotations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, utcnow


class ExportSnapshot(Base):
    __tablename__ = "export_snapshot"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    formats: Mapped[list[str]] = mapped_column(JSONType, default=list)
    filter: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # app.export.options.ExportOptions: frames, split, licence and source
    options: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, server_default="{}")
    annotation_versions: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(default=0.0)
    storage_key: Mapped[str | None] = mapped_column(String(500))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The build's last sign of life (claim, then every JOB_HEARTBEAT_S): a `running` snapshot
    # silent for JOB_STALE_AFTER_S lost its worker and is taken over by the next delivery.
    heartbeat_at: Mapped[datetime | None]
    # Raised by every claim: the fencing token checked when the build records its result.
    attempt: Mapped[int] = mapped_column(default=0)
    finished_at: Mapped[datetime | None]
    # A copy for a bucket prefix the admin named (app.export.target): where it was asked for,
    # the object it was written to, or why writing it failed (the snapshot stays downloadable).
    target_url: Mapped[str | None] = mapped_column(String(1024))
    target_object: Mapped[str | None] = mapped_column(String(2048))
    target_error: Mapped[str | None] = mapped_column(Text)
