"""Agreement metrics: pure functions with no database, shared by workers, CLI and web.

Poses are CelLabel's canonical per-frame arrays, one row per skeleton point:
``x, y`` in pixels, ``v`` (COCO visibility: 0 not labelled, 1 labelled but hidden,
2 visible) and ``conf``. Functions accept any float array of shape (K, >=3), and
(K, 2) where only coordinates matter.

A point counts as *labelled* when its coordinates are finite and, if the array has a
``v`` column, ``v > 0``. A labelled-nothing point is never compared by its stored
coordinates, which are meaningless: on the compared side (``dt``) it is a miss.

Scores that are undefined (nothing to compare, a single category in kappa/alpha) are
returned as ``nan``; callers store them as NULL rather than as a misleading 0 or 1.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, TypedDict, TypeVar

import krippendorff
import numpy as np
import numpy.typing as npt
import sacrebleu

FloatArray = npt.NDArray[np.float64]
Label = TypeVar("Label", bound=Hashable)
MeasurementLevel = Literal["nominal", "ordinal", "interval", "ratio"]

# COCO's guard against a zero object area (np.spacing(1) in COCOeval.computeOks).
_AREA_EPS = float(np.spacing(1))


# --------------------------------------------------------------------------- poses


def _pose(pose: npt.ArrayLike, *, need_v: bool = False) -> FloatArray:
    array = np.asarray(pose, dtype=np.float64)
    width = 3 if need_v else 2
    if array.ndim != 2 or array.shape[1] < width:
        raise ValueError(f"pose must have shape (K, >={width}), got {array.shape}")
    return array


def _pair(
    a: npt.ArrayLike, b: npt.ArrayLike, *, v_a: bool, v_b: bool
) -> tuple[FloatArray, FloatArray]:
    first, second = _pose(a, need_v=v_a), _pose(b, need_v=v_b)
    if first.shape[0] != second.shape[0]:
        raise ValueError(f"poses differ in point count: {first.shape[0]} != {second.shape[0]}")
    return first, second


def labelled_mask(pose: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Which points are labelled: finite coordinates and ``v > 0`` when there is a v column."""
    array = _pose(pose)
    mask = np.isfinite(array[:, :2]).all(axis=1)
    if array.shape[1] >= 3:
        mask &= array[:, 2] > 0
    return mask


def labelled_xy(pose: npt.ArrayLike) -> FloatArray:
    """(K, 2) coordinates with NaN for every point that is not labelled."""
    array = _pose(pose)
    xy = array[:, :2].copy()
    xy[~labelled_mask(array)] = np.nan
    return xy


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in pixels, COCO order (x, y, width, height)."""

    x: float
    y: float
    w: float
    h: float

    @property
    def area(self) -> float:
        return self.w * self.h

    @property
    def max_side(self) -> float:
        return max(self.w, self.h)


def box_from_points(pose: npt.ArrayLike) -> Box | None:
    """Tight box around the labelled points, or None when no point is labelled."""
    xy = labelled_xy(pose)
    xy = xy[np.isfinite(xy[:, 0])]
    if len(xy) == 0:
        return None
    (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
    return Box(float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def box_area_from_points(pose: npt.ArrayLike) -> float:
    """Object scale for OKS when no box or mask is stored: the labelled points' box area.

    COCO uses the segmentation area, which for people is roughly 0.5-0.7 of this box,
    so OKS from box areas is a little more lenient than COCO's; 0.0 when nothing is
    labelled.
    """
    box = box_from_points(pose)
    return 0.0 if box is None else box.area


def _similarity(squared: FloatArray, sigmas: npt.ArrayLike, area: float) -> FloatArray:
    """COCO's per-point exp(-e) from squared pixel distances; a NaN distance (miss) scores 0."""
    variances = (2 * np.asarray(sigmas, dtype=np.float64)) ** 2
    if variances.shape != squared.shape:
        raise ValueError(f"need {squared.shape[0]} sigmas, got shape {variances.shape}")
    e = squared / variances / (area + _AREA_EPS) / 2
    return np.nan_to_num(np.exp(-e), nan=0.0)


def _oks_terms(gt: FloatArray, dt: FloatArray, sigmas: npt.ArrayLike, area: float) -> FloatArray:
    return _similarity(((labelled_xy(dt) - gt[:, :2]) ** 2).sum(axis=1), sigmas, area)


def oks(
    gt: npt.ArrayLike,
    dt: npt.ArrayLike,
    sigmas: npt.ArrayLike,
    area: float,
    gt_box: Box | None = None,
) -> float:
    """Object keypoint similarity of ``dt`` against ``gt`` as COCOeval.computeOks defines it.

    e_i = d_i^2 / (2 sigma_i)^2 / (area + eps) / 2, averaged exp(-e_i) over the points
    labelled in ``gt``. ``area`` is the gt object's area (COCO's ``area`` field, or
    :func:`box_area_from_points`). A ``dt`` point that is not labelled (NaN, or ``v == 0``
    when ``dt`` has a v column) scores 0; pass ``dt[:, :2]`` to ignore dt's visibility
    the way COCO does. When ``gt`` has no labelled point COCO measures each dt point's
    distance outside ``gt_box`` enlarged by its own size on every side; without a box
    the score is NaN.
    """
    g, d = _pair(gt, dt, v_a=True, v_b=False)
    labelled = labelled_mask(g)
    if labelled.any():
        return float(_oks_terms(g, d, sigmas, area)[labelled].mean())
    if gt_box is None:
        return math.nan
    low = np.array([gt_box.x - gt_box.w, gt_box.y - gt_box.h])
    high = np.array([gt_box.x + 2 * gt_box.w, gt_box.y + 2 * gt_box.h])
    xy = labelled_xy(d)
    outside = np.maximum(0.0, low - xy) + np.maximum(0.0, xy - high)
    return float(_similarity((outside**2).sum(axis=1), sigmas, area).mean())


def oks_per_joint(
    gt: npt.ArrayLike, dt: npt.ArrayLike, sigmas: npt.ArrayLike, area: float
) -> FloatArray:
    """Per-point similarity exp(-e_i), NaN where gt has no label: which joints people disagree on.

    Its mean over non-NaN entries is :func:`oks`.
    """
    g, d = _pair(gt, dt, v_a=True, v_b=False)
    terms = _oks_terms(g, d, sigmas, area)
    terms[~labelled_mask(g)] = np.nan
    return terms


@dataclass(frozen=True)
class TrackScore:
    """Mean per-frame score of two tracks; ``per_frame`` maps position in the sequences to score."""

    mean: float
    per_frame: dict[int, float]


def oks_track(
    frames_a: Sequence[npt.ArrayLike],
    frames_b: Sequence[npt.ArrayLike],
    sigmas: npt.ArrayLike,
    areas: Sequence[float] | None = None,
) -> TrackScore:
    """OKS of track ``b`` against reference track ``a`` (same frames, same skeleton).

    Frames where neither side labelled a point are skipped; a frame labelled by only one
    side scores 0. ``areas`` are the reference's object areas per frame, by default
    :func:`box_area_from_points` of ``a``. OKS is not symmetric: for two peers, average
    ``oks_track(a, b)`` and ``oks_track(b, a)`` if neither is the reference.
    """
    if len(frames_a) != len(frames_b):
        raise ValueError(f"tracks differ in length: {len(frames_a)} != {len(frames_b)}")
    if areas is not None and len(areas) != len(frames_a):
        raise ValueError("need one area per frame")
    per_frame: dict[int, float] = {}
    for index, (a, b) in enumerate(zip(frames_a, frames_b, strict=True)):
        in_a, in_b = labelled_mask(a).any(), labelled_mask(b).any()
        if not in_a and not in_b:
            continue
        if not in_a:
            per_frame[index] = 0.0
            continue
        area = box_area_from_points(a) if areas is None else areas[index]
        per_frame[index] = oks(a, b, sigmas, area)
    mean = float(np.mean(list(per_frame.values()))) if per_frame else math.nan
    return TrackScore(mean=mean, per_frame=per_frame)


def pck(gt: npt.ArrayLike, dt: npt.ArrayLike, alpha: float, ref_size: float | None = None) -> float:
    """Share of gt-labelled points whose dt point lies within ``alpha * ref_size`` pixels.

    ``ref_size`` defaults to the longest side of the gt points' box (PCK@alpha of the
    object size); pass a head segment or torso length for PCKh-style variants. The
    boundary counts as correct (distance <= threshold); a missing dt point is wrong.
    NaN when gt labels nothing.
    """
    g, d = _pair(gt, dt, v_a=False, v_b=False)
    labelled = labelled_mask(g)
    if not labelled.any():
        return math.nan
    if ref_size is None:
        box = box_from_points(g)
        ref_size = 0.0 if box is None else box.max_side
    distances = np.linalg.norm(labelled_xy(d) - g[:, :2], axis=1)[labelled]
    with np.errstate(invalid="ignore"):
        hits = distances <= alpha * ref_size
    return float(hits.mean())


def correction_distance(model: npt.ArrayLike, final: npt.ArrayLike) -> FloatArray:
    """Pixels each point moved from the model draft to the final; NaN unless both label it."""
    m, f = _pair(model, final, v_a=False, v_b=False)
    return np.linalg.norm(labelled_xy(m) - labelled_xy(f), axis=1)


def mean_joint_error(gt: npt.ArrayLike, dt: npt.ArrayLike) -> float:
    """Mean Euclidean error in pixels over points labelled on both sides (NaN if none)."""
    distances = correction_distance(gt, dt)
    comparable = np.isfinite(distances)
    return float(distances[comparable].mean()) if comparable.any() else math.nan


def _kept(model: FloatArray, final: FloatArray, tol_px: float) -> npt.NDArray[np.bool_]:
    """Points both label with the same visibility and at most ``tol_px`` apart."""
    distances = correction_distance(model, final)
    with np.errstate(invalid="ignore"):
        near = distances <= tol_px
    return near & (model[:, 2] == final[:, 2])


def share_changed(model: npt.ArrayLike, final: npt.ArrayLike, tol_px: float) -> float:
    """Share of points labelled on either side that a person added, removed, re-flagged or moved.

    Moved means more than ``tol_px`` pixels; changing v between hidden and visible counts.
    NaN when neither side labels anything.
    """
    m, f = _pair(model, final, v_a=True, v_b=True)
    either = labelled_mask(m) | labelled_mask(f)
    if not either.any():
        return math.nan
    return float((~_kept(m, f, tol_px))[either].mean())


def share_accepted_unchanged(model: npt.ArrayLike, final: npt.ArrayLike, tol_px: float) -> float:
    """Share of the model's labelled points that the final annotation kept as they were.

    Kept means still labelled, same v, within ``tol_px`` pixels. Its denominator is the
    model's points, so it is not ``1 - share_changed`` when people add points. NaN when
    the model labelled nothing.
    """
    m, f = _pair(model, final, v_a=True, v_b=True)
    proposed = labelled_mask(m)
    if not proposed.any():
        return math.nan
    return float(_kept(m, f, tol_px)[proposed].mean())


# --------------------------------------------------------------------------- shots


@dataclass(frozen=True)
class PRF:
    precision: float
    recall: float
    f1: float
    matched: int
    n_reference: int
    n_hypothesis: int


def shots_to_boundaries(shots: Iterable[Sequence[int]]) -> list[int]:
    """Cut frames of ``[start, end)`` shots: every shot's start except the earliest one."""
    starts = sorted({int(shot[0]) for shot in shots})
    return starts[1:]


def boundary_prf(reference: Sequence[int], hypothesis: Sequence[int], tolerance: int) -> PRF:
    """Precision, recall and F1 of shot boundaries matched one-to-one within ±tolerance frames.

    The matching has the maximum number of pairs: walking both sorted lists, each
    reference cut takes the earliest unused hypothesis cut in its window, which is
    optimal because every window has the same width. Duplicate frames count once.
    With nothing to find recall is 1, with nothing proposed precision is 1, so two
    empty lists score 1 and one empty list against a non-empty one scores F1 = 0.
    """
    ref, hyp = sorted(set(reference)), sorted(set(hypothesis))
    matched = i = j = 0
    while i < len(ref) and j < len(hyp):
        if hyp[j] < ref[i] - tolerance:
            j += 1
        elif hyp[j] > ref[i] + tolerance:
            i += 1
        else:
            matched, i, j = matched + 1, i + 1, j + 1
    precision = matched / len(hyp) if hyp else 1.0
    recall = matched / len(ref) if ref else 1.0
    total = precision + recall
    f1 = 2 * precision * recall / total if total else 0.0
    return PRF(precision, recall, f1, matched, len(ref), len(hyp))


# --------------------------------------------------------------------------- categories


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def krippendorff_alpha_nominal(reliability_data: Sequence[Sequence[Hashable | None]]) -> float:
    """Krippendorff's alpha for nominal labels; rows are coders, columns units, None missing.

    Built from the coincidence matrix (Krippendorff 2011, "Computing Krippendorff's
    Alpha-Reliability"): alpha = 1 - (n - 1) * sum_{c!=k} o_ck / sum_{c!=k} n_c n_k, where
    units with fewer than two values are not pairable. NaN when fewer than two pairable
    values or only one category occurs (expected disagreement is zero).
    """
    widths = {len(row) for row in reliability_data}
    if len(widths) > 1:
        raise ValueError("every coder row needs the same number of units")
    observed_agreement = 0.0  # sum of o_cc
    totals: Counter[Hashable] = Counter()  # n_c
    for unit in zip(*reliability_data, strict=True):
        counts = Counter(value for value in unit if not _missing(value))
        pairable = sum(counts.values())
        if pairable < 2:
            continue
        totals.update(counts)
        observed_agreement += sum(c * (c - 1) for c in counts.values()) / (pairable - 1)
    n = sum(totals.values())
    expected = n * n - sum(c * c for c in totals.values())  # sum_{c!=k} n_c n_k
    if n < 2 or expected == 0:
        return math.nan
    return 1.0 - (n - 1) * (n - observed_agreement) / expected


def krippendorff_alpha(
    reliability_data: Sequence[Sequence[float | None]], level: MeasurementLevel
) -> float:
    """Krippendorff's alpha of numeric values at a level of measurement; rows are coders,
    columns units, None (or NaN) missing.

    ``nominal`` counts every difference alike (:func:`krippendorff_alpha_nominal`);
    ``ordinal`` weighs a difference by how many values lie between the two (ranks, e.g. a
    1-5 quality score), ``interval`` by the squared difference (e.g. emotion intensity) and
    ``ratio`` by the squared difference relative to the sum (values with a true zero). The
    three metric levels are computed by the ``krippendorff`` package. NaN when no unit has two
    values or only one value occurs, as for nominal data.
    """
    if len({len(row) for row in reliability_data}) > 1:
        raise ValueError("every coder row needs the same number of units")
    if level == "nominal":
        return krippendorff_alpha_nominal(reliability_data)
    matrix = np.array(
        [[math.nan if v is None else float(v) for v in row] for row in reliability_data],
        dtype=np.float64,
        ndmin=2,
    )
    pairable = matrix[:, (~np.isnan(matrix)).sum(axis=0) >= 2]
    if len(np.unique(pairable[~np.isnan(pairable)])) < 2:
        return math.nan
    return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement=level))


def cohen_kappa(a: Sequence[Hashable | None], b: Sequence[Hashable | None]) -> float:
    """Cohen's kappa of two raters over the same items; items either rater skipped are dropped.

    NaN when no item is left or both raters used a single, identical label (chance
    agreement is 1 and kappa is 0/0).
    """
    if len(a) != len(b):
        raise ValueError(f"raters differ in item count: {len(a)} != {len(b)}")
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if not _missing(x) and not _missing(y)]
    if not pairs:
        return math.nan
    n = len(pairs)
    observed = sum(x == y for x, y in pairs) / n
    count_a = Counter(x for x, _ in pairs)
    count_b = Counter(y for _, y in pairs)
    chance = sum(count_a[label] * count_b[label] for label in count_a) / (n * n)
    if chance >= 1.0:
        return math.nan
    return (observed - chance) / (1.0 - chance)


def majority_vote(labels: Iterable[Label | None], min_agree: int = 2) -> Label | None:
    """The label at least ``min_agree`` voters gave and no other label tied; None otherwise."""
    ranked = Counter(label for label in labels if not _missing(label)).most_common(2)
    if not ranked or ranked[0][1] < min_agree:
        return None
    if len(ranked) == 2 and ranked[1][1] == ranked[0][1]:
        return None
    return ranked[0][0]


# --------------------------------------------------------------------------- captions


def chrf(hypothesis: str, reference: str) -> float:
    """sacreBLEU's sentence chrF (char 6-grams, beta 2, spaces ignored) scaled to 0..1.

    Scaled so every similarity here shares one 0..1 range. Two texts without a
    non-space character score 1 (sacreBLEU says 0).
    """
    if not hypothesis.split() and not reference.split():
        return 1.0
    return float(sacrebleu.sentence_chrf(hypothesis, [reference]).score) / 100.0


_WORD = re.compile(r"[^\W_]+")


def caption_tokens(text: str) -> list[str]:
    """Lower-cased runs of letters and digits; the same tokens as rouge_score on ASCII text."""
    return _WORD.findall(text.lower())


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if token == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(hypothesis: str, reference: str) -> float:
    """ROUGE-L F1 over word tokens (longest common subsequence, no stemming), 0..1.

    Matches rouge_score's ``rougeL`` fmeasure on ASCII text; keeps non-ASCII words that
    rouge_score drops, and scores two token-less texts 1 where rouge_score says 0.
    """
    hyp, ref = caption_tokens(hypothesis), caption_tokens(reference)
    if not hyp and not ref:
        return 1.0
    lcs = _lcs_length(hyp, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(hyp), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def embedding_cosine(a: str, b: str, embed: Callable[[list[str]], npt.ArrayLike]) -> float:
    """Cosine similarity of two texts under ``embed`` (texts -> (n, d) vectors).

    NaN when a vector is zero. The embedding model is an optional install;
    this never loads one itself.
    """
    vectors = np.asarray(embed([a, b]), dtype=np.float64)
    if vectors.shape[0] != 2:
        raise ValueError(f"embed returned {vectors.shape[0]} vectors for 2 texts")
    norms = np.linalg.norm(vectors, axis=1)
    if not norms.all():
        return math.nan
    return float(vectors[0] @ vectors[1] / (norms[0] * norms[1]))


# --------------------------------------------------------------------------- rollups


class Summary(TypedDict):
    mean: float
    median: float
    p10: float
    p90: float
    n: int


def summarize(values: Iterable[float | None]) -> Summary:
    """Mean, median, 10th/90th percentiles and count of the finite values (None/NaN skipped)."""
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if finite.size == 0:
        return Summary(mean=math.nan, median=math.nan, p10=math.nan, p90=math.nan, n=0)
    p10, median, p90 = np.percentile(finite, [10, 50, 90])
    return Summary(
        mean=float(finite.mean()),
        median=float(median),
        p10=float(p10),
        p90=float(p90),
        n=int(finite.size),
    )
