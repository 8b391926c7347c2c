from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.projects.models import Subset


class ProjectCreate(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    subsets: list[Subset] = Field(default_factory=lambda: list(Subset))
    description: str = ""


class ProjectRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    subsets: list[str]
    tag_vocabulary: dict[str, Any]
    emotion_labels: list[str]
    rejection_reasons: dict[str, list[str]]
    required_levels: dict[str, Any]
    caption_guide: str
    admin_acceptance: bool
    allow_free_tags: bool
    agreement_threshold: float
    keypoint_confidence_floor: float
    approved_model_points_count: bool
    created_at: datetime


class ProjectUpdate(BaseModel):
    """Settings to change; fields left out stay as they are."""

    description: str | None = None
    subsets: list[Subset] | None = None
    tag_vocabulary: dict[str, list[str]] | None = None
    emotion_labels: list[str] | None = None
    rejection_reasons: dict[str, list[str]] | None = None
    required_levels: dict[str, list[str]] | None = None
    caption_guide: str | None = Field(None, max_length=20_000)
    agreement_threshold: float | None = Field(None, ge=0, le=1)
    admin_acceptance: bool | None = None
    allow_free_tags: bool | None = None
    keypoint_confidence_floor: float | None = Field(None, ge=0, le=1)
    approved_model_points_count: bool | None = None


class SkeletonRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int | None
    name: str
    definition: dict[str, Any]
    created_at: datetime
