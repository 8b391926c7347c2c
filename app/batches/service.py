"""Batches, their pool of annotators, overlap and gold sampling, and the next-clip queue.

The queue is :func:`next_clip`, the one function the web, the API and the CLI call. It must
never hand a clip to more annotators than it needs, nor the same clip twice to one person,
with many callers at once:

* PostgreSQL: the caller's user row is locked first (``FOR NO KEY UPDATE``: one queue call per
  annotator at a time, so two browser tabs cannot each grab a clip), then a candidate
  ``batch_clip`` row is taken with ``FOR UPDATE SKIP LOCKED`` (concurrent callers step past
  each other's rows instead of waiting), its free slots are recounted under that lock and the
  assignment is inserted before the transaction commits.
* SQLite (embedded mode) has no row locks but serialises writers: the function starts with a
  no-op ``UPDATE``, which takes the database write lock at once (like ``BEGIN IMMEDIATE``), so
  everything it reads afterwards stays true until the caller commits.

``BatchClip.handed_out`` counts a clip's assignments that are not released; the partial index
``ix_batch_clip_open_slots`` holds only clips with a free slot, so the scan for the next clip
skips everything already handed out however far the batch has progressed.
"""

from __future__ import annotations

import logging
import random
import re
import statistics
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from time import monotonic
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    Table,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from app.annotations.models import Annotation, NodeStatus
from app.auth.models import Role, User
from app.batches.models import Assignment, AssignmentState, Batch, BatchClip, BatchMember
from app.batches.schemas import AssignConfig, BatchCreate, ClipFilter
from app.clips.models import Clip, ClipState
from app.core.db import is_postgresql, session_scope, utcnow
from app.core.errors import Conflict, Invalid, NotFound
from app.projects import service as project_service
from app.projects.models import Project

log = logging.getLogger(__name__)

OPEN_STATES = (AssignmentState.assigned, AssignmentState.in_progress)
ANNOTATOR = "annotator"
REVIEWER = "reviewer"
EXPIRED_SWEEP_LIMIT = 50
SWEEP_EVERY = timedelta(seconds=15)
_UPDATE_CHUNK = 5000
_JSON_KEY = re.compile(r"^[\w\-]+$")


# --- filters ------------------------------------------------------------------------------


def _json_key(key: str) -> str:
    if not _JSON_KEY.match(key):
        raise Invalid(f"Tag and flag names may use letters, digits, '_' and '-' only: {key!r}.")
    return key


def _filter_conditions(
    postgres: bool, project_id: int, flt: ClipFilter
) -> list[ColumnElement[bool]]:
    """WHERE clauses for ``flt``; JSON tests use JSONB operators on PostgreSQL, JSON1 on SQLite."""
    conds: list[ColumnElement[bool]] = [Clip.project_id == project_id]
    if postgres:
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


def filter_conditions(
    session: Session, project_id: int, flt: ClipFilter
) -> list[ColumnElement[bool]]:
    """WHERE clauses for a project's clips matching ``flt`` (the clips list filters with them)."""
    return _filter_conditions(is_postgresql(session), project_id, flt)


def matching_clips(session: Session, project_id: int, flt: ClipFilter) -> Select[Any]:
    """The ids of a project's clips that match ``flt`` (first ``limit`` by id)."""
    query = (
        select(Clip.id)
        .where(*_filter_conditions(is_postgresql(session), project_id, flt))
        .order_by(Clip.id)
    )
    return query.limit(flt.limit) if flt.limit else query


def count_matching(session: Session, project_id: int, flt: ClipFilter) -> int:
    """How many clips a batch built from ``flt`` would hold (the live preview)."""
    project_service.get_project(session, project_id)
    sub = matching_clips(session, project_id, flt).subquery()
    return int(session.scalar(select(func.count()).select_from(sub)) or 0)


# --- batches ------------------------------------------------------------------------------


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
    # Queue position is the clip id: clips are served in ingest order, gold clips slot in.
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
    handed_out: int


def list_batches(session: Session, project_id: int | None = None) -> list[BatchSummary]:
    """Batches with their size and how many annotator slots are handed out."""
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


# --- assignment configuration: pool, overlap, gold ----------------------------------------


@dataclass(frozen=True)
class AssignResult:
    annotators: int  # annotators in the pool after the change
    reviewers: int
    overlapped: int  # clips that need overlap_k annotators
    gold: int  # gold clips in the batch
    gold_shortfall: int  # gold clips wanted but not available (too few approved clips)


def _add_members(session: Session, batch_id: int, users: Sequence[User], role: str) -> None:
    present = set(
        session.scalars(
            select(BatchMember.user_id).where(
                BatchMember.batch_id == batch_id, BatchMember.role == role
            )
        )
    )
    for user in users:
        if user.id not in present:
            session.add(BatchMember(batch_id=batch_id, user_id=user.id, role=role))
    session.flush()


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), _UPDATE_CHUNK):
        yield ids[start : start + _UPDATE_CHUNK]


def _gold_candidates(session: Session, batch: Batch) -> list[int]:
    """Ready clips of the project with approved truth (an approved primary annotation)."""
    approved = exists().where(
        Annotation.clip_id == Clip.id,
        Annotation.is_primary.is_(True),
        Annotation.status == NodeStatus.approved,
    )
    already_gold = select(BatchClip.clip_id).where(
        BatchClip.batch_id == batch.id, BatchClip.is_gold.is_(True)
    )
    return list(
        session.scalars(
            select(Clip.id)
            .where(
                Clip.project_id == batch.project_id,
                Clip.state == ClipState.ready,
                approved,
                Clip.id.not_in(already_gold),
            )
            .order_by(Clip.id)
        )
    )


def _mix_gold(session: Session, batch: Batch, pct: float, seed: int) -> tuple[int, int]:
    """Bring the batch's gold clips up to ``pct`` % of its regular clips; (gold, shortfall)."""
    rng = random.Random(f"{seed}:gold")
    counts = session.execute(
        select(BatchClip.is_gold, func.count()).where(BatchClip.batch_id == batch.id)
        .group_by(BatchClip.is_gold)
    ).all()  # fmt: skip
    by_kind = {bool(g): int(n) for g, n in counts}
    gold, regular = by_kind.get(True, 0), by_kind.get(False, 0)
    need = round(regular * pct / 100) - gold
    if need <= 0:
        return gold, 0
    candidates = _gold_candidates(session, batch)
    chosen = rng.sample(candidates, min(need, len(candidates)))
    in_batch = set(
        session.scalars(
            select(BatchClip.clip_id).where(
                BatchClip.batch_id == batch.id, BatchClip.clip_id.in_(chosen)
            )
        )
    )
    if in_batch:
        session.execute(
            update(BatchClip)
            .where(BatchClip.batch_id == batch.id, BatchClip.clip_id.in_(in_batch))
            .values(is_gold=True, required_annotators=1)
            .execution_options(synchronize_session=False)
        )
    positions = list(
        session.scalars(
            select(BatchClip.position)
            .where(BatchClip.batch_id == batch.id, BatchClip.is_gold.is_(False))
            .order_by(BatchClip.id)
        )
    )
    added = [c for c in chosen if c not in in_batch]
    if added and positions:
        # Each added gold clip takes a random regular clip's place in the queue order.
        session.execute(
            insert(BatchClip),
            [
                {"batch_id": batch.id, "clip_id": c, "is_gold": True,
                 "required_annotators": 1, "position": rng.choice(positions)}
                for c in added
            ],
        )  # fmt: skip
    return gold + len(chosen), need - len(chosen)


def _sample_overlap(session: Session, batch: Batch, k: int, pct: float, seed: int) -> int:
    """k annotators on a seeded ``pct`` % sample of the regular clips, 1 on the rest."""
    rng = random.Random(f"{seed}:overlap")
    ids = list(
        session.scalars(
            select(BatchClip.id)
            .where(BatchClip.batch_id == batch.id, BatchClip.is_gold.is_(False))
            .order_by(BatchClip.id)
        )
    )
    chosen = sorted(rng.sample(ids, round(len(ids) * pct / 100))) if k > 1 else []
    session.execute(
        update(BatchClip)
        .where(BatchClip.batch_id == batch.id)
        .values(required_annotators=1)
        .execution_options(synchronize_session=False)
    )
    for chunk in _chunks(chosen):
        session.execute(
            update(BatchClip)
            .where(BatchClip.id.in_(chunk))
            .values(required_annotators=k)
            .execution_options(synchronize_session=False)
        )
    return len(chosen)


def assign_batch(session: Session, batch_id: int, config: AssignConfig) -> AssignResult:
    """Add annotators and reviewers to the batch's pool and (re)draw the overlap and gold
    samples; the same seed on the same batch gives the same samples."""
    batch = session.scalar(select(Batch).where(Batch.id == batch_id).with_for_update())
    if batch is None:
        raise NotFound(f"No batch {batch_id}.")
    annotators = users_by_name(session, config.annotators, [Role.annotator])
    reviewers = users_by_name(session, config.reviewers, [Role.reviewer, Role.admin])
    _add_members(session, batch.id, annotators, ANNOTATOR)
    _add_members(session, batch.id, reviewers, REVIEWER)
    members = list_members(session, batch.id)
    pool = sum(1 for m in members if m.role == ANNOTATOR)
    if config.overlap_k > 1 and config.overlap_pct > 0 and pool < config.overlap_k:
        raise Invalid(
            f"Overlap needs {config.overlap_k} annotators per clip but the pool has {pool}; "
            "add annotators or lower k."
        )
    batch.overlap_k, batch.overlap_pct = config.overlap_k, config.overlap_pct
    batch.gold_pct, batch.seed = config.gold_pct, config.seed
    gold, shortfall = _mix_gold(session, batch, config.gold_pct, config.seed)
    overlapped = _sample_overlap(session, batch, config.overlap_k, config.overlap_pct, config.seed)
    session.flush()
    return AssignResult(
        annotators=pool,
        reviewers=len(members) - pool,
        overlapped=overlapped,
        gold=gold,
        gold_shortfall=shortfall,
    )


# --- the queue ----------------------------------------------------------------------------


_LOCK_CALLER = select(User.id).where(User.id == bindparam("caller")).with_for_update(key_share=True)


def _serialise_caller(session: Session, annotator_id: int) -> None:
    if is_postgresql(session):
        session.execute(_LOCK_CALLER, {"caller": annotator_id})
    else:  # a no-op write takes SQLite's database write lock now (BEGIN IMMEDIATE-like)
        session.execute(
            update(User)
            .where(User.id == annotator_id)
            .values(id=User.id)
            .execution_options(synchronize_session=False)
        )


def _release(assignment: Assignment, clip: BatchClip) -> None:
    assignment.state = AssignmentState.released
    assignment.leased_until = None
    clip.handed_out = max(0, clip.handed_out - 1)


def release_expired(
    session: Session, *, now: datetime | None = None, limit: int | None = None
) -> int:
    """Release open assignments whose lease ran out, freeing their slot for someone else.

    Rows another transaction holds are skipped (a later sweep gets them), so the queue never
    waits here. Returns how many were released.
    """
    now = now or utcnow()
    query = (
        select(Assignment, BatchClip)
        .join(BatchClip, BatchClip.id == Assignment.batch_clip_id)
        .where(Assignment.state.in_(OPEN_STATES), Assignment.leased_until < now)
        .order_by(Assignment.id)
        .with_for_update(skip_locked=True)
    )
    if limit:
        query = query.limit(limit)
    rows = session.execute(query).all()
    for assignment, clip in rows:
        _release(assignment, clip)
    session.flush()
    return len(rows)


def _resume_query(in_batch: bool) -> Select[Assignment, int]:
    query = (
        select(Assignment, Batch.lease_minutes)
        .join(BatchClip, BatchClip.id == Assignment.batch_clip_id)
        .join(Batch, Batch.id == BatchClip.batch_id)
        .where(
            Assignment.annotator_id == bindparam("annotator"),
            Assignment.state.in_(OPEN_STATES),
            or_(Assignment.leased_until.is_(None), Assignment.leased_until >= bindparam("now")),
        )
        .order_by(Assignment.id)
        .limit(1)
    )
    return query.where(BatchClip.batch_id == bindparam("batch")) if in_batch else query


def _queue_batches_query(in_batch: bool) -> Select[Batch]:
    query = (
        select(Batch)
        .join(BatchMember, BatchMember.batch_id == Batch.id)
        .where(BatchMember.user_id == bindparam("annotator"), BatchMember.role == ANNOTATOR)
        .order_by(Batch.priority.desc(), Batch.due_at.asc().nulls_last(), Batch.id)
    )
    return query.where(Batch.id == bindparam("batch")) if in_batch else query


_RESUME = {flag: _resume_query(flag) for flag in (False, True)}
_QUEUE_BATCHES = {flag: _queue_batches_query(flag) for flag in (False, True)}


def _resume(
    session: Session, annotator_id: int, batch_id: int | None, now: datetime
) -> Assignment | None:
    """The caller's unfinished assignment with a valid (or not yet started) lease, renewed."""
    params = {"annotator": annotator_id, "now": now, "batch": batch_id}
    row = session.execute(_RESUME[batch_id is not None], params).first()
    if row is None:
        return None
    assignment, minutes = row
    assignment.leased_until = now + timedelta(minutes=minutes)
    return assignment


def _queue_batches(session: Session, annotator_id: int, batch_id: int | None) -> list[Batch]:
    """Batches whose pool the annotator is in, in queue order: priority, due date, age."""
    params = {"annotator": annotator_id, "batch": batch_id}
    return list(session.scalars(_QUEUE_BATCHES[batch_id is not None], params))


def _active_and_reviewer() -> tuple[Any, Any]:
    """For a claimed clip (``:bc_id``, ``:clip_batch``): how many of its assignments are not
    released, and its reviewer (the batch's reviewers by id, taken round-robin by batch_clip
    id); two scalar subqueries."""
    active = (
        select(func.count())
        .where(
            Assignment.batch_clip_id == bindparam("bc_id"),
            Assignment.state != AssignmentState.released,
        )
        .scalar_subquery()
    )
    ranked = (
        select(
            BatchMember.user_id,
            (func.row_number().over(order_by=BatchMember.user_id) - 1).label("rank"),
            func.count().over().label("n"),
        )
        .where(BatchMember.batch_id == bindparam("clip_batch"), BatchMember.role == REVIEWER)
        .subquery()
    )
    reviewer = (
        select(ranked.c.user_id)
        .where(ranked.c.rank == bindparam("bc_id") % ranked.c.n)
        .scalar_subquery()
    )
    return active, reviewer


def _next_open_clip() -> Select[int, int]:
    """Lock the first clip of ``:claim_batch`` with a free slot that ``:annotator`` never had."""
    done_before = exists().where(
        Assignment.batch_clip_id == BatchClip.id,
        Assignment.annotator_id == bindparam("annotator"),
    )
    return (
        select(BatchClip.id, BatchClip.clip_id)
        .join(Clip, Clip.id == BatchClip.clip_id)
        .where(
            BatchClip.batch_id == bindparam("claim_batch"),
            BatchClip.handed_out < BatchClip.required_annotators,
            Clip.state == ClipState.ready,
            ~done_before,
        )
        .order_by(BatchClip.position, BatchClip.id)
        .limit(1)
        .with_for_update(of=BatchClip, skip_locked=True)
    )


def _seat_in_one_statement() -> Any:
    """PostgreSQL: for the slot locked just before (``:bc_id``), recount its assignments,
    correct its counter and insert ``:annotator``'s assignment if a seat is still free, in one
    statement returning the new assignment (none when the counter was stale).

    It must be a statement of its own after the lock: its snapshot then sees every assignment
    committed before the lock was granted (the recount is the rule, the counter a filter)."""
    active, reviewer = _active_and_reviewer()
    counted = (
        select(
            BatchClip.id,
            BatchClip.clip_id,
            (active < BatchClip.required_annotators).label("free"),
            active.label("active"),
            reviewer.label("reviewer_id"),
        )
        .where(BatchClip.id == bindparam("bc_id"))
        .cte("counted")
    )
    bump = (
        update(BatchClip)
        .where(BatchClip.id == counted.c.id)
        .values(handed_out=counted.c.active + case((counted.c.free, 1), else_=0))
        .cte("bump")
    )
    seat = select(
        counted.c.id,
        counted.c.clip_id,
        bindparam("annotator"),
        counted.c.reviewer_id,
        literal(AssignmentState.assigned.value),
        bindparam("lease", type_=Assignment.leased_until.type),
        bindparam("now", type_=Assignment.assigned_at.type),
    ).where(counted.c.free)
    columns = [
        "batch_clip_id",
        "clip_id",
        "annotator_id",
        "reviewer_id",
        "state",
        "leased_until",
        "assigned_at",
    ]
    table = cast(Table, Assignment.__table__)
    seated = insert(table).from_select(columns, seat).add_cte(bump).returning(*table.c)
    # A Core INSERT read back as ORM objects (an ORM insert would take the bind parameters
    # for rows to insert).
    return select(Assignment).from_statement(seated)


# Built once: the queue runs these on every call, and building them costs more than running.
_ACTIVE_AND_REVIEWER = select(*_active_and_reviewer())
_NEXT_OPEN_CLIP = _next_open_clip()
_SEAT = _seat_in_one_statement()


def _seat(
    session: Session,
    slot: Row[int, int],
    batch: Batch,
    annotator_id: int,
    lease_until: datetime | None,
) -> Assignment | None:
    """Give the locked ``slot`` to the annotator if its recount leaves a seat free."""
    params = {"bc_id": slot.id, "clip_batch": batch.id, "annotator": annotator_id}
    if is_postgresql(session):
        found = session.scalars(_SEAT, {**params, "lease": lease_until, "now": utcnow()})
        assignment = found.one_or_none()
        held = session.identity_map.get(session.identity_key(BatchClip, slot.id))
        if held is not None:  # the statement rewrote its counter behind the ORM's back
            session.expire(held, ["handed_out"])
        return assignment
    active, reviewer_id = session.execute(_ACTIVE_AND_REVIEWER, params).one()
    clip = session.get_one(BatchClip, slot.id)
    clip.handed_out = int(active or 0)
    if clip.handed_out >= clip.required_annotators:
        session.flush()  # the counter was stale; it is corrected and the clip leaves the index
        return None
    assignment = Assignment(
        batch_clip_id=slot.id,
        clip_id=slot.clip_id,
        annotator_id=annotator_id,
        reviewer_id=reviewer_id,
        leased_until=lease_until,
    )
    clip.handed_out += 1
    session.add(assignment)
    session.flush()
    return assignment


def _claim(
    session: Session, batch: Batch, annotator_id: int, lease_until: datetime | None
) -> Assignment | None:
    """Lock the batch's next clip with a free slot this annotator never had; assign it."""
    params = {"claim_batch": batch.id, "annotator": annotator_id}
    while (slot := session.execute(_NEXT_OPEN_CLIP, params).first()) is not None:
        assignment = _seat(session, slot, batch, annotator_id, lease_until)
        if assignment is not None:
            return assignment
    return None


def next_clip(
    session: Session,
    annotator: User,
    *,
    batch_id: int | None = None,
    now: datetime | None = None,
) -> Assignment | None:
    """The annotator's next assignment: their unfinished one (lease renewed) or a new clip
    from the batches whose pool they are in; None when nothing is waiting.

    The caller's transaction must commit promptly: the locks it takes end there.
    """
    now = now or utcnow()
    _serialise_caller(session, annotator.id)
    swept = _sweep_due(now)
    if swept:
        release_expired(session, now=now, limit=EXPIRED_SWEEP_LIMIT)
    resumed = _resume(session, annotator.id, batch_id, now)
    if resumed is not None:
        session.flush()
        return resumed
    batches = _queue_batches(session, annotator.id, batch_id)
    found = _claim_first(session, batches, annotator.id, now)
    # Nothing open: abandoned slots may be all that is left, so sweep now and look again.
    if found is None and not swept and release_expired(session, now=now):
        found = _claim_first(session, batches, annotator.id, now)
    return found


def _claim_first(
    session: Session, batches: Sequence[Batch], annotator_id: int, now: datetime
) -> Assignment | None:
    for batch in batches:
        lease = now + timedelta(minutes=batch.lease_minutes)
        assignment = _claim(session, batch, annotator_id, lease)
        if assignment is not None:
            return assignment
    return None


_sweep_lock = threading.Lock()
_last_sweep: datetime | None = None


def _sweep_due(now: datetime) -> bool:
    """Whether this process should sweep expired leases on this call: at most once per
    ``SWEEP_EVERY`` of ``now`` (leases last minutes, so a few seconds' delay frees no slot
    late; every call would cost each queue request a locking query)."""
    global _last_sweep
    with _sweep_lock:
        if _last_sweep is not None and abs(now - _last_sweep) < SWEEP_EVERY:
            return False
        _last_sweep = now
        return True


def assign_clips(session: Session, batch_id: int, annotator: User, count: int) -> list[Assignment]:
    """Named assignment: hand ``count`` clips of the batch to ``annotator`` now (same rules as
    the queue; membership not needed). The lease starts when they open the clip."""
    if annotator.role != Role.annotator:
        raise Invalid(f"{annotator.username} is not an annotator.")
    batch = get_batch(session, batch_id)
    _serialise_caller(session, annotator.id)
    handed: list[Assignment] = []
    while len(handed) < count and (found := _claim(session, batch, annotator.id, None)):
        handed.append(found)
    return handed


# --- reassign, unassign, ownership --------------------------------------------------------


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
    _release(assignment, clip)
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
    _release(old, clip)
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


@dataclass(frozen=True)
class QueueEntry:
    """One of an annotator's assignments, as their queue shows it (no gold flag)."""

    id: int
    clip_id: int
    batch_id: int
    batch_name: str
    filename: str
    state: AssignmentState
    leased_until: datetime | None
    assigned_at: datetime

    @property
    def url(self) -> str:
        return f"/annotate/{self.id}"


def queue_entries(
    session: Session, annotator: User, *, only_id: int | None = None, limit: int = 200
) -> list[QueueEntry]:
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
        QueueEntry(
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


# --- progress -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    label: str
    counts: dict[str, int]
    submitted_last_hour: int
    median_seconds: float | None

    @property
    def total(self) -> int:
        return sum(v for k, v in self.counts.items() if k != AssignmentState.released.value)


@dataclass(frozen=True)
class BatchProgress:
    batch_id: int
    clips: int
    gold_clips: int
    overlapped_clips: int
    slots: int
    handed_out: int
    overall: Progress
    annotators: list[Progress] = field(default_factory=list)


@dataclass(frozen=True)
class _Timing:
    median_seconds: float | None = None
    submitted_last_hour: int = 0


def _progress(label: str, counts: Mapping[str, int], timing: _Timing) -> Progress:
    return Progress(
        label=label,
        counts={s.value: int(counts.get(s.value, 0)) for s in AssignmentState},
        submitted_last_hour=timing.submitted_last_hour,
        median_seconds=timing.median_seconds,
    )


def _timings(
    session: Session, in_batch: ColumnElement[bool], now: datetime
) -> tuple[dict[int, _Timing], _Timing]:
    """Median time per clip (submitted minus started, or assigned when it was never opened)
    and submissions in the last hour, per annotator and overall.

    PostgreSQL aggregates in SQL (``percentile_cont``): a large batch's thousands of rows never
    reach Python, whose work would hold the web process's GIL. SQLite (embedded, small) has no
    percentile function: there the rows are rolled up here."""
    hour_ago = now - timedelta(hours=1)
    started = func.coalesce(Assignment.started_at, Assignment.assigned_at)
    submitted = and_(in_batch, Assignment.submitted_at.is_not(None))
    if is_postgresql(session):
        seconds = func.extract("epoch", Assignment.submitted_at - started)
        median = func.percentile_cont(0.5).within_group(seconds)
        recent = func.count().filter(Assignment.submitted_at >= hour_ago)
        # One scan for both: per annotator, and the empty grouping set (everyone), whose
        # annotator_id is NULL (a column that is never NULL in the rows themselves).
        by_annotator_and_overall = func.grouping_sets(tuple_(Assignment.annotator_id), tuple_())
        rows = session.execute(
            select(Assignment.annotator_id, median, recent)
            .select_from(Assignment)
            .join(BatchClip, submitted)
            .group_by(by_annotator_and_overall)
        ).all()
        per = {a: _Timing(None if m is None else float(m), int(n)) for a, m, n in rows}
        return per, per.pop(None, _Timing())
    rows = session.execute(
        select(Assignment.annotator_id, started, Assignment.submitted_at).join(BatchClip, submitted)
    ).all()
    by_annotator: dict[int, list[tuple[datetime, datetime]]] = {}
    for annotator_id, start, end in rows:
        if end is not None:  # the WHERE says so; the column type does not
            by_annotator.setdefault(annotator_id, []).append((start, end))

    def roll_up(spans: list[tuple[datetime, datetime]]) -> _Timing:
        seconds = [(end - start).total_seconds() for start, end in spans]
        recent = sum(1 for _, end in spans if end >= hour_ago)
        return _Timing(statistics.median(seconds) if seconds else None, recent)

    everyone = [span for spans in by_annotator.values() for span in spans]
    return {a: roll_up(spans) for a, spans in by_annotator.items()}, roll_up(everyone)


# Progress of a very large batch reads every clip and assignment of it (about a second at 400k
# clips), so each process reuses it; small batches are always live. Older than FRESH, the
# cached value is still shown while a background thread recomputes it (no request waits for
# the recount); older than STALE_MAX (nobody looked for a while), the request recomputes.
PROGRESS_CACHE_CLIPS = 50_000
PROGRESS_FRESH_SECONDS = 15.0
PROGRESS_STALE_MAX_SECONDS = 300.0
_progress_cache: dict[int, tuple[float, BatchProgress]] = {}
_progress_refreshing: set[int] = set()
_progress_lock = threading.Lock()


def batch_progress(session: Session, batch_id: int, now: datetime | None = None) -> BatchProgress:
    """Per batch and per annotator: assignment states, throughput and median time per clip
    (batches of ``PROGRESS_CACHE_CLIPS`` clips or more: up to ``PROGRESS_FRESH_SECONDS`` old,
    or a little older while a recount runs)."""
    batch = get_batch(session, batch_id)
    cached = _progress_cache.get(batch.id)
    if now is None and cached:
        age = monotonic() - cached[0]
        if age < PROGRESS_FRESH_SECONDS:
            return cached[1]
        if age < PROGRESS_STALE_MAX_SECONDS:
            _recount_in_background(batch.id)
            return cached[1]
    progress = _batch_progress(session, batch, now or utcnow())
    if progress.clips >= PROGRESS_CACHE_CLIPS:
        _progress_cache[batch.id] = (monotonic(), progress)
    return progress


def _recount_in_background(batch_id: int) -> None:
    """Recompute a cached batch's progress on a thread with its own session (one at a time
    per batch and process)."""
    with _progress_lock:
        if batch_id in _progress_refreshing:
            return
        _progress_refreshing.add(batch_id)

    def recount() -> None:
        try:
            with session_scope() as session:
                batch = get_batch(session, batch_id)
                progress = _batch_progress(session, batch, utcnow())
            _progress_cache[batch_id] = (monotonic(), progress)
        except Exception:  # the stale value stays; the next view tries again
            log.exception("recounting the progress of batch %s failed", batch_id)
        finally:
            with _progress_lock:
                _progress_refreshing.discard(batch_id)

    threading.Thread(target=recount, name=f"batch-progress-{batch_id}", daemon=True).start()


def _batch_progress(session: Session, batch: Batch, now: datetime) -> BatchProgress:
    clips, gold, overlapped, slots, handed = session.execute(
        select(
            func.count(BatchClip.id),
            func.coalesce(func.sum(case((BatchClip.is_gold, 1), else_=0)), 0),
            func.coalesce(func.sum(case((BatchClip.required_annotators > 1, 1), else_=0)), 0),
            func.coalesce(func.sum(BatchClip.required_annotators), 0),
            func.coalesce(func.sum(BatchClip.handed_out), 0),
        ).where(BatchClip.batch_id == batch.id)
    ).one()
    in_batch = and_(BatchClip.id == Assignment.batch_clip_id, BatchClip.batch_id == batch.id)
    per_state = session.execute(
        select(Assignment.annotator_id, Assignment.state, func.count())
        .join(BatchClip, in_batch)
        .group_by(Assignment.annotator_id, Assignment.state)
    ).all()
    names = dict(
        session.execute(
            select(User.id, User.username).where(User.id.in_({a for a, _, _ in per_state}))
        ).all()
    )
    counts: dict[int, dict[str, int]] = {}
    for annotator_id, state, n in per_state:
        counts.setdefault(annotator_id, {})[state.value] = n
    overall_counts: dict[str, int] = {}
    for per in counts.values():
        for name, n in per.items():
            overall_counts[name] = overall_counts.get(name, 0) + n
    timings, overall = _timings(session, in_batch, now)
    return BatchProgress(
        batch_id=batch.id,
        clips=int(clips),
        gold_clips=int(gold),
        overlapped_clips=int(overlapped),
        slots=int(slots),
        handed_out=int(handed),
        overall=_progress(batch.name, overall_counts, overall),
        annotators=sorted(
            (_progress(names[a], counts[a], timings.get(a, _Timing())) for a in counts),
            key=lambda p: p.label,
        ),
    )
