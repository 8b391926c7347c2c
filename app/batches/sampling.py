"""A batch's assignment configuration: its pool, the overlap sample (clips that k annotators
label) and the gold clips mixed in, all drawn reproducibly from the batch's seed."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.orm import Session

from app.annotations.models import Annotation, NodeStatus
from app.auth.models import Role, User
from app.batches.models import Batch, BatchClip, BatchMember
from app.batches.schemas import AssignConfig
from app.batches.service import ANNOTATOR, REVIEWER, list_members, users_by_name
from app.clips.models import Clip, ClipState
from app.core.errors import Invalid, NotFound

_UPDATE_CHUNK = 5000


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
        # Each added gold clip takes a random regular clip's place in the claim order.
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
