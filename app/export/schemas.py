from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.clips.filters import ClipFilter, ClipFilterForm
from app.core.errors import Invalid
from app.export.formats.registry import parse_formats
from app.export.options import ExportOptions, ImageFormat


class ExportCreate(BaseModel):
    """A snapshot to build: which project, which clips (only approved primary annotations of
    matching clips are exported) and which formats."""

    project_id: int
    name: str = Field(min_length=1, max_length=120)
    formats: list[str] = Field(min_length=1, description="see docs/export-formats.md")
    filter: ClipFilter = Field(default_factory=ClipFilter)
    options: ExportOptions = Field(default_factory=ExportOptions)
    target: str = Field(
        "",
        max_length=1000,
        description="also write the archive to this s3://bucket/prefix/ (with an object store)",
    )

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
    options: dict[str, Any]
    state: str
    progress: float
    size_bytes: int | None
    sha256: str | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    target_url: str | None = Field(None, description="the s3://bucket/prefix/ asked for")
    target_object: str | None = Field(None, description="the copy written there")
    target_error: str | None = Field(None, description="why the copy could not be written")
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
    """The export form as the browser posts it: a name, formats, the clip filter and the
    options (an unticked checkbox is not sent, so ``frames`` is False when absent)."""

    name: str = ""
    formats: list[str] = Field(default_factory=list)
    frames: bool = False
    image_format: ImageFormat = "jpg"
    jpeg_quality: int = 88
    val_percent: float = 10.0
    test_percent: float = 0.0
    split_seed: int = 0
    licence: str = ""
    source: str = ""
    target: str = ""

    def to_create(self) -> ExportCreate:
        if self.project_id is None:
            raise Invalid("Choose a project.", field="project_id")
        flt = self.clip_filter()
        options = ExportOptions.model_validate(self.model_dump(include=OPTION_FIELDS))
        return ExportCreate.model_validate(
            {
                "project_id": self.project_id,
                "name": self.name,
                "formats": self.formats,
                "filter": flt,
                "options": options,
                "target": self.target,
            }
        )


OPTION_FIELDS = set(ExportOptions.model_fields)
