"""Which clips a user holds: an annotator's access to a clip follows their current assignment."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, exists

from app.batches.models import Assignment, AssignmentState


def holds_clip(user_id: int, clip_id: Any) -> ColumnElement[bool]:
    """SQL: the user holds an assignment on the clip that was not released. An annotator's
    access to a clip (its media, their annotation of it) follows their current assignment:
    work taken back, moved to someone else or whose lease ran out is no longer theirs."""
    return exists().where(
        Assignment.clip_id == clip_id,
        Assignment.annotator_id == user_id,
        Assignment.state != AssignmentState.released,
    )
