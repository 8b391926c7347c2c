"""Agreement in the database: recompute a clip's scores, roll them up, read them for pages.

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
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, insert, or_, select, union_all
from sqlalchemy.orm import Session, aliased

from app.agreement.compare import AnnotationView, CharacterView, ScoreRow, compare_clip
from app.agreement.models import AgreementRollup, AgreementScore
from app.annotations.models import (
    Annotation,
    AnnotationKind,
    Caption,
    CaptionLevel,
    Character,
    KeypointFrame,
    NodeStatus,
    Revision,
    Shot,
    Source,
    Track,
)
from app.annotations.points import decode_points
from app.auth.models import User
from app.batches.models import Batch, BatchClip
from app.clips.models import Clip
from app.core.db import utcnow
from app.core.errors import NotFound
from app.core.jobs import enqueue
from app.projects.models import Project, SkeletonTemplate
from app.projects.skeletons import BUILTIN_SKELETONS, DEFAULT_SIGMA, Skeleton

RECOMPUTE_TASK = "cellabel.agreement.recompute_clip"
ROLLUP_TASK = "cellabel.agreement.recompute_rollups"
COUNTED = (NodeStatus.submitted, NodeStatus.approved)
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


# ---------------------------------------------------------------- loading versions


def annotation_view(
    session: Session, annotation: Annotation, *, as_submitted: bool = False
) -> AnnotationView:
    """The comparable content of one annotation (one query per table).

    ``as_submitted``: as its annotator submitted it, without the corrections a reviewer made
    in Fix and accept (agreement scores the annotator's work, not the reviewer's)."""
    shots = session.execute(
        select(Shot.id, Shot.start_frame, Shot.end_frame)
        .where(Shot.annotation_id == annotation.id)
        .order_by(Shot.start_frame)
    ).all()
    chars = list(
        session.scalars(
            select(Character).where(Character.annotation_id == annotation.id).order_by(Character.id)
        )
    )
    tracks: dict[int, Track] = {}
    for track in session.scalars(
        select(Track).where(Track.character_id.in_([c.id for c in chars])).order_by(Track.id)
    ):
        tracks.setdefault(track.character_id, track)  # one track per character is the norm
    frames: dict[int, dict[int, Any]] = defaultdict(dict)
    drafts: dict[int, dict[int, Any]] = defaultdict(dict)
    by_track = {t.id: t.character_id for t in tracks.values()}
    frame_at: dict[int, tuple[int, int]] = {}  # keypoint frame id -> (character, frame)
    for row in session.execute(
        select(
            KeypointFrame.id,
            KeypointFrame.track_id,
            KeypointFrame.frame_index,
            KeypointFrame.points,
            KeypointFrame.model_points,
        ).where(KeypointFrame.track_id.in_(list(by_track)))
    ):
        char_id = by_track[row.track_id]
        frame_at[row.id] = (char_id, row.frame_index)
        frames[char_id][row.frame_index] = decode_points(row.points)[0]
        if row.model_points is not None and annotation.kind != AnnotationKind.model:
            drafts[char_id][row.frame_index] = decode_points(row.model_points)[0]
    shot_start = {s.id: s.start_frame for s in shots}
    char_name = {c.id: c.name for c in chars}
    captions: dict[str, str] = {}
    caption_key: dict[int, str] = {}
    is_model = annotation.kind == AnnotationKind.model
    for cap in session.scalars(select(Caption).where(Caption.annotation_id == annotation.id)):
        if cap.level == CaptionLevel.clip:
            key = f"clip:{cap.field}"
        elif cap.level == CaptionLevel.shot and cap.target_id in shot_start:
            key = f"shot@{shot_start[cap.target_id]}:{cap.field}"
        elif cap.level == CaptionLevel.character and cap.target_id in char_name:
            key = f"character:{char_name[cap.target_id]}:{cap.field}"
        else:
            continue
        captions[key] = (cap.text or cap.model_text or "") if is_model else cap.text
        caption_key[cap.id] = key
    if as_submitted:
        _undo_review_fixes(session, annotation, frames, frame_at, captions, caption_key)
    return AnnotationView(
        id=annotation.id,
        annotator_id=annotation.annotator_id,
        version=annotation.version,
        shots=tuple((s.start_frame, s.end_frame) for s in shots),
        tags=dict(annotation.tags),
        quality=dict(annotation.quality),
        captions=captions,
        characters=tuple(
            CharacterView(
                id=c.id,
                name=c.name,
                skeleton=c.skeleton,
                num_points=tracks[c.id].num_points if c.id in tracks else 0,
                emotions=tuple(
                    (int(e["start"]), int(e["end"]), str(e["label"])) for e in c.emotions
                ),
                frames=frames.get(c.id, {}),
                model_frames=drafts.get(c.id, {}),
            )
            for c in chars
        ),
    )


def _undo_review_fixes(
    session: Session,
    annotation: Annotation,
    frames: dict[int, dict[int, Any]],
    frame_at: dict[int, tuple[int, int]],
    captions: dict[str, str],
    caption_key: dict[int, str],
) -> None:
    """Put back what reviewers' fixes replaced (newest first, so the oldest ``before`` wins)."""
    fixes = session.scalars(
        select(Revision)
        .where(Revision.annotation_id == annotation.id, Revision.source == Source.review)
        .order_by(Revision.id.desc())
    )
    for fix in fixes:
        before = fix.before or {}
        if fix.node_type == "keypoint_frame" and fix.node_id in frame_at:
            char_id, frame_index = frame_at[fix.node_id]
            pose = frames[char_id][frame_index] = frames[char_id][frame_index].copy()
            for point, value in before.items():
                pose[int(point), :3] = value
        elif fix.node_type == "caption" and fix.node_id in caption_key:
            captions[caption_key[fix.node_id]] = before.get("text") or ""


def human_versions(session: Session, clip_id: int) -> list[Annotation]:
    """The clip's human annotations that count for agreement (submitted or approved), by id."""
    return list(
        session.scalars(
            select(Annotation)
            .where(
                Annotation.clip_id == clip_id,
                Annotation.kind == AnnotationKind.human,
                Annotation.status.in_(COUNTED),
            )
            .order_by(Annotation.id)
        )
    )


def gold_reference(session: Session, clip_id: int) -> Annotation | None:
    """The approved primary annotation of a clip that some batch uses as gold."""
    is_gold = session.scalar(
        select(exists().where(BatchClip.clip_id == clip_id, BatchClip.is_gold.is_(True)))
    )
    if not is_gold:
        return None
    return session.scalar(
        select(Annotation).where(
            Annotation.clip_id == clip_id,
            Annotation.is_primary.is_(True),
            Annotation.status == NodeStatus.approved,
        )
    )


class SigmaResolver:
    """OKS sigmas by skeleton name: built-in, then the project's custom templates, else default."""

    def __init__(self, session: Session, project_id: int) -> None:
        self._session, self._project_id = session, project_id
        self._cache: dict[tuple[str, int], tuple[float, ...]] = {}

    def __call__(self, name: str, k: int) -> tuple[float, ...]:
        if (name, k) not in self._cache:
            skeleton = BUILTIN_SKELETONS.get(name)
            if skeleton is None:
                definition = self._session.scalar(
                    select(SkeletonTemplate.definition).where(
                        SkeletonTemplate.project_id == self._project_id,
                        SkeletonTemplate.name == name,
                    )
                )
                skeleton = Skeleton.from_dict(definition) if definition else None
            sigmas = skeleton.sigmas if skeleton else ()
            self._cache[name, k] = sigmas if len(sigmas) == k else (DEFAULT_SIGMA,) * k
        return self._cache[name, k]


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


def rollups(session: Session, project_id: int, batch_id: int | None = None) -> list[RollupRow]:
    """The stored rollups of a project; within one batch, computed on the fly."""
    if batch_id is not None:
        return aggregate(session, project_id, batch_id)
    stored = session.scalars(
        select(AgreementRollup)
        .where(AgreementRollup.project_id == project_id)
        .order_by(AgreementRollup.scope, AgreementRollup.scope_id, AgreementRollup.level,
                  AgreementRollup.metric)
    )  # fmt: skip
    return [RollupRow(r.scope, r.scope_id, r.level, r.metric, r.value, r.n) for r in stored]


# ---------------------------------------------------------------- reading for pages and API


@dataclass(frozen=True)
class Filters:
    project_id: int
    batch_id: int | None = None

    def where(self) -> list[ColumnElement[bool]]:
        """Conditions on AgreementScore rows."""
        conditions = [AgreementScore.project_id == self.project_id]
        if self.batch_id is not None:
            conditions.append(AgreementScore.batch_id == self.batch_id)
        return conditions


@dataclass(frozen=True)
class MetricSpec:
    level: str
    metric: str
    label: str
    against: str = "human"
    low: float = 0.0
    high: float = 1.0

    @property
    def key(self) -> str:
        return f"{self.level}.{metric_name(self.metric, self.against)}"


HISTOGRAMS = (
    MetricSpec("keypoints", "oks", "Keypoint OKS"),
    MetricSpec("keypoints", "pck", "Keypoint PCK@0.1"),
    MetricSpec("shots", "boundary_f1", "Shot boundary F1 (±2 frames)"),
    MetricSpec("tags", "kappa", "Tags: Cohen's κ", low=-1.0),
    MetricSpec("captions", "chrf", "Captions: chrF"),
    MetricSpec("captions", "rouge_l", "Captions: ROUGE-L"),
)
TABLE_COLUMNS = (
    MetricSpec(*CLIP_SCORE, "Score"),
    MetricSpec("keypoints", "oks", "OKS"),
    MetricSpec("keypoints", "pck", "PCK"),
    MetricSpec("keypoints", "joint_error", "Joint err px", high=math.inf),
    MetricSpec("shots", "boundary_f1", "Shot F1"),
    MetricSpec("tags", "alpha", "Tags \N{GREEK SMALL LETTER ALPHA}", low=-1.0),
    MetricSpec("flags", "alpha", "Flags \N{GREEK SMALL LETTER ALPHA}", low=-1.0),
    MetricSpec("emotions", "alpha", "Emotions \N{GREEK SMALL LETTER ALPHA}", low=-1.0),
    MetricSpec("captions", "chrf", "chrF"),
    MetricSpec("captions", "rouge_l", "ROUGE-L"),
    MetricSpec("keypoints", "share_changed", "Changed vs model", against="model"),
)
GOLD_COLUMNS = (
    MetricSpec("keypoints", "oks", "OKS", against="gold"),
    MetricSpec("keypoints", "pck", "PCK", against="gold"),
    MetricSpec("shots", "boundary_f1", "Shot F1", against="gold"),
    MetricSpec("tags", "agreement", "Tags", against="gold"),
    MetricSpec("flags", "agreement", "Flags", against="gold"),
    MetricSpec("emotions", "agreement", "Emotions", against="gold"),
    MetricSpec("captions", "chrf", "chrF", against="gold"),
)
PAIR_METRICS = (
    *HISTOGRAMS,
    MetricSpec("keypoints", "joint_error", "Mean joint error (px)", high=math.inf),
)
SPECS = {m.key: m for m in (*HISTOGRAMS, *TABLE_COLUMNS, *GOLD_COLUMNS, *PAIR_METRICS)}


def spec(key: str) -> MetricSpec:
    """A metric by its key ("keypoints.oks"); unknown keys fall back to keypoint OKS."""
    return SPECS.get(key, HISTOGRAMS[0])


def _rows_of(filters: Filters, m: MetricSpec) -> list[ColumnElement[bool]]:
    """Conditions for the scored rows of one metric within the filter."""
    return [
        *filters.where(),
        AgreementScore.level == m.level,
        AgreementScore.metric == m.metric,
        AgreementScore.against == m.against,
        AgreementScore.value.is_not(None),
    ]


def _values(session: Session, filters: Filters, m: MetricSpec) -> list[float]:
    stmt = select(AgreementScore.value).where(*_rows_of(filters, m))
    return [float(v) for v in session.scalars(stmt) if v is not None]


@dataclass(frozen=True)
class Histogram:
    spec: MetricSpec
    counts: list[int]
    n: int
    mean: float | None

    @property
    def edges(self) -> list[float]:
        step = (self.spec.high - self.spec.low) / len(self.counts)
        return [self.spec.low + i * step for i in range(len(self.counts) + 1)]


def histogram(session: Session, filters: Filters, m: MetricSpec, bins: int = 10) -> Histogram:
    """Counts of the metric's values in equal bins over its range (the top edge included)."""
    values = _values(session, filters, m)
    counts = [0] * bins
    for v in values:
        position = (min(max(v, m.low), m.high) - m.low) / (m.high - m.low)
        counts[min(int(position * bins), bins - 1)] += 1
    return Histogram(m, counts, len(values), sum(values) / len(values) if values else None)


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None
    n: int


def _usernames(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.username).where(User.id.in_(ids))).all())


def annotator_bars(session: Session, filters: Filters, m: MetricSpec) -> list[Bar]:
    """Each annotator's mean of the metric (from the rollups), best first."""
    wanted = metric_name(m.metric, m.against)
    rows = [
        r
        for r in rollups(session, filters.project_id, filters.batch_id)
        if r.scope == "annotator" and r.level == m.level and r.metric == wanted
    ]
    names = _usernames(session, {r.scope_id for r in rows if r.scope_id is not None})
    bars = [Bar(names.get(r.scope_id or 0, "?"), r.value, r.n) for r in rows]
    return sorted(bars, key=lambda b: -(b.value if b.value is not None else -math.inf))


def project_means(session: Session, filters: Filters) -> dict[str, RollupRow]:
    """The project's (or the batch's) mean per metric key, for the summary cards."""
    scope = "batch" if filters.batch_id is not None else "project"
    return {
        f"{r.level}.{r.metric}": r
        for r in rollups(session, filters.project_id, filters.batch_id)
        if r.scope == scope
    }


@dataclass(frozen=True)
class TrendPoint:
    day: date
    value: float
    n: int


def trend(session: Session, filters: Filters, m: MetricSpec) -> list[TrendPoint]:
    """Daily mean of a pair metric, dated by when the pair's later annotation was submitted."""
    a, b = aliased(Annotation), aliased(Annotation)
    stmt = (
        select(AgreementScore.value, a.submitted_at, b.submitted_at)
        .join(a, a.id == AgreementScore.annotation_a_id)
        .join(b, b.id == AgreementScore.annotation_b_id)
        .where(*_rows_of(filters, m))
    )
    days: dict[date, list[float]] = defaultdict(list)
    for value, first, second in session.execute(stmt):
        moments = [t for t in (first, second) if t is not None]
        if moments and value is not None:
            days[max(moments).date()].append(float(value))
    return [TrendPoint(d, sum(v) / len(v), len(v)) for d, v in sorted(days.items())]


@dataclass(frozen=True)
class JointCell:
    index: int
    name: str
    part: str
    value: float | None


@dataclass
class HeatStrip:
    skeleton: str
    cells: list[JointCell]
    parts: list[tuple[str, int, int]] = field(default_factory=list)  # name, first, last index

    @property
    def worst(self) -> list[JointCell]:
        scored = [c for c in self.cells if c.value is not None]
        return sorted(scored, key=lambda c: c.value or 0.0)[:8]


def joint_heat(session: Session, filters: Filters) -> HeatStrip | None:
    """Mean per-joint OKS between annotators for the most used skeleton (None without data)."""
    details = session.scalars(
        select(AgreementScore.detail).where(
            *filters.where(),
            AgreementScore.level == "keypoints",
            AgreementScore.metric == "oks",
            AgreementScore.against == "human",
        )
    ).all()
    per_skeleton = Counter(d["skeleton"] for d in details if d.get("per_joint"))
    if not per_skeleton:
        return None
    name = per_skeleton.most_common(1)[0][0]
    rows = [d["per_joint"] for d in details if d.get("skeleton") == name and d.get("per_joint")]
    k = len(rows[0])
    sums, counts = [0.0] * k, [0] * k
    for per_joint in rows:
        for j, v in enumerate(per_joint[:k]):
            if v is not None:
                sums[j] += v
                counts[j] += 1
    skeleton = BUILTIN_SKELETONS.get(name)
    names = skeleton.keypoints if skeleton and len(skeleton.keypoints) == k else ()
    part_of = {i: p for p, idx in (skeleton.parts.items() if skeleton else ()) for i in idx}
    cells = [
        JointCell(j, names[j] if names else str(j), part_of.get(j, ""),
                  sums[j] / counts[j] if counts[j] else None)
        for j in range(k)
    ]  # fmt: skip
    strip = HeatStrip(name, cells)
    if skeleton and names:
        strip.parts = [(p, min(idx), max(idx)) for p, idx in skeleton.parts.items() if idx]
    return strip


@dataclass(frozen=True)
class ClipRow:
    clip_id: int
    filename: str
    values: dict[str, float | None]
    annotators: int


def clip_table(
    session: Session, filters: Filters, sort: str, descending: bool, limit: int = 200
) -> list[ClipRow]:
    """One row per scored clip with its mean per table column, sorted (missing values last)."""
    s = AgreementScore
    stmt = (
        select(s.clip_id, Clip.filename, s.level, s.metric, s.against, func.avg(s.value))
        .join(Clip, Clip.id == s.clip_id)
        .where(*filters.where())
        .group_by(s.clip_id, Clip.filename, s.level, s.metric, s.against)
    )
    wanted = {m.key for m in TABLE_COLUMNS}
    table: dict[int, ClipRow] = {}
    for clip_id, filename, level, metric, against, mean in session.execute(stmt):
        row = table.setdefault(clip_id, ClipRow(clip_id, filename, {}, 0))
        key = f"{level}.{metric_name(metric, against)}"
        if key in wanted:
            row.values[key] = None if mean is None else float(mean)
    humans = select(s.clip_id, s.detail).where(
        *filters.where(), s.level == CLIP_SCORE[0], s.metric == CLIP_SCORE[1]
    )
    counts = {
        clip_id: int(detail.get("annotators", 0)) for clip_id, detail in session.execute(humans)
    }
    key = sort if sort in wanted else TABLE_COLUMNS[0].key
    rows = [
        ClipRow(r.clip_id, r.filename, r.values, counts.get(r.clip_id, 0)) for r in table.values()
    ]
    present = [r for r in rows if r.values.get(key) is not None]
    present.sort(key=lambda r: (r.values[key], r.clip_id), reverse=descending)
    return (present + [r for r in rows if r.values.get(key) is None])[:limit]


def scores_stamp(session: Session, project_id: int) -> tuple[Any, ...]:
    """Changes whenever the project's scores do (they are deleted and re-inserted per clip,
    so a recompute moves the highest id or the count; the newest ``computed_at`` guards the
    rest)."""
    s = AgreementScore
    row = session.execute(
        select(func.count(), func.max(s.id), func.max(s.computed_at)).where(
            s.project_id == project_id
        )
    ).one()
    return tuple(row)


_DASHBOARD_CACHE: dict[tuple[Any, ...], tuple[tuple[Any, ...], dict[str, Any]]] = {}
_DASHBOARD_CACHE_SIZE = 256


def dashboard_parts(
    session: Session, filters: Filters, m: MetricSpec, sort: str, descending: bool
) -> dict[str, Any]:
    """The score-derived parts of the dashboard (histograms, bars, trend, heat, gold, clip
    table). Each reads every score of the project, so they are kept per process and reused
    until :func:`scores_stamp` changes."""
    key = (filters.project_id, filters.batch_id, m.key, sort, descending)
    stamp = scores_stamp(session, filters.project_id)
    hit = _DASHBOARD_CACHE.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    parts = {
        "histograms": [histogram(session, filters, h) for h in HISTOGRAMS],
        "bars": annotator_bars(session, filters, m),
        "trend": trend(session, filters, m),
        "heat": joint_heat(session, filters),
        "gold": gold_accuracy(session, filters),
        "rows": clip_table(session, filters, sort, descending),
    }
    if len(_DASHBOARD_CACHE) >= _DASHBOARD_CACHE_SIZE:
        _DASHBOARD_CACHE.clear()
    _DASHBOARD_CACHE[key] = (stamp, parts)
    return parts


@dataclass(frozen=True)
class GoldRow:
    annotator: str
    values: dict[str, float | None]
    clips: int


def gold_accuracy(session: Session, filters: Filters) -> list[GoldRow]:
    """Each annotator's mean score against the approved annotation of gold clips."""
    s = AgreementScore
    gold = (*filters.where(), s.against == "gold", s.annotator_a_id.is_not(None))
    means = (
        select(s.annotator_a_id, s.level, s.metric, func.avg(s.value))
        .where(*gold)
        .group_by(s.annotator_a_id, s.level, s.metric)
    )
    values: dict[int, dict[str, float | None]] = defaultdict(dict)
    for who, level, metric, mean in session.execute(means):
        values[who][f"{level}.{metric}@gold"] = None if mean is None else float(mean)
    clips = (
        select(s.annotator_a_id, func.count(s.clip_id.distinct()))
        .where(*gold)
        .group_by(s.annotator_a_id)
    )
    counts = dict(session.execute(clips).all())
    names = _usernames(session, set(values))
    rows = [GoldRow(names.get(who, "?"), v, counts.get(who, 0)) for who, v in values.items()]
    return sorted(rows, key=lambda g: g.annotator)


def clip_scores(session: Session, clip_id: int) -> list[AgreementScore]:
    """Every stored score of one clip."""
    if session.get(Clip, clip_id) is None:
        raise NotFound(f"No clip {clip_id}.")
    return list(
        session.scalars(
            select(AgreementScore)
            .where(AgreementScore.clip_id == clip_id)
            .order_by(AgreementScore.level, AgreementScore.metric, AgreementScore.id)
        )
    )


EXPORT_HEADER = (
    "clip_id", "batch_id", "level", "metric", "against", "annotator_a", "annotator_b",
    "annotation_a_id", "annotation_b_id", "value", "annotation_versions", "computed_at",
)  # fmt: skip


def export_rows(session: Session, filters: Filters) -> Iterator[tuple[Any, ...]]:
    """The header, then every stored score of the filter, one tuple per CSV line."""
    yield EXPORT_HEADER
    ua, ub = aliased(User), aliased(User)
    s = AgreementScore
    stmt = (
        select(s, ua.username, ub.username)
        .outerjoin(ua, ua.id == s.annotator_a_id)
        .outerjoin(ub, ub.id == s.annotator_b_id)
        .where(*filters.where())
        .order_by(s.clip_id, s.level, s.metric, s.id)
    )
    for score, name_a, name_b in session.execute(stmt):
        versions = ";".join(f"{k}:{v}" for k, v in sorted(score.annotation_versions.items()))
        yield (
            score.clip_id, score.batch_id, score.level, score.metric, score.against,
            name_a or "", name_b or "", score.annotation_a_id or "", score.annotation_b_id or "",
            "" if score.value is None else f"{score.value:.6g}", versions,
            score.computed_at.isoformat(),
        )  # fmt: skip


# ---------------------------------------------------------------- adjudication queue


@dataclass(frozen=True)
class QueueRow:
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


def adjudication_queue(session: Session, project_id: int | None = None) -> list[QueueRow]:
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
        QueueRow(
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
