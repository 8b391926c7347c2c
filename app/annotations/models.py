"""The annotation hierarchy of DESIGN.md and its append-only revision history.

Each person (and the model) works on their own :class:`Annotation` of a clip, so overlapped
clips keep every annotator's version side by side for agreement; one of them is marked
``is_primary`` and is what review and export see. Every editable node carries a ``status`` and
a ``version`` (optimistic concurrency: SQLAlchemy adds ``WHERE version = :seen`` to updates).

Keypoints are stored one row per (track, frame) with the frame's points packed in a binary
blob (see :mod:`app.annotations.points`), so 50k clips x 150 frames x 133 points is 7.5M rows
rather than a billion, and saving one frame rewrites one small row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from app.core.db import Base, JSONType, NullableJSONType, StrEnum, utcnow


class NodeStatus(StrEnum):
    draft = "draft"
    submitted = "submitted"
    approved = "approved"
    rejected = "rejected"


class AnnotationKind(StrEnum):
    model = "model"
    human = "human"
    adjudicated = "adjudicated"


class Source(StrEnum):
    model = "model"
    human = "human"
    system = "system"
    import_ = "import"
    review = "review"  # a reviewer's fix made while accepting (Fix and accept)


class CharacterKind(StrEnum):
    humanoid = "humanoid"
    animal = "animal"
    creature = "creature"
    object = "object"


class Editable:
    """Columns every editable node shares."""

    status: Mapped[NodeStatus] = mapped_column(
        Enum(NodeStatus, native_enum=False, length=16), default=NodeStatus.draft
    )
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @declared_attr
    def updated_by_id(cls) -> Mapped[int | None]:
        return mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


class Annotation(Editable, Base):
    """One annotator's (or the model's) version of a clip: the clip-level node."""

    __tablename__ = "annotation"
    __table_args__ = (
        UniqueConstraint("clip_id", "annotator_id", "kind"),
        Index("ix_annotation_annotator_status", "annotator_id", "status"),
        # The review queue, oldest first: read in index order and stop at the page size.
        Index(
            "ix_annotation_submitted_queue",
            "submitted_at",
            "id",
            postgresql_where=text("status = 'submitted'"),
            sqlite_where=text("status = 'submitted'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clip_id: Mapped[int] = mapped_column(ForeignKey("clip.id", ondelete="CASCADE"), index=True)
    kind: Mapped[AnnotationKind] = mapped_column(Enum(AnnotationKind, native_enum=False, length=16))
    annotator_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    is_primary: Mapped[bool] = mapped_column(default=False)
    tags: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    quality: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # keep + reasons
    timing: Mapped[str | None] = mapped_column(String(10))
    submitted_at: Mapped[datetime | None]
    approved_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Shot(Editable, Base):
    __tablename__ = "shot"
    __table_args__ = (Index("ix_shot_annotation_start", "annotation_id", "start_frame"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    annotation_id: Mapped[int] = mapped_column(ForeignKey("annotation.id", ondelete="CASCADE"))
    start_frame: Mapped[int]
    end_frame: Mapped[int]  # exclusive
    camera_motion: Mapped[str | None] = mapped_column(String(20))
    source: Mapped[Source] = mapped_column(Enum(Source, native_enum=False, length=16))


class Character(Editable, Base):
    __tablename__ = "character"

    id: Mapped[int] = mapped_column(primary_key=True)
    annotation_id: Mapped[int] = mapped_column(
        ForeignKey("annotation.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[CharacterKind] = mapped_column(Enum(CharacterKind, native_enum=False, length=16))
    skeleton: Mapped[str] = mapped_column(String(64))  # built-in name or custom template name
    reference_frame: Mapped[int | None]
    emotions: Mapped[list[Any]] = mapped_column(JSONType, default=list)  # [{start, end, label}]
    source: Mapped[Source] = mapped_column(Enum(Source, native_enum=False, length=16))
    # This character's held drawings, found in its own region after compensating its motion
    # (app.media.drawings.DrawingRun.as_json each); empty until found. ``timing`` is the
    # character's drawing timing: ones, twos, threes or mixed.
    drawing_runs: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    timing: Mapped[str | None] = mapped_column(String(10))


class Track(Editable, Base):
    """The per-frame keypoints of one character (its frames live in KeypointFrame)."""

    __tablename__ = "track"

    id: Mapped[int] = mapped_column(primary_key=True)
    character_id: Mapped[int] = mapped_column(
        ForeignKey("character.id", ondelete="CASCADE"), index=True
    )
    num_points: Mapped[int]
    source: Mapped[Source] = mapped_column(Enum(Source, native_enum=False, length=16))


class KeypointFrame(Base):
    """One frame of a track: ``points`` is the working pose (each point tagged model|human),
    ``model_points`` the latest model draft kept apart so re-runs never overwrite human work."""

    __tablename__ = "keypoint_frame"
    __table_args__ = (UniqueConstraint("track_id", "frame_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("track.id", ondelete="CASCADE"))
    frame_index: Mapped[int]
    points: Mapped[bytes] = mapped_column(LargeBinary)
    model_points: Mapped[bytes | None] = mapped_column(LargeBinary)
    is_keyframe: Mapped[bool] = mapped_column(default=False)
    part_valid: Mapped[int] = mapped_column(default=0)  # bit per skeleton part
    flags: Mapped[list[str]] = mapped_column(JSONType, default=list)  # e.g. "jitter:left_wrist"
    # The person-drawn character box [x, y, w, h] in clip pixels; None: the export pads the
    # labelled body points instead (app.export.formats.boxes).
    box: Mapped[list[float] | None] = mapped_column(NullableJSONType, default=None)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )

    __mapper_args__ = {"version_id_col": version}


class CaptionLevel(StrEnum):
    clip = "clip"
    shot = "shot"
    character = "character"


class Caption(Editable, Base):
    """A caption field; ``model_text`` keeps the machine draft apart from the human ``text``."""

    __tablename__ = "caption"
    __table_args__ = (UniqueConstraint("annotation_id", "level", "target_id", "field"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    annotation_id: Mapped[int] = mapped_column(ForeignKey("annotation.id", ondelete="CASCADE"))
    level: Mapped[CaptionLevel] = mapped_column(Enum(CaptionLevel, native_enum=False, length=16))
    target_id: Mapped[int] = mapped_column(default=0)  # shot/character id; 0 for the clip
    field: Mapped[str] = mapped_column(
        String(20)
    )  # short|detailed|narrative|descriptive|appearance
    text: Mapped[str] = mapped_column(Text, default="")
    model_text: Mapped[str | None] = mapped_column(Text)
    model_name: Mapped[str | None] = mapped_column(String(100))


class SpeechSegment(Editable, Base):
    __tablename__ = "speech_segment"

    id: Mapped[int] = mapped_column(primary_key=True)
    annotation_id: Mapped[int] = mapped_column(
        ForeignKey("annotation.id", ondelete="CASCADE"), index=True
    )
    start_s: Mapped[float]
    end_s: Mapped[float]
    transcript: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[Source] = mapped_column(Enum(Source, native_enum=False, length=16))


class Revision(Base):
    """Append-only history: who changed which node, when, from which source, before and after."""

    __tablename__ = "revision"
    __table_args__ = (Index("ix_revision_node", "node_type", "node_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    annotation_id: Mapped[int | None] = mapped_column(
        ForeignKey("annotation.id", ondelete="CASCADE"), index=True
    )
    node_type: Mapped[str] = mapped_column(String(30))
    node_id: Mapped[int]
    version: Mapped[int]
    action: Mapped[str] = mapped_column(String(20))  # create|update|delete|status|restore
    source: Mapped[Source] = mapped_column(Enum(Source, native_enum=False, length=16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
