from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.clips.filters import ClipFilter, ClipFilterForm
from app.core.errors import Invalid
from app.export.formats.registry import parse_formats


class ExportCreate(BaseModel):
    """A snapshot to build: which project, which clips (only approved primary annotations of
    matching clips are exported) and which formats."""

    project_id: int
    name: str = Field(min_length=1, max_length=120)
    formats: list[str] = Field(min_length=1, description="see docs/export-formats.md")
    filter: ClipFilter = Field(default_factory=ClipFilter)

    @field_validator("name")
    @classmethod
    def _strip(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a snapshot needs a name")
        return value.strip()

    @field_validator("formats")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        return parse_formats(value)


class ExportRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    name: str
    formats: list[str]
    filter: dict[str, Any]
    state: str
    progress: float
    size_bytes: int | None
    sha256: str | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    clips: int = Field(0, description="clips in the snapshot (once built)")


class ImportReport(BaseModel):
    """What an import did; ``skipped`` explains every record it left out."""

    project: str
    format: str
    clips_created: int = 0
    annotations: int = 0
    drafts: int = 0
    captions: int = 0
    users_created: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)


class ExportForm(ClipFilterForm):
    """The export form as the browser posts it: a name, formats and the clip filter."""

    name: str = ""
    formats: list[str] = Field(default_factory=list)

    def to_create(self) -> ExportCreate:
        if self.project_id is None:
            raise Invalid("Choose a project.", field="project_id")
        flt = self.clip_filter()
        return ExportCreate.model_validate(
            {
                "project_id": self.project_id,
                "name": self.name,
                "formats": self.formats,
                "filter": flt,
            }
        )
