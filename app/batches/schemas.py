"""Batch and assignment payloads.

Annotator-facing schemas (:class:`OwnAssignment`) deliberately have no ``is_gold`` field: gold
clips are mixed in without telling the annotator.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, computed_field

from app.batches.models import AssignmentState
from app.clips.filters import ClipFilter, ClipFilterForm
from app.core.errors import Invalid


class BatchCreate(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    project_id: int
    filter: ClipFilter = Field(default_factory=ClipFilter)
    priority: int = 0
    due_at: AwareDatetime | None = None  # stored as UTC; a naive time names no zone
    lease_minutes: int = Field(60, ge=1, le=7 * 24 * 60)


class AssignConfig(BaseModel):
    """Members of a batch's pool and how its clips are shared among them."""

    annotators: list[str] = Field(default_factory=list, description="usernames")
    reviewers: list[str] = Field(default_factory=list, description="usernames")
    overlap_k: int = Field(1, ge=1, le=10, description="annotators per overlapped clip")
    overlap_pct: float = Field(0.0, ge=0, le=100, description="share of clips overlapped")
    gold_pct: float = Field(0.0, ge=0, le=100, description="gold clips mixed in, % of batch")
    seed: int = 0


class NamedAssign(BaseModel):
    annotator: str = Field(min_length=1, description="username")
    count: int = Field(1, ge=1, le=10_000)


class Reassign(BaseModel):
    annotator: str = Field(min_length=1, description="username of the new annotator")


class BatchRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    name: str
    filter: dict[str, object]
    priority: int
    due_at: datetime | None
    overlap_k: int
    overlap_pct: float
    gold_pct: float
    lease_minutes: int
    seed: int
    created_at: datetime


class CountRead(BaseModel):
    matching: int


class AssignmentRead(BaseModel):
    """An assignment as admins see it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    batch_clip_id: int
    clip_id: int
    annotator_id: int
    reviewer_id: int | None
    state: AssignmentState
    leased_until: datetime | None
    assigned_at: datetime
    started_at: datetime | None
    submitted_at: datetime | None


class OwnAssignment(BaseModel):
    """One of an annotator's own assignments, as they see it (never says whether the clip is
    gold)."""

    id: int
    clip_id: int
    batch_id: int
    batch_name: str
    filename: str
    state: AssignmentState
    leased_until: datetime | None
    assigned_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def url(self) -> str:
        return f"/annotate/{self.id}"


class BatchForm(ClipFilterForm):
    """The batch form, turned into a BatchCreate."""

    name: str = ""
    priority: int = 0
    due: str = ""
    lease_minutes: int = 60

    def to_create(self) -> BatchCreate:
        if not self.name.strip():  # checked in the order of the form's fields
            raise Invalid("A batch needs a name.", field="name")
        if self.project_id is None:
            raise Invalid("Choose a project.", field="project_id")
        return BatchCreate.model_validate(
            {
                "name": self.name.strip(),
                "project_id": self.project_id,
                "filter": self.clip_filter(),
                "priority": self.priority,
                "due_at": f"{self.due}T23:59:59+00:00" if self.due else None,  # end of day
                "lease_minutes": self.lease_minutes,
            }
        )


class FilterPreview(BaseModel):
    project_id: int
    filter: ClipFilter = Field(default_factory=ClipFilter)
