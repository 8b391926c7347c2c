"""Assignments once made: who holds a clip (and so may see it), moving or taking back
unfinished work, an annotator's own assignments, and a batch's assignments for its admin page."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, case, exists, func, select
from sqlalchemy.orm import Session

from app.auth.models import Role, User
from app.batches.claims import release_slot
from app.batches.models import (
    OPEN_STATES,
    Assignment,
    AssignmentState,
    Batch,
    BatchClip,
    BatchMember,
)
from app.batches.schemas import OwnAssignment
from app.batches.service import ANNOTATOR
from app.clips.models import Clip
from app.core.errors import Conflict, Invalid, NotFound
from app.projects.models import Project


def _locked_assignment(session: Session, assignment_id: int) -> tuple[Assignment, BatchClip]:
    row = session.execute(
        select(Assignment, BatchClip)
        .join(BatchClip, BatchClip.id == Assignment.batch_clip_id)
        .where(Assignment.id == assignment_id)
        .with_for_update()
    ).first()
    if row is None:
        raise NotFound(f"No assignment {assignment_id}.")
    assignment, clip = row
    if assignment.state not in OPEN_STATES:
        raise Invalid(
            f"Assignment {assignment_id} is {assignment.state.value}; only assigned or "
            "in-progress work can be moved."
        )
    return assignment, clip


def unassign(session: Session, assignment_id: int) -> Assignment:
    """Take unfinished work back: the slot returns to the pool (never to the same person)."""
    assignment, clip = _locked_assignment(session, assignment_id)
    release_slot(assignment, clip)
    session.flush()
    return assignment


def reassign(session: Session, assignment_id: int, annotator: User) -> Assignment:
    """Move unfinished work to another annotator; returns the new assignment."""
    if annotator.role != Role.annotator or not annotator.is_active:
        raise Invalid(f"{annotator.username} is not an active annotator.")
    old, clip = _locked_assignment(session, assignment_id)
    had_it = select(Assignment.id).where(
        Assignment.batch_clip_id == clip.id, Assignment.annotator_id == annotator.id
    )
    if session.scalar(had_it) is not None:
        raise Conflict(f"{annotator.username} already had this clip; pick someone else.")
    release_slot(old, clip)
    new = Assignment(
        batch_clip_id=clip.id,
        clip_id=clip.clip_id,
        annotator_id=annotator.id,
        reviewer_id=old.reviewer_id,
    )
    clip.handed_out += 1
    session.add(new)
    session.flush()
    return new


def get_assignment(session: Session, assignment_id: int, viewer: User) -> Assignment:
    """An assignment if ``viewer`` may see it: annotators only their own (others look absent)."""
    assignment = session.get(Assignment, assignment_id)
    if assignment is None or (
        viewer.role == Role.annotator and assignment.annotator_id != viewer.id
    ):
        raise NotFound(f"No assignment {assignment_id}.")
    return assignment


def holds_clip(user_id: int, clip_id: Any) -> ColumnElement[bool]:
    """SQL: the user holds an assignment on the clip that was not released. An annotator's
    access to a clip (its media, their annotation of it) follows their current assignment:
    work taken back, moved to someone else or whose lease ran out is no longer theirs."""
    return exists().where(
        Assignment.clip_id == clip_id,
        Assignment.annotator_id == user_id,
        Assignment.state != AssignmentState.released,
    )


def get_visible_clip(session: Session, user: User, clip_id: int) -> Clip:
    """The clip if ``user`` may see it: staff see all, annotators only clips assigned to them.

    One query either way (the frame endpoint runs it for every frame the editor shows). The
    rule is :func:`holds_clip`: a released assignment (taken back, moved to someone else,
    lease ran out) no longer shows the clip.
    """
    query = select(Clip).where(Clip.id == clip_id)
    if user.role not in (Role.admin, Role.reviewer):
        query = query.where(holds_clip(user.id, Clip.id))
    clip = session.scalar(query)
    if clip is None:  # absent or not theirs: do not reveal clips they were not assigned
        raise NotFound(f"No clip {clip_id}.")
    return clip


def own_assignments(
    session: Session, annotator: User, *, only_id: int | None = None, limit: int = 200
) -> list[OwnAssignment]:
    """The annotator's own assignments: open and rejected first, then the newest."""
    waiting = case(
        (Assignment.state.in_(OPEN_STATES), 0),
        (Assignment.state == AssignmentState.rejected, 1),
        else_=2,
    )
    query = (
        select(Assignment, Batch.id, Batch.name, Clip.filename)
        .join(BatchClip, BatchClip.id == Assignment.batch_clip_id)
        .join(Batch, Batch.id == BatchClip.batch_id)
        .join(Clip, Clip.id == Assignment.clip_id)
        .where(
            Assignment.annotator_id == annotator.id,
            Assignment.state != AssignmentState.released,
        )
        .order_by(waiting, Assignment.id.desc())
        .limit(limit)
    )
    if only_id is not None:
        query = query.where(Assignment.id == only_id)
    return [
        OwnAssignment(
            id=a.id, clip_id=a.clip_id, batch_id=b_id, batch_name=b_name, filename=fname,
            state=a.state, assigned_at=a.assigned_at,
            leased_until=a.leased_until,
        )
        for a, b_id, b_name, fname in session.execute(query)
    ]  # fmt: skip


def rejected_waiting(session: Session, annotator: User) -> int:
    """How many of the annotator's items a reviewer sent back."""
    return int(
        session.scalar(
            select(func.count()).where(
                Assignment.annotator_id == annotator.id,
                Assignment.state == AssignmentState.rejected,
            )
        )
        or 0
    )


def annotator_projects(session: Session, annotator: User) -> list[Project]:
    """Projects the annotator works on (their pools), e.g. to show each caption guide."""
    pools = (
        select(Batch.project_id)
        .join(BatchMember, BatchMember.batch_id == Batch.id)
        .where(BatchMember.user_id == annotator.id, BatchMember.role == ANNOTATOR)
    )
    return list(
        session.scalars(select(Project).where(Project.id.in_(pools)).order_by(Project.name))
    )


def list_assignments(session: Session, batch_id: int, limit: int = 500) -> list[Assignment]:
    """A batch's assignments for its admin page, open ones first, newest first.

    Two index-ordered reads that stop at ``limit`` (open work is few rows in the open-lease
    index; the rest walks the primary key backwards) instead of sorting the whole batch.
    """
    in_batch = exists().where(
        BatchClip.id == Assignment.batch_clip_id, BatchClip.batch_id == batch_id
    )
    newest = select(Assignment).where(in_batch).order_by(Assignment.id.desc())
    found = list(session.scalars(newest.where(Assignment.state.in_(OPEN_STATES)).limit(limit)))
    if len(found) < limit:
        rest = newest.where(Assignment.state.not_in(OPEN_STATES)).limit(limit - len(found))
        found += session.scalars(rest)
    return found
