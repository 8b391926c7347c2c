from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.clips.models import ClipState


class ClipRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    external_id: str | None
    filename: str
    content_hash: str
    size_bytes: int
    subsets: list[str]
    state: ClipState
    error_kind: str | None
    error: str | None
    container: str | None
    video_codec: str | None
    audio_codec: str | None
    width: int | None
    height: int | None
    fps: float | None
    frame_count: int | None
    duration_s: float | None
    has_audio: bool
    variable_frame_rate: bool
    held_runs: list[Any]
    detected_timing: str | None
    scores: dict[str, Any]
    quality_flags: dict[str, Any]
    created_at: datetime


class JobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    step: str
    state: str
    attempts: int
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    error: str | None


class ClipDetail(ClipRead):
    jobs: list[JobRead]


class ImportResult(BaseModel):
    name: str
    status: str = Field(description="created, duplicate or error")
    clip_id: int | None
    message: str


class FolderImport(BaseModel):
    path: str = Field(min_length=1, description="A folder or file under the server's import root")
    subsets: list[str] = Field(default_factory=list)


class PipelineRun(BaseModel):
    steps: list[str] | None = None
