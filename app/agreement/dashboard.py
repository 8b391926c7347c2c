"""The agreement dashboard and API reads: stored rollups, histograms, per-annotator bars, the
daily trend, the per-joint heat strip, the clip table, gold accuracy and the CSV export, all
read from the stored scores (and cached per process until they change)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, aliased

from app.agreement.models import AgreementRollup, AgreementScore
from app.agreement.recompute import CLIP_SCORE, RollupRow, aggregate, metric_name
from app.annotations.models import (
    Annotation,
)
from app.auth.models import User
from app.clips.models import Clip
from app.core.errors import NotFound
from app.projects.skeletons import BUILTIN_SKELETONS


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
