"""A project is one dataset: its subsets, vocabularies, skeleton templates and review rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, StrEnum, utcnow


class Subset(StrEnum):
    i2v = "i2v"
    pose = "pose"
    face_video = "face_video"
    face_audio = "face_audio"


EMOTIONS = (
    "amusement", "awe", "contentment", "excitement",
    "anger", "disgust", "fear", "sadness", "neutral",
)  # fmt: skip

DEFAULT_CONFIDENCE_FLOOR = 0.3  # MediaPipe visibility/presence below this is a guess

DEFAULT_TAG_VOCABULARY: dict[str, list[str]] = {
    "time_of_day": ["day", "dusk", "night"],
    "venue": ["outdoor", "indoor", "urban", "nature", "fantasy"],
    "framing": ["wide", "medium", "close_up"],
    "count": ["solo", "multiple"],
}

DEFAULT_REQUIRED_LEVELS: dict[str, list[str]] = {
    "i2v": ["clip_caption", "shot_captions", "tags", "quality"],
    "pose": ["characters", "keypoints"],
    "face_video": ["characters", "keypoints", "emotions"],
    "face_audio": ["characters", "keypoints", "speech"],
}


class Project(Base):
    __tablename__ = "project"
    __table_args__ = {"sqlite_autoincrement": True}  # an id is never reused: it names media

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    subsets: Mapped[list[str]] = mapped_column(JSONType, default=list)
    tag_vocabulary: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    emotion_labels: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # {review node type: [reason, ...]} (see app.projects.reasons)
    rejection_reasons: Mapped[dict[str, list[str]]] = mapped_column(JSONType, default=dict)
    required_levels: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    quality_thresholds: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    caption_guide: Mapped[str] = mapped_column(Text, default="")
    admin_acceptance: Mapped[bool] = mapped_column(default=False)
    agreement_threshold: Mapped[float] = mapped_column(default=0.75)
    # 2-of-3 majority settles categorical labels (tags, flags, emotions) without adjudication.
    majority_vote: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Annotators may type tag values outside the vocabulary (validated like vocabulary names).
    allow_free_tags: Mapped[bool] = mapped_column(default=False, server_default=false())
    # A model point below this confidence (or outside the frame) is stored as a suggestion:
    # not labelled (v=0) until a person accepts or moves it (docs/keypoint-mapping.md).
    keypoint_confidence_floor: Mapped[float] = mapped_column(
        default=DEFAULT_CONFIDENCE_FLOOR, server_default=str(DEFAULT_CONFIDENCE_FLOOR)
    )
    # Whether an approved track's untouched model points at or above the floor count as
    # labelled in exports (docs/export-formats.md); by default only a person's points do.
    approved_model_points_count: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SkeletonTemplate(Base):
    """A skeleton stored as JSON (points, edges, symmetric pairs, sigmas).

    Built-in templates have ``project_id`` NULL; admins add custom ones per project.
    """

    __tablename__ = "skeleton_template"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
