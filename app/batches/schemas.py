"""Batch, assignment and queue payloads.

Annotator-facing schemas (:class:`QueueItem`) deliberately have no ``is_gold`` field: gold
clips are mixed in without telling the annotator.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from app.batches.models import AssignmentState
from app.clips.models import ClipState
from app.core.errors import Invalid
from app.projects.models import Subset


class ClipFilter(BaseModel):
    """Which clips of a project go into a batch; every given criterion must hold."""

    subset: Subset | None = None
    tags: dict[str, str] = Field(default_factory=dict, description="source tag -> value")
    with_flags: list[str] = Field(default_factory=list, description="quality flags required")
    without_flags: list[str] = Field(default_factory=list, description="quality flags excluded")
    state: ClipState | None = None
    ingested_from: date | None = None
    ingested_to: date | None = Field(None, description="inclusive")
    external_ids: list[str] = Field(default_factory=list)
    clip_ids: list[int] = Field(default_factory=list, description="hand-picked clips")
    limit: int | None = Field(None, ge=1, description="batch size: the first N matches by id")

    @model_validator(mode="after")
    def _dates_in_order(self) -> ClipFilter:
        if self.ingested_from and self.ingested_to and self.ingested_from > self.ingested_to:
            raise ValueError("ingested_from must not be after ingested_to")
        return self


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


class QueueItem(BaseModel):
    """An assignment as its annotator sees it (never says whether the clip is gold)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    clip_id: int
    batch_id: int
    batch_name: str
    filename: str
    state: AssignmentState
    leased_until: datetime | None
    assigned_at: datetime
    url: str


class StateCounts(BaseModel):
    assigned: int = 0
    in_progress: int = 0
    submitted: int = 0
    approved: int = 0
    rejected: int = 0
    released: int = 0


class ProgressRead(BaseModel):
    label: str
    counts: StateCounts
    submitted_last_hour: int
    median_seconds: float | None


class BatchProgressRead(BaseModel):
    batch_id: int
    clips: int
    gold_clips: int
    overlapped_clips: int
    slots: int
    handed_out: int
    overall: ProgressRead
    annotators: list[ProgressRead]


def _split(text: str) -> list[str]:
    return [p for p in re.split(r"[\s,]+", text) if p]


class ClipFilterForm(BaseModel):
    """The clip filter as a browser form posts it (text fields); batches and exports use it."""

    project_id: int | None = None
    subset: str = ""
    tags: str = Field("", description="`key=value` pairs, comma or newline separated")
    with_flags: str = ""
    without_flags: str = ""
    state: str = ""
    ingested_from: str = ""
    ingested_to: str = ""
    external_ids: str = ""
    clip_ids: str = ""
    limit: str = ""

    @field_validator("project_id", mode="before")
    @classmethod
    def _no_project_chosen(cls, value: object) -> object:
        return None if value == "" else value  # the select's "—" option

    def clip_filter(self) -> ClipFilter:
        pairs = [p.partition("=") for p in re.split(r"[\n,]+", self.tags) if p.strip()]
        bad = [k + s + v for k, s, v in pairs if not s or not k.strip() or not v.strip()]
        if bad:
            got = ", ".join(b.strip() for b in bad)
            raise Invalid(f"Write key=value, got {got}.", field="tags")
        not_ids = [p for p in _split(self.clip_ids) if not (p.isdigit() and len(p) < 19)]
        if not_ids:
            raise Invalid(
                f"Write whole numbers; these are not: {', '.join(not_ids[:10])}.",
                field="clip_ids",
            )
        return ClipFilter.model_validate(
            {
                "subset": self.subset or None,
                "tags": {k.strip(): v.strip() for k, _, v in pairs},
                "with_flags": _split(self.with_flags),
                "without_flags": _split(self.without_flags),
                "state": self.state or None,
                "ingested_from": self.ingested_from or None,
                "ingested_to": self.ingested_to or None,
                "external_ids": _split(self.external_ids),
                "clip_ids": _split(self.clip_ids),
                "limit": self.limit or None,
            }
        )


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


class AssignResultRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    annotators: int
    reviewers: int
    overlapped: int
    gold: int
    gold_shortfall: int
