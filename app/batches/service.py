"""Batches and their pools: a batch built from a clip filter, finding and listing batches,
and the annotators and reviewers in a batch's pool."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, literal, select
from sqlalchemy.orm import Session

from app.auth.models import Role, User
from app.batches.models import Batch, BatchClip, BatchMember
from app.batches.schemas import BatchCreate
from app.clips.filters import ClipFilter, matching_clips
from app.clips.models import Clip
from app.core.errors import Conflict, Invalid, NotFound
from app.projects import service as project_service
from app.projects.models import Project

ANNOTATOR = "annotator"
REVIEWER = "reviewer"


def count_matching(session: Session, project_id: int, flt: ClipFilter) -> int:
    """How many clips a batch built from ``flt`` would hold (the live preview)."""
    project_service.get_project(session, project_id)
    sub = matching_clips(session, project_id, flt).subquery()
    return int(session.scalar(select(func.count()).select_from(sub)) or 0)


def check_clip_ids(session: Session, project: Project, clip_ids: Sequence[int]) -> None:
    """Refuse hand-picked clip ids that are not clips of ``project`` (Invalid, naming them)."""
    if not clip_ids:
        return
    in_project = select(Clip.id).where(Clip.project_id == project.id, Clip.id.in_(clip_ids))
    missing = sorted(set(clip_ids) - set(session.scalars(in_project)))
    if missing:
        shown = ", ".join(map(str, missing[:20]))
        raise Invalid(f"Clips not in project {project.name!r}: {shown}.", field="clip_ids")


def create_batch(session: Session, data: BatchCreate, *, created_by: User | None = None) -> Batch:
    """A batch holding every clip that matches the filter (or the hand-picked clip ids)."""
    project = project_service.get_project(session, data.project_id)
    name = data.name.strip()
    if not name:
        raise Invalid("A batch needs a name.", field="name")
    taken = select(Batch.id).where(Batch.project_id == project.id, Batch.name == name)
    if session.scalar(taken) is not None:
        raise Conflict(
            f"Project {project.name!r} already has a batch named {name!r}.", field="name"
        )
    check_clip_ids(session, project, data.filter.clip_ids)
    batch = Batch(
        project_id=project.id,
        name=name,
        filter=data.filter.model_dump(mode="json", exclude_defaults=True),
        priority=data.priority,
        due_at=data.due_at,
        lease_minutes=data.lease_minutes,
        created_by_id=created_by.id if created_by else None,
    )
    session.add(batch)
    session.flush()
    ids = matching_clips(session, project.id, data.filter).subquery()
    # Claim position is the clip id: clips are claimed in ingest order, gold clips mixed in.
    rows = select(literal(batch.id), ids.c.id, ids.c.id)
    session.execute(insert(BatchClip).from_select(["batch_id", "clip_id", "position"], rows))
    if session.scalar(select(BatchClip.id).where(BatchClip.batch_id == batch.id).limit(1)) is None:
        raise Invalid("No clips match this filter; the batch would be empty.")
    return batch


def get_batch(session: Session, batch_id: int) -> Batch:
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise NotFound(f"No batch {batch_id}.")
    return batch


def find_batch(session: Session, ref: str) -> Batch:
    """A batch by id or by name (names must then be unique across projects)."""
    if ref.isdigit():
        return get_batch(session, int(ref))
    found = list(session.scalars(select(Batch).where(Batch.name == ref).limit(2)))
    if not found:
        raise NotFound(f"No batch named {ref!r}.")
    if len(found) > 1:
        raise Conflict(f"Several batches are named {ref!r}; use the batch id.")
    return found[0]


@dataclass(frozen=True)
class BatchSummary:
    batch: Batch
    project_name: str
    clips: int
    slots: int
    handed_out: int  # claimed slots


def list_batches(session: Session, project_id: int | None = None) -> list[BatchSummary]:
    """Batches with their size and how many of their annotator slots are claimed."""
    query = (
        select(
            Batch,
            Project.name,
            func.count(BatchClip.id),
            func.coalesce(func.sum(BatchClip.required_annotators), 0),
            func.coalesce(func.sum(BatchClip.handed_out), 0),
        )
        .join(Project, Project.id == Batch.project_id)
        .outerjoin(BatchClip, BatchClip.batch_id == Batch.id)
        .group_by(Batch.id, Project.name)
        .order_by(Batch.priority.desc(), Batch.id.desc())
    )
    if project_id is not None:
        query = query.where(Batch.project_id == project_id)
    return [
        BatchSummary(batch=b, project_name=p, clips=n, slots=int(s), handed_out=int(h))
        for b, p, n, s, h in session.execute(query)
    ]


def project_batches(session: Session, project_id: int | None = None) -> list[Batch]:
    """Batches in the same order as :func:`list_batches`, without its per-clip sums (those
    read every clip of every batch; a menu of batches needs none of them)."""
    query = select(Batch).order_by(Batch.priority.desc(), Batch.id.desc())
    if project_id is not None:
        query = query.where(Batch.project_id == project_id)
    return list(session.scalars(query))


@dataclass(frozen=True)
class Member:
    user_id: int
    username: str
    role: str


def list_members(session: Session, batch_id: int) -> list[Member]:
    rows = session.execute(
        select(BatchMember.user_id, User.username, BatchMember.role)
        .join(User, User.id == BatchMember.user_id)
        .where(BatchMember.batch_id == batch_id)
        .order_by(BatchMember.role, User.username)
    )
    return [Member(user_id=u, username=n, role=r) for u, n, r in rows]


def users_by_name(session: Session, names: Sequence[str], roles: Sequence[Role]) -> list[User]:
    """Active users by username, refusing unknown names and users outside ``roles``."""
    wanted = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    users = {u.username: u for u in session.scalars(select(User).where(User.username.in_(wanted)))}
    unknown = [n for n in wanted if n not in users]
    if unknown:
        raise NotFound(f"No user named {', '.join(unknown)}.")
    wrong = [n for n in wanted if users[n].role not in roles or not users[n].is_active]
    if wrong:
        allowed = " or ".join(r.value for r in roles)
        raise Invalid(f"Not an active {allowed}: {', '.join(wrong)}.")
    return [users[n] for n in wanted]


def user_by_name(session: Session, name: str, roles: Sequence[Role]) -> User:
    """One active user by username, as :func:`users_by_name` checks it; a blank name is refused
    (it would otherwise match nobody and raise nothing)."""
    found = users_by_name(session, [name], roles)
    if not found:
        raise Invalid("Give a username.")
    return found[0]
