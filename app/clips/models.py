"""Clips: one video file of a project, its probe values and what the pipeline measured."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, StrEnum, utcnow


class ClipState(StrEnum):
    """Where the clip is in ingestion and pre-annotation (not its review status)."""

    uploaded = "uploaded"
    processing = "processing"
    ready = "ready"
    failed = "failed"


class SyncState(StrEnum):
    """Where a bucket source is: never listed, waiting for a worker, listing, done (or failed),
    and its records being handed to the pipeline ("Process now")."""

    new = "new"
    queued = "queued"
    syncing = "syncing"
    synced = "synced"
    failed = "failed"
    processing = "processing"


class BucketSource(Base):
    """A registered bucket prefix whose video objects become clips without being copied.

    The secret access key is stored sealed (app.core.secret_box) and never shown back.
    """

    __tablename__ = "bucket_source"
    __table_args__ = (UniqueConstraint("project_id", "url", "endpoint_url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(1100))  # s3://bucket/prefix/
    endpoint_url: Mapped[str] = mapped_column(String(500), default="")
    region: Mapped[str] = mapped_column(String(64), default="")
    access_key_id: Mapped[str] = mapped_column(String(200), default="")
    secret_encrypted: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    state: Mapped[SyncState] = mapped_column(
        Enum(SyncState, native_enum=False, length=16), default=SyncState.new
    )
    error: Mapped[str | None] = mapped_column(Text)
    object_count: Mapped[int] = mapped_column(default=0)
    last_key: Mapped[str] = mapped_column(String(1024), default="")
    last_synced_at: Mapped[datetime | None]

    @property
    def secret_set(self) -> bool:
        return bool(self.secret_encrypted)


# A clip uploaded straight to the bucket has no content hash until its probe step reads the
# file (app/pipeline/steps.py): this prefix and the upload's id keep it unique meanwhile.
PENDING_HASH_PREFIX = "pending-upload-"


class Clip(Base):
    __tablename__ = "clip"
    __table_args__ = (
        UniqueConstraint("project_id", "content_hash"),
        Index("ix_clip_project_state", "project_id", "state", "id"),
        # The clips list pages through a project newest first (keyset on id, never OFFSET).
        Index("ix_clip_project_id", "project_id", "id"),
        # and searches file names by any part (ILIKE '%...%'): trigrams, on PostgreSQL only.
        Index(
            "ix_clip_filename_trgm",
            "filename",
            postgresql_using="gin",
            postgresql_ops={"filename": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
        # The filter's external-id lookups; partial: bucket records (and most uploads) have none.
        Index(
            "ix_clip_external_id",
            "external_id",
            postgresql_where=text("external_id IS NOT NULL"),
            sqlite_where=text("external_id IS NOT NULL"),
        ),
        # A source's clips (deleting it, counting them); partial: manifest records skip it.
        Index(
            "ix_clip_source_id",
            "source_id",
            postgresql_where=text("source_id IS NOT NULL"),
            sqlite_where=text("source_id IS NOT NULL"),
        ),
        # SQLite would hand a deleted clip's id out again (PostgreSQL's sequence never does):
        # the id names the clip's media folder and its frames' export ids.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    external_id: Mapped[str | None] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(255))
    # Inside the media store; for a clip of a bucket source, the object key in that bucket.
    storage_key: Mapped[str] = mapped_column(String(1024))
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("bucket_source.id", ondelete="CASCADE")
    )
    content_hash: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    subsets: Mapped[list[str]] = mapped_column(JSONType, default=list)
    source_tags: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    state: Mapped[ClipState] = mapped_column(
        Enum(ClipState, native_enum=False, length=16), default=ClipState.uploaded
    )
    error_kind: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)

    # probe
    container: Mapped[str | None] = mapped_column(String(40))
    video_codec: Mapped[str | None] = mapped_column(String(40))
    audio_codec: Mapped[str | None] = mapped_column(String(40))
    width: Mapped[int | None]
    height: Mapped[int | None]
    fps: Mapped[float | None]
    frame_count: Mapped[int | None]
    duration_s: Mapped[float | None]
    has_audio: Mapped[bool] = mapped_column(default=False)
    variable_frame_rate: Mapped[bool] = mapped_column(default=False)
    probe: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    # pipeline measurements (model side; people edit the Annotation, not these)
    held_runs: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    detected_timing: Mapped[str | None] = mapped_column(String(10))
    scores: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    quality_flags: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
