"""Agreement recompute: when a person submits or a reviewer approves, the clip's scores are
recomputed (a broker task) and the project's rollups after them.

``recompute_clip`` is idempotent: it replaces every AgreementScore row of the clip with the
scores of the annotations as they are now (their versions are stored on each row), then
queues the project's rollups. Which annotations take part:

* humans: every ``human`` annotation of the clip that is submitted or approved;
* model: the clip's model draft (``against="model"``);
* gold: on a clip some batch marks gold, the clip's approved primary annotation is the
  reference (``against="gold"``); it takes no part in the human pairs.

Rollups (AgreementRollup) hold the mean of each level and metric per project, batch and
annotator; a metric measured against the model or gold is stored as ``metric@model`` /
``metric@gold``. An annotator's rollup counts the human pairs they are in and their own rows
against model and gold, never the gold's author.

Dashboard reads of the stored scores live in :mod:`app.agreement.dashboard`; the adjudication
list in :mod:`app.agreement.adjudication_list`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, union_all
from sqlalchemy.orm import Session

from app.agreement.compare import ScoreRow, compare_clip
from app.agreement.models import AgreementRollup, AgreementScore
from app.agreement.versions import SigmaResolver, annotation_view, gold_reference, human_versions
from app.annotations.models import (
    Annotation,
    AnnotationKind,
)
from app.batches.models import Batch, BatchClip
from app.clips.models import Clip
from app.core.db import utcnow
from app.core.errors import NotFound
from app.core.jobs import enqueue
from app.projects.models import Project

RECOMPUTE_TASK = "cellabel.agreement.recompute_clip"
ROLLUP_TASK = "cellabel.agreement.recompute_rollups"
CLIP_SCORE = ("clip", "adjudication_score")


# ---------------------------------------------------------------- hooks for submit / approve


def _agreement_batch_clip(session: Session, clip_id: int) -> BatchClip | None:
    """The newest batch entry that overlaps the clip (k > 1) or uses it as gold."""
    return session.scalar(
        select(BatchClip)
        .where(
            BatchClip.clip_id == clip_id,
            or_(BatchClip.required_annotators > 1, BatchClip.is_gold.is_(True)),
        )
        .order_by(BatchClip.id.desc())
        .limit(1)
    )


def queue_recompute(session: Session, clip_id: int) -> bool:
    """Queue the clip's recompute after commit when it is overlapped or gold; True if queued."""
    if _agreement_batch_clip(session, clip_id) is None:
        return False
    enqueue(session, RECOMPUTE_TASK, clip_id)
    return True


def on_annotation_submitted(session: Session, annotation: Annotation) -> bool:
    """Call after a person submits: overlapped work gets its agreement recomputed."""
    return annotation.kind != AnnotationKind.model and queue_recompute(session, annotation.clip_id)


def on_annotation_approved(session: Session, annotation: Annotation) -> bool:
    """Call after a final approval: it may create the gold reference or change a human's version."""
    return on_annotation_submitted(session, annotation)


# ---------------------------------------------------------------- recompute


@dataclass(frozen=True)
class ClipResult:
    clip_id: int
    rows: int
    score: float | None
    threshold: float
    humans: int

    @property
    def needs_adjudication(self) -> bool:
        return self.score is not None and self.score < self.threshold


def _versions(row: ScoreRow) -> dict[str, int]:
    return {str(v.id): v.version for v in (row.a, row.b) if v is not None}


def recompute_clip(session: Session, clip_id: int) -> ClipResult:
    """Replace the clip's agreement rows with fresh scores and queue the project's rollups."""
    clip = session.get(Clip, clip_id, with_for_update=True)  # one recompute per clip at a time
    if clip is None:
        raise NotFound(f"No clip {clip_id}.")
    project = session.get_one(Project, clip.project_id)
    gold = gold_reference(session, clip_id)
    humans = [a for a in human_versions(session, clip_id) if gold is None or a.id != gold.id]
    model = session.scalar(
        select(Annotation).where(
            Annotation.clip_id == clip_id, Annotation.kind == AnnotationKind.model
        )
    )
    scored = compare_clip(
        [annotation_view(session, a, as_submitted=True) for a in humans],
        annotation_view(session, model) if model else None,
        annotation_view(session, gold) if gold else None,
        SigmaResolver(session, project.id),
        majority=project.majority_vote,
    )
    entry = _agreement_batch_clip(session, clip_id)
    session.execute(delete(AgreementScore).where(AgreementScore.clip_id == clip_id))
    now = utcnow()
    if scored:
        session.execute(
            insert(AgreementScore),
            [
                {
                    "project_id": project.id,
                    "clip_id": clip_id,
                    "batch_id": entry.batch_id if entry else None,
                    "level": r.level,
                    "metric": r.metric,
                    "against": r.against,
                    "annotation_a_id": r.a.id if r.a else None,
                    "annotation_b_id": r.b.id if r.b else None,
                    "annotator_a_id": r.a.annotator_id if r.a else None,
                    "annotator_b_id": r.b.annotator_id if r.b else None,
                    "value": r.value,
                    "detail": r.detail,
                    "annotation_versions": _versions(r),
                    "computed_at": now,
                }
                for r in scored
            ],
        )
    enqueue(session, ROLLUP_TASK, project.id)
    score = next((r.value for r in scored if (r.level, r.metric) == CLIP_SCORE), None)
    return ClipResult(clip_id, len(scored), score, project.agreement_threshold, len(humans))


def agreement_clip_ids(session: Session, project_id: int) -> list[int]:
    """Clips of the project that are overlapped or gold in some batch (what recompute covers)."""
    return list(
        session.scalars(
            select(BatchClip.clip_id)
            .join(Batch, Batch.id == BatchClip.batch_id)
            .where(
                Batch.project_id == project_id,
                or_(BatchClip.required_annotators > 1, BatchClip.is_gold.is_(True)),
            )
            .distinct()
            .order_by(BatchClip.clip_id)
        )
    )


# ---------------------------------------------------------------- rollups


@dataclass(frozen=True)
class RollupRow:
    scope: str  # project|batch|annotator
    scope_id: int | None
    level: str
    metric: str  # "oks", "oks@model", "accuracy@gold", ...
    value: float | None
    n: int


def metric_name(metric: str, against: str) -> str:
    return metric if against == "human" else f"{metric}@{against}"


def _scored(project_id: int, batch_id: int | None) -> list[Any]:
    conditions = [AgreementScore.project_id == project_id, AgreementScore.value.is_not(None)]
    if batch_id is not None:
        conditions.append(AgreementScore.batch_id == batch_id)
    return conditions


def aggregate(session: Session, project_id: int, batch_id: int | None = None) -> list[RollupRow]:
    """Means per project, batch and annotator straight from the scores (GROUP BY in SQL)."""
    s = AgreementScore
    where = _scored(project_id, batch_id)
    keys = (s.level, s.metric, s.against)
    stats = (func.avg(s.value), func.count(s.value))
    project = select(*keys, *stats).where(*where).group_by(*keys)
    out = [_rollup("project", project_id, *row) for row in session.execute(project)]
    batch = (
        select(s.batch_id, *keys, *stats)
        .where(*where, s.batch_id.is_not(None))
        .group_by(s.batch_id, *keys)
    )
    out += [_rollup("batch", *row) for row in session.execute(batch)]
    sides = union_all(
        select(s.annotator_a_id.label("who"), *keys, s.value).where(
            *where, s.annotator_a_id.is_not(None)
        ),
        select(s.annotator_b_id.label("who"), *keys, s.value).where(
            *where, s.annotator_b_id.is_not(None), s.against == "human"
        ),
    ).subquery()
    side_keys = (sides.c.who, sides.c.level, sides.c.metric, sides.c.against)
    per_person = select(*side_keys, func.avg(sides.c.value), func.count(sides.c.value)).group_by(
        *side_keys
    )
    out += [_rollup("annotator", *row) for row in session.execute(per_person)]
    return out


def _rollup(
    scope: str, scope_id: int | None, level: str, metric: str, against: str, mean: Any, n: int
) -> RollupRow:
    return RollupRow(scope, scope_id, level, metric_name(metric, against), float(mean), int(n))


def recompute_rollups(session: Session, project_id: int) -> int:
    """Replace the project's stored rollups with fresh means; returns how many were stored."""
    project = session.get(Project, project_id, with_for_update=True)
    if project is None:
        raise NotFound(f"No project {project_id}.")
    rows = aggregate(session, project_id)
    session.execute(delete(AgreementRollup).where(AgreementRollup.project_id == project_id))
    now = utcnow()
    if rows:
        session.execute(
            insert(AgreementRollup),
            [
                {"project_id": project_id, "scope": r.scope, "scope_id": r.scope_id,
                 "level": r.level, "metric": r.metric, "value": r.value, "n": r.n,
                 "computed_at": now}
                for r in rows
            ],
        )  # fmt: skip
    return len(rows)


def set_majority_vote(session: Session, project_id: int, enabled: bool) -> Project:
    """Switch 2-of-3 majority resolution of categorical labels and requeue the project's clips."""
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"No project {project_id}.")
    if project.majority_vote != enabled:
        project.majority_vote = enabled
        session.flush()
        for clip_id in agreement_clip_ids(session, project_id):
            enqueue(session, RECOMPUTE_TASK, clip_id)
    return project


def request_recompute(session: Session, clip_id: int) -> None:
    """An admin's explicit recompute of one clip, overlapped or not (sent after commit)."""
    if session.get(Clip, clip_id) is None:
        raise NotFound(f"No clip {clip_id}.")
    enqueue(session, RECOMPUTE_TASK, clip_id)
