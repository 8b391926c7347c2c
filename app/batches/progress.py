"""A batch's progress: assignment states, throughput and median time per clip, per batch
and per annotator, counted from the database (see progress_cache for the cached read)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, func, select, tuple_
from sqlalchemy.orm import Session

from app.auth.models import User
from app.batches.models import Assignment, AssignmentState, Batch, BatchClip
from app.core.db import is_postgresql


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
    handed_out: int  # claimed slots (the column's and the API's name)
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


def count_progress(session: Session, batch: Batch, now: datetime) -> BatchProgress:
    """The batch's progress as the database holds it now (no cache)."""
    clips, gold, overlapped, slots, claimed = session.execute(
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
        handed_out=int(claimed),
        overall=_progress(batch.name, overall_counts, overall),
        annotators=sorted(
            (_progress(names[a], counts[a], timings.get(a, _Timing())) for a in counts),
            key=lambda p: p.label,
        ),
    )
