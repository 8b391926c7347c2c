from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from app.clips.filters import ClipFilter, ClipFilterForm
from app.clips.models import ClipState, SyncState
from app.core.errors import Invalid


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


class FolderImport(BaseModel):
    path: str = Field(min_length=1, description="A folder or file under the server's import root")
    subsets: list[str] = Field(default_factory=list)


class PipelineRun(BaseModel):
    steps: list[str] | None = None


class ClipListFilter(BaseModel):
    """What the clips list shows of a project: a name search, the batch filters, one batch."""

    name: str = ""
    clip_filter: ClipFilter = Field(default_factory=ClipFilter)
    batch_id: int | None = None


class ClipListQuery(BaseModel):
    """The clips list's URL, as typed: a bad value is reported in the page (never a bare 422)."""

    project: int | None = None
    q: str = ""
    state: str = ""
    subset: str = ""
    tag: str = ""
    batch: str = ""
    before: str = ""
    after: str = ""

    def list_filter(self) -> ClipListFilter:
        try:
            flt = ClipFilterForm(state=self.state, subset=self.subset, tags=self.tag).clip_filter()
        except ValidationError as exc:
            fields = sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]})
            raise Invalid(f"Choose the {' and '.join(fields)} from the list.") from exc
        batch = _whole_number(self.batch, "Batch")
        return ClipListFilter(name=self.q.strip(), clip_filter=flt, batch_id=batch)

    def cursors(self) -> tuple[int | None, int | None]:
        """(before, after): the page is the clips older than ``before`` or newer than ``after``."""
        return _whole_number(self.before, "Page"), _whole_number(self.after, "Page")

    def url(self, **cursor: int | None) -> str:
        """``/clips`` with this filter (empty fields left out) on this page or on ``cursor``'s."""
        fields = self.model_dump(exclude={"before", "after"} if cursor else set())
        params = {k: v for k, v in {**fields, **cursor}.items() if v not in (None, "")}
        return f"/clips?{urlencode(params)}" if params else "/clips"

    @classmethod
    def from_url(cls, url: str) -> ClipListQuery:
        """The list page ``url`` points at (only its known fields: it cannot lead elsewhere)."""
        known = {k: v for k, v in parse_qsl(urlsplit(url).query) if k in cls.model_fields}
        return cls.model_validate(known)


def _whole_number(text: str, what: str) -> int | None:
    if not text.strip():
        return None
    if not text.strip().isdigit():
        raise Invalid(f"{what}: expected a number, got {text.strip()!r}.")
    return int(text)


class BulkForm(BaseModel):
    """A bulk action on the clips selected in the list (the browser's form)."""

    project: int
    action: Literal["retry", "delete", "batch"]
    clip_ids: list[int] = Field(default_factory=list)
    batch_name: str = ""
    confirm: bool = False
    back: str = Field("", description="the list page the action came from, to return to it")


class BulkAction(BaseModel):
    """A bulk action on clips of one project through the API."""

    action: Literal["retry", "delete"]
    clip_ids: list[int] = Field(min_length=1, max_length=1000)


class SourceCreate(BaseModel):
    """A bucket prefix to bring clips in from (the register form and the API body).

    Empty keys leave the standard AWS chain (AWS_* variables, profiles, instance roles) of the
    process that lists and reads the bucket to find credentials."""

    url: str = Field(min_length=1, max_length=1100, description="s3://bucket/prefix/")
    endpoint_url: str = Field("", max_length=500, description="empty for AWS S3")
    region: str = Field("", max_length=64)
    access_key_id: str = Field("", max_length=200)
    secret_access_key: SecretStr = Field(SecretStr(""), description="stored encrypted")


class SourceRead(BaseModel):
    """A registered bucket source as shown back: the secret key only as set or not."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    url: str
    endpoint_url: str
    region: str
    access_key_id: str
    secret_set: bool
    state: SyncState
    error: str | None
    object_count: int
    last_key: str
    last_synced_at: datetime | None
    created_at: datetime
