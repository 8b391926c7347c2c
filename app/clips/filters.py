"""Which clips of a project a filter picks: the filter, its browser form and its SQL.

Batches are built from a filter, exports select by one and the clips list narrows by one; all
three read the clips through :func:`filter_conditions`, so a filter means the same everywhere.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator
from sqlalchemy import ColumnElement, Select, exists, func, not_, or_, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from app.clips.models import Clip, ClipState
from app.core.db import is_postgresql
from app.core.errors import Invalid
from app.projects.models import Subset

_JSON_KEY = re.compile(r"^[\w\-]+$")


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


def _json_key(key: str) -> str:
    if not _JSON_KEY.match(key):
        raise Invalid(f"Tag and flag names may use letters, digits, '_' and '-' only: {key!r}.")
    return key


def filter_conditions(
    session: Session, project_id: int, flt: ClipFilter
) -> list[ColumnElement[bool]]:
    """WHERE clauses for a project's clips matching ``flt``; JSON tests use JSONB operators on
    PostgreSQL, JSON1 on SQLite."""
    conds: list[ColumnElement[bool]] = [Clip.project_id == project_id]
    if is_postgresql(session):
        subsets = type_coerce(Clip.subsets, JSONB)
        tags = type_coerce(Clip.source_tags, JSONB)
        flags = type_coerce(Clip.quality_flags, JSONB)
        if flt.subset:
            conds.append(subsets.contains([flt.subset.value]))
        for key, value in flt.tags.items():
            key = _json_key(key)
            conds.append(or_(tags.contains({key: value}), tags.contains({key: [value]})))
        conds += [flags.has_key(_json_key(f)) for f in flt.with_flags]
        conds += [not_(flags.has_key(_json_key(f))) for f in flt.without_flags]
    else:

        def json_has(column: object, path: str, value: str) -> ColumnElement[bool]:
            each = func.json_each(column, path).table_valued("value")
            return exists().select_from(each).where(each.c.value == value)

        if flt.subset:
            conds.append(json_has(Clip.subsets, "$", flt.subset.value))
        for key, value in flt.tags.items():
            conds.append(json_has(Clip.source_tags, f'$."{_json_key(key)}"', value))

        def flag_type(name: str) -> ColumnElement[str]:
            return func.json_type(Clip.quality_flags, f'$."{_json_key(name)}"')

        conds += [flag_type(f).is_not(None) for f in flt.with_flags]
        conds += [flag_type(f).is_(None) for f in flt.without_flags]
    if flt.state:
        conds.append(Clip.state == flt.state)
    if flt.ingested_from:
        conds.append(Clip.created_at >= datetime.combine(flt.ingested_from, time(), UTC))
    if flt.ingested_to:
        end = datetime.combine(flt.ingested_to, time(), UTC) + timedelta(days=1)
        conds.append(Clip.created_at < end)
    if flt.external_ids:
        conds.append(Clip.external_id.in_(flt.external_ids))
    if flt.clip_ids:
        conds.append(Clip.id.in_(flt.clip_ids))
    return conds


def matching_clips(session: Session, project_id: int, flt: ClipFilter) -> Select[Any]:
    """The ids of a project's clips that match ``flt`` (first ``limit`` by id)."""
    query = select(Clip.id).where(*filter_conditions(session, project_id, flt)).order_by(Clip.id)
    return query.limit(flt.limit) if flt.limit else query
