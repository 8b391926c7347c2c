"""Claiming the next clip: an annotator takes a slot of a batch clip (a lease on it), or the
admin claims slots for a named annotator; abandoned leases are swept back into the pool.

:func:`next_clip` is the one function the web, the API and the CLI call. It must never let
more annotators claim a clip than it needs, nor one person claim the same clip twice, with
many callers at once:

* PostgreSQL: the caller's user row is locked first (``FOR NO KEY UPDATE``: one claim per
  annotator at a time, so two browser tabs cannot each claim a clip), then a candidate
  ``batch_clip`` row is taken with ``FOR UPDATE SKIP LOCKED`` (concurrent callers step past
  each other's rows instead of waiting), its free slots are recounted under that lock and the
  assignment is inserted before the transaction commits.
* SQLite (embedded mode) has no row locks but serialises writers: the function starts with a
  no-op ``UPDATE``, which takes the database write lock at once (like ``BEGIN IMMEDIATE``), so
  everything it reads afterwards stays true until the caller commits.

``BatchClip.handed_out`` counts a clip's claimed slots (assignments that are not released); the
partial index ``ix_batch_clip_open_slots`` holds only clips with a free slot, so the scan for
the next clip skips every fully claimed clip however far the batch has progressed.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Row,
    Select,
    Table,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from app.auth.models import Role, User
from app.batches.models import (
    OPEN_STATES,
    Assignment,
    AssignmentState,
    Batch,
    BatchClip,
    BatchMember,
)
from app.batches.service import ANNOTATOR, REVIEWER, get_batch
from app.clips.models import Clip, ClipState
from app.core.db import is_postgresql, utcnow
from app.core.errors import Invalid

EXPIRED_SWEEP_LIMIT = 50
SWEEP_EVERY = timedelta(seconds=15)


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


def release_slot(assignment: Assignment, clip: BatchClip) -> None:
    """End the assignment and free its slot for someone else (never the same person)."""
    assignment.state = AssignmentState.released
    assignment.leased_until = None
    clip.handed_out = max(0, clip.handed_out - 1)


def release_expired(
    session: Session, *, now: datetime | None = None, limit: int | None = None
) -> int:
    """Release open assignments whose lease ran out, freeing their slot for someone else.

    Rows another transaction holds are skipped (a later sweep gets them), so a claim never
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
        release_slot(assignment, clip)
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


def _pool_batches_query(in_batch: bool) -> Select[Batch]:
    query = (
        select(Batch)
        .join(BatchMember, BatchMember.batch_id == Batch.id)
        .where(BatchMember.user_id == bindparam("annotator"), BatchMember.role == ANNOTATOR)
        .order_by(Batch.priority.desc(), Batch.due_at.asc().nulls_last(), Batch.id)
    )
    return query.where(Batch.id == bindparam("batch")) if in_batch else query


_RESUME = {flag: _resume_query(flag) for flag in (False, True)}
_POOL_BATCHES = {flag: _pool_batches_query(flag) for flag in (False, True)}


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


def _pool_batches(session: Session, annotator_id: int, batch_id: int | None) -> list[Batch]:
    """Batches whose pool the annotator is in, in claim order: priority, due date, age."""
    params = {"annotator": annotator_id, "batch": batch_id}
    return list(session.scalars(_POOL_BATCHES[batch_id is not None], params))


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


def _claim_in_one_statement() -> Any:
    """PostgreSQL: for the slot locked just before (``:bc_id``), recount its assignments,
    correct its counter and insert ``:annotator``'s assignment if a slot is still free, in one
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
    claim = select(
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
    claimed = insert(table).from_select(columns, claim).add_cte(bump).returning(*table.c)
    # A Core INSERT read back as ORM objects (an ORM insert would take the bind parameters
    # for rows to insert).
    return select(Assignment).from_statement(claimed)


# Built once: every claim runs these, and building them costs more than running.
_ACTIVE_AND_REVIEWER = select(*_active_and_reviewer())
_NEXT_OPEN_CLIP = _next_open_clip()
_CLAIM_STATEMENT = _claim_in_one_statement()


def _take_slot(
    session: Session,
    slot: Row[int, int],
    batch: Batch,
    annotator_id: int,
    lease_until: datetime | None,
) -> Assignment | None:
    """Claim the locked ``slot`` for the annotator if its recount leaves it free."""
    params = {"bc_id": slot.id, "clip_batch": batch.id, "annotator": annotator_id}
    if is_postgresql(session):
        claim_params = {**params, "lease": lease_until, "now": utcnow()}
        found = session.scalars(_CLAIM_STATEMENT, claim_params)
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
    """Lock the batch's next clip with a free slot this annotator never had; claim it."""
    params = {"claim_batch": batch.id, "annotator": annotator_id}
    while (slot := session.execute(_NEXT_OPEN_CLIP, params).first()) is not None:
        assignment = _take_slot(session, slot, batch, annotator_id, lease_until)
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
    batches = _pool_batches(session, annotator.id, batch_id)
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
    late; every call would cost each claim a locking query)."""
    global _last_sweep
    with _sweep_lock:
        if _last_sweep is not None and abs(now - _last_sweep) < SWEEP_EVERY:
            return False
        _last_sweep = now
        return True


def assign_clips(session: Session, batch_id: int, annotator: User, count: int) -> list[Assignment]:
    """Named assignment: claim ``count`` slots of the batch for ``annotator`` now (same rules
    as :func:`next_clip`; membership not needed). The lease starts when they open the clip."""
    if annotator.role != Role.annotator:
        raise Invalid(f"{annotator.username} is not an annotator.")
    batch = get_batch(session, batch_id)
    _serialise_caller(session, annotator.id)
    claimed: list[Assignment] = []
    while len(claimed) < count and (found := _claim(session, batch, annotator.id, None)):
        claimed.append(found)
    return claimed
