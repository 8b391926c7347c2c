"""Compare versions of one clip's annotation, level by level: pure, no database.

The service turns each Annotation into an :class:`AnnotationView` and stores the
:class:`ScoreRow` list that :func:`compare_clip` returns. Conventions:

* ``against`` is ``human`` (two annotators; both directions averaged where a metric is
  asymmetric), ``model`` (an annotator vs the model draft) or ``gold`` (an annotator vs the
  approved annotation of a gold clip, which is the reference).
* Characters are matched per pair of versions within the same skeleton by the Hungarian
  method on 1 - mean box IoU over the frames either version labels; a character without a
  partner (or whose best partner never overlaps) scores OKS 0 and PCK 0.
* Categorical levels (tags, flags, emotions, visibility) become units with one label per
  version; alpha is computed across all annotators, kappa and raw agreement per pair.
* The clip's ``adjudication_score`` is the lowest of: mean pairwise keypoint OKS, mean
  pairwise shot boundary F1 and, per categorical level, the share of units the annotators
  settled (unanimously, or by a 2-of-3 majority when the project allows it). Captions do not
  drive it: two good captions by different people share few character n-grams.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from app.agreement import metrics
from app.projects.skeletons import PoseArray

SHOT_TOLERANCE = 2  # frames
PCK_ALPHA = 0.1
MOVED_PX = 1.0  # a point "changed" from the model draft when it moved more than this
CATEGORICAL_LEVELS = ("tags", "flags", "emotions", "visibility")
MAJORITY = 2  # votes that settle a label when the project allows majority vote


@dataclass(frozen=True)
class CharacterView:
    id: int
    name: str
    skeleton: str
    num_points: int
    emotions: tuple[tuple[int, int, str], ...]  # [start, end) frame ranges
    frames: Mapping[int, PoseArray]  # frame index -> (K, 4) working pose
    model_frames: Mapping[int, PoseArray] = field(default_factory=dict)  # the draft it started as


@dataclass(frozen=True)
class AnnotationView:
    id: int
    annotator_id: int | None
    version: int
    shots: tuple[tuple[int, int], ...]
    tags: Mapping[str, Any]
    quality: Mapping[str, Any]
    captions: Mapping[str, str]  # "clip:short", "shot@12:narrative", "character:Bob:appearance"
    characters: tuple[CharacterView, ...]


@dataclass
class ScoreRow:
    level: str
    metric: str
    against: str
    a: AnnotationView | None
    b: AnnotationView | None
    value: float | None
    detail: dict[str, Any] = field(default_factory=dict)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _mean(values: Sequence[float]) -> float:
    kept = [v for v in values if math.isfinite(v)]
    return float(np.mean(kept)) if kept else math.nan


# ---------------------------------------------------------------- characters and keypoints


def _box_iou(a: PoseArray | None, b: PoseArray | None) -> float:
    box_a = metrics.box_from_points(a) if a is not None else None
    box_b = metrics.box_from_points(b) if b is not None else None
    if box_a is None or box_b is None:
        return 0.0
    w = min(box_a.x + box_a.w, box_b.x + box_b.w) - max(box_a.x, box_b.x)
    h = min(box_a.y + box_a.h, box_b.y + box_b.h) - max(box_a.y, box_b.y)
    inter = max(w, 0.0) * max(h, 0.0)
    union = box_a.area + box_b.area - inter
    return inter / union if union > 0 else float(box_a == box_b)  # two identical dots: 1


def _labelled_frames(character: CharacterView) -> set[int]:
    return {f for f, pose in character.frames.items() if metrics.labelled_mask(pose).any()}


def mean_box_iou(a: CharacterView, b: CharacterView) -> float:
    """Mean IoU of the labelled points' boxes over the frames either character labels."""
    frames = _labelled_frames(a) | _labelled_frames(b)
    if not frames:
        return 0.0
    return float(np.mean([_box_iou(a.frames.get(f), b.frames.get(f)) for f in frames]))


def match_characters(
    a: Sequence[CharacterView], b: Sequence[CharacterView]
) -> list[tuple[CharacterView | None, CharacterView | None, float]]:
    """Pairs (a, b, IoU) matched per skeleton by the Hungarian method; leftovers pair with None."""
    pairs: list[tuple[CharacterView | None, CharacterView | None, float]] = []
    used_b: set[int] = set()
    for skeleton in sorted({c.skeleton for c in a} | {c.skeleton for c in b}):
        left = [c for c in a if c.skeleton == skeleton]
        right = [c for c in b if c.skeleton == skeleton]
        if left and right:
            iou = np.array([[mean_box_iou(x, y) for y in right] for x in left])
            rows, cols = linear_sum_assignment(-iou)
            taken = {r: c for r, c in zip(rows, cols, strict=True) if iou[r, c] > 0}
        else:
            taken = {}
        for r, x in enumerate(left):
            if r in taken:
                pairs.append((x, right[taken[r]], float(iou[r, taken[r]])))
                used_b.add(right[taken[r]].id)
            else:
                pairs.append((x, None, 0.0))
        pairs += [(None, y, 0.0) for y in right if y.id not in used_b]
    return pairs


@dataclass(frozen=True)
class KeypointAgreement:
    oks: float
    pck: float
    joint_error: float
    per_joint: list[float | None]  # mean per-point OKS, None where nobody labelled the joint
    frames: int


def _aligned(a: CharacterView, b: CharacterView, k: int) -> tuple[list[PoseArray], list[PoseArray]]:
    """Both tracks over the frames either labels; a frame one side lacks is an empty pose."""
    empty = np.zeros((k, 4), dtype=np.float32)
    frames = sorted(_labelled_frames(a) | _labelled_frames(b))
    return [a.frames.get(f, empty) for f in frames], [b.frames.get(f, empty) for f in frames]


def keypoint_agreement(
    a: CharacterView, b: CharacterView, sigmas: Sequence[float], *, symmetric: bool
) -> KeypointAgreement:
    """OKS, PCK@0.1 and mean joint error of two tracks; ``b`` is the reference unless symmetric."""
    frames_a, frames_b = _aligned(a, b, len(sigmas))
    directions = [(frames_b, frames_a)] + ([(frames_a, frames_b)] if symmetric else [])
    oks_values, pck_values = [], []
    joint_sum = np.zeros(len(sigmas))
    joint_n = np.zeros(len(sigmas))
    for ref, other in directions:
        oks_values.append(metrics.oks_track(ref, other, sigmas).mean)
        for g, d in zip(ref, other, strict=True):
            pck_values.append(metrics.pck(g, d, PCK_ALPHA))
            if metrics.labelled_mask(g).any():
                per = metrics.oks_per_joint(g, d, sigmas, metrics.box_area_from_points(g))
                seen = np.isfinite(per)
                joint_sum[seen] += per[seen]
                joint_n[seen] += 1
    errors = [metrics.mean_joint_error(g, d) for g, d in zip(frames_b, frames_a, strict=True)]
    per_joint = [
        round(float(s / n), 4) if n else None for s, n in zip(joint_sum, joint_n, strict=True)
    ]
    return KeypointAgreement(
        oks=_mean(oks_values),
        pck=_mean(pck_values),
        joint_error=_mean(errors),
        per_joint=per_joint,
        frames=len(frames_a),
    )


@dataclass(frozen=True)
class ModelCorrection:
    """How far a person moved the model's draft: mean pixels per joint and share changed."""

    mean_px: float
    per_joint_px: list[float | None]
    share_changed: float
    points: int


def model_correction(character: CharacterView) -> ModelCorrection | None:
    """Pooled over every frame that kept its model draft; None when the model drew nothing."""
    common = sorted(set(character.frames) & set(character.model_frames))
    if not common:
        return None
    model = np.stack([character.model_frames[f] for f in common]).astype(np.float64)
    final = np.stack([character.frames[f] for f in common]).astype(np.float64)
    k = model.shape[1]
    distances = metrics.correction_distance(model.reshape(-1, 4), final.reshape(-1, 4))
    per_frame = distances.reshape(len(common), k)
    seen = np.isfinite(per_frame)
    counts = seen.sum(axis=0)
    sums = np.where(seen, per_frame, 0.0).sum(axis=0)
    per_joint = [round(float(s / n), 3) if n else None for s, n in zip(sums, counts, strict=True)]
    comparable = distances[np.isfinite(distances)]
    return ModelCorrection(
        mean_px=float(comparable.mean()) if comparable.size else math.nan,
        per_joint_px=per_joint,
        share_changed=metrics.share_changed(
            model.reshape(-1, 4), final.reshape(-1, 4), tol_px=MOVED_PX
        ),
        points=int(seen.sum()),
    )


# ---------------------------------------------------------------- categorical units


def _label(value: Any) -> Hashable | None:
    if value in (None, "", []):
        return None
    if isinstance(value, list):
        return ",".join(sorted(str(v) for v in value))
    return str(value)


def categorical_units(
    view: AnnotationView, level: str, reasons: Sequence[str] = ()
) -> dict[str, Hashable | None]:
    """One label per unit: tag groups; keep + each discard reason; emotion per character and
    frame (characters matched by name); v per character, frame and joint."""
    if level == "tags":
        return {group: _label(value) for group, value in view.tags.items()}
    if level == "flags":
        if "keep" not in view.quality:
            return {}
        given = set(view.quality.get("reasons") or [])
        flags: dict[str, Hashable | None] = {"keep": str(bool(view.quality["keep"]))}
        return flags | {f"reason:{r}": str(r in given) for r in reasons}
    units: dict[str, Hashable | None] = {}
    for char in view.characters:
        if level == "emotions":
            for start, end, label in char.emotions:
                units.update({f"{char.name}@{f}": label for f in range(start, end)})
        elif level == "visibility":
            for frame, pose in char.frames.items():
                units.update({f"{char.name}@{frame}#{j}": int(v) for j, v in enumerate(pose[:, 2])})
    return units


def _columns(
    unit_maps: Sequence[Mapping[str, Hashable | None]],
) -> tuple[list[str], list[list[Hashable | None]]]:
    keys = sorted(set().union(*unit_maps)) if unit_maps else []
    return keys, [[units.get(k) for k in keys] for units in unit_maps]


def raw_agreement(a: Sequence[Hashable | None], b: Sequence[Hashable | None]) -> float:
    """Share of the units both labelled on which they gave the same label (NaN if none)."""
    both = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    return sum(x == y for x, y in both) / len(both) if both else math.nan


@dataclass(frozen=True)
class Settlement:
    """Units labelled by at least two annotators, and how many are settled."""

    units: int
    unanimous: int
    by_majority: int
    resolved: dict[str, Hashable]  # unit -> label settled by majority (small levels only)

    def share(self, *, majority: bool) -> float:
        settled = self.unanimous + (self.by_majority if majority else 0)
        return settled / self.units if self.units else math.nan


def settle(keys: Sequence[str], rows: Sequence[Sequence[Hashable | None]]) -> Settlement:
    unanimous = by_majority = units = 0
    resolved: dict[str, Hashable] = {}
    for index, key in enumerate(keys):
        labels = [row[index] for row in rows if row[index] is not None]
        if len(labels) < 2:
            continue
        units += 1
        if len(set(labels)) == 1:
            unanimous += 1
            continue
        winner = metrics.majority_vote(labels, MAJORITY)
        if winner is not None:
            by_majority += 1
            resolved[key] = winner
    return Settlement(units, unanimous, by_majority, resolved)


# ---------------------------------------------------------------- captions


def caption_scores(
    hyp: Mapping[str, str], ref: Mapping[str, str], *, symmetric: bool
) -> dict[str, tuple[float, dict[str, float]]]:
    """chrF and ROUGE-L means over the caption fields both versions have (with some text)."""
    keys = sorted(k for k in set(hyp) & set(ref) if hyp[k].strip() or ref[k].strip())
    out: dict[str, tuple[float, dict[str, float]]] = {}
    for name, fn in (("chrf", metrics.chrf), ("rouge_l", metrics.rouge_l)):
        per_key = {}
        for k in keys:
            score = fn(hyp[k], ref[k])
            if symmetric:
                score = (score + fn(ref[k], hyp[k])) / 2
            per_key[k] = round(score, 4)
        out[name] = (_mean(list(per_key.values())), per_key)
    return out


# ---------------------------------------------------------------- one clip


def _pair_rows(
    a: AnnotationView,
    b: AnnotationView,
    against: str,
    sigmas_of: Callable[[str, int], Sequence[float]],
    reasons: Sequence[str],
) -> list[ScoreRow]:
    rows: list[ScoreRow] = []
    symmetric = against != "gold"

    def row(level: str, metric: str, value: float, detail: dict[str, Any] | None = None) -> None:
        rows.append(ScoreRow(level, metric, against, a, b, _finite(value), detail or {}))

    for x, y, iou in match_characters(a.characters, b.characters):
        if x is None or y is None:
            only = x or y
            assert only is not None
            detail: dict[str, Any] = {
                "unmatched": "a" if x else "b",
                "character": only.name,
                "skeleton": only.skeleton,
            }
            row("keypoints", "oks", 0.0, detail)
            row("keypoints", "pck", 0.0, detail)
            continue
        if not x.num_points or x.num_points != y.num_points:
            continue
        sigmas = sigmas_of(x.skeleton, x.num_points)
        scores = keypoint_agreement(x, y, sigmas, symmetric=symmetric)
        detail = {
            "character_a": x.name,
            "character_b": y.name,
            "skeleton": x.skeleton,
            "iou": round(iou, 4),
            "frames": scores.frames,
        }
        row("keypoints", "oks", scores.oks, {**detail, "per_joint": scores.per_joint})
        row("keypoints", "pck", scores.pck, detail)
        row("keypoints", "joint_error", scores.joint_error, detail)
    prf = metrics.boundary_prf(
        metrics.shots_to_boundaries(b.shots), metrics.shots_to_boundaries(a.shots), SHOT_TOLERANCE
    )
    shot_detail = {"precision": prf.precision, "recall": prf.recall, "tolerance": SHOT_TOLERANCE}
    row("shots", "boundary_f1", prf.f1, shot_detail)
    for level in CATEGORICAL_LEVELS:
        keys, (la, lb) = _columns(
            [categorical_units(a, level, reasons), categorical_units(b, level, reasons)]
        )
        if not keys:
            continue
        row(level, "kappa", metrics.cohen_kappa(la, lb), {"units": len(keys)})
        row(level, "agreement", raw_agreement(la, lb), {"units": len(keys)})
    for metric, (value, per_key) in caption_scores(
        a.captions, b.captions, symmetric=symmetric
    ).items():
        if per_key:
            row("captions", metric, value, {"fields": per_key})
    return rows


def _model_rows(human: AnnotationView, model: AnnotationView | None) -> list[ScoreRow]:
    rows = []
    for char in human.characters:
        correction = model_correction(char)
        if correction is None:
            continue
        detail = {"character": char.name, "skeleton": char.skeleton, "points": correction.points}
        rows += [
            ScoreRow("keypoints", "correction_px", "model", human, model,
                     _finite(correction.mean_px), {**detail, "per_joint": correction.per_joint_px}),
            ScoreRow("keypoints", "share_changed", "model", human, model,
                     _finite(correction.share_changed), detail),
        ]  # fmt: skip
    return rows


def compare_clip(
    humans: Sequence[AnnotationView],
    model: AnnotationView | None,
    gold: AnnotationView | None,
    sigmas_of: Callable[[str, int], Sequence[float]],
    *,
    majority: bool = False,
) -> list[ScoreRow]:
    """Every score of one clip: human pairs, each human vs the model and vs gold, the
    categorical alphas across humans, and the clip's adjudication score (with >= 2 humans)."""
    reasons = sorted(
        {
            r
            for v in [*humans, *(x for x in (model, gold) if x)]
            for r in v.quality.get("reasons") or []
        }
    )
    rows: list[ScoreRow] = []
    for a, b in itertools.combinations(humans, 2):
        rows += _pair_rows(a, b, "human", sigmas_of, reasons)
    for human in humans:
        if model is not None:
            rows += _pair_rows(human, model, "model", sigmas_of, reasons)
        rows += _model_rows(human, model)
        if gold is not None and gold.id != human.id:
            rows += _pair_rows(human, gold, "gold", sigmas_of, reasons)
    if len(humans) < 2:
        return rows
    level_scores: dict[str, float] = {}
    for level, metric in (("keypoints", "oks"), ("shots", "boundary_f1")):
        values = [
            r.value for r in rows if (r.level, r.metric, r.against) == (level, metric, "human")
        ]
        level_scores[level] = _mean([v for v in values if v is not None])
    for level in CATEGORICAL_LEVELS:
        keys, table = _columns([categorical_units(h, level, reasons) for h in humans])
        if not keys:
            continue
        settlement = settle(keys, table)
        detail: dict[str, Any] = {
            "units": settlement.units, "unanimous": settlement.unanimous,
            "by_majority": settlement.by_majority, "annotators": [h.annotator_id for h in humans],
        }  # fmt: skip
        if level in ("tags", "flags"):
            detail["resolved"] = {k: str(v) for k, v in settlement.resolved.items()}
        alpha = metrics.krippendorff_alpha_nominal(table)
        rows.append(ScoreRow(level, "alpha", "human", None, None, _finite(alpha), detail))
        level_scores[level] = settlement.share(majority=majority)
    defined = {lvl: s for lvl, s in level_scores.items() if math.isfinite(s)}
    driver = min(defined, key=lambda lvl: defined[lvl]) if defined else None
    rows.append(
        ScoreRow(
            "clip", "adjudication_score", "human", None, None,
            defined[driver] if driver else None,
            {"levels": {k: round(v, 4) for k, v in defined.items()}, "driver": driver,
             "annotators": len(humans), "majority_vote": majority},
        )
    )  # fmt: skip
    return rows


def majority_tags(views: Sequence[AnnotationView]) -> dict[str, Any]:
    """Each tag group's 2-of-3 majority value across ``views`` (groups without one are left out)."""
    out: dict[str, Any] = {}
    for group in sorted({g for v in views for g in v.tags}):
        winner = metrics.majority_vote([_label(v.tags.get(group)) for v in views], MAJORITY)
        if winner is None:
            continue
        out[group] = next(v.tags[group] for v in views if _label(v.tags.get(group)) == winner)
    return out
