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
    rejection_reasons: list[str]
    required_levels: dict[str, Any]
    admin_acceptance: bool
    agreement_threshold: float
    created_at: datetime
