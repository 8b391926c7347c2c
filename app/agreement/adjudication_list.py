"""The adjudication list: clips whose annotators disagree (their agreement score is below the
project's threshold), not yet adjudicated, lowest score first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

from app.agreement.models import AgreementScore
from app.agreement.recompute import CLIP_SCORE
from app.annotations.models import (
    Annotation,
    AnnotationKind,
    NodeStatus,
)
from app.batches.models import BatchClip
from app.clips.models import Clip
from app.projects.models import Project


@dataclass(frozen=True)
class AdjudicationEntry:
    """A clip on the adjudication list, with what drives its low score."""

    clip_id: int
    filename: str
    project: str
    score: float
    threshold: float
    driver: str | None
    levels: dict[str, float]
    annotators: int


def _adjudicated(clip_id: Any) -> Any:
    return exists().where(
        Annotation.clip_id == clip_id,
        Annotation.kind == AnnotationKind.adjudicated,
        Annotation.status == NodeStatus.approved,
    )


def adjudication_list(session: Session, project_id: int | None = None) -> list[AdjudicationEntry]:
    """Clips whose agreement score is below their project's threshold, not yet adjudicated and
    not gold (gold clips already have an approved answer), lowest score first."""
    s = AgreementScore
    stmt = (
        select(s, Clip.filename, Project.name, Project.agreement_threshold)
        .join(Clip, Clip.id == s.clip_id)
        .join(Project, Project.id == s.project_id)
        .where(
            and_(s.level == CLIP_SCORE[0], s.metric == CLIP_SCORE[1]),
            s.value < Project.agreement_threshold,
            ~_adjudicated(s.clip_id),
            ~exists().where(BatchClip.clip_id == s.clip_id, BatchClip.is_gold.is_(True)),
        )
        .order_by(s.value, s.clip_id)
    )
    if project_id is not None:
        stmt = stmt.where(s.project_id == project_id)
    return [
        AdjudicationEntry(
            score.clip_id,
            filename,
            project,
            float(score.value or 0.0),
            threshold,
            score.detail.get("driver"),
            score.detail.get("levels", {}),
            int(score.detail.get("annotators", 0)),
        )
        for score, filename, project, threshold in session.execute(stmt)
    ]
