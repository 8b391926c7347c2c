"""Agreement metrics against independent references on the same data.

References: pycocotools (OKS), the ``krippendorff`` package and Krippendorff's published
worked example (alpha), scikit-learn (kappa), scipy's assignment solver (boundary
matching), rouge_score (ROUGE-L) and a from-the-paper chrF (Popović 2015).
"""

from __future__ import annotations

import math
import random
from collections import Counter

import krippendorff
import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval, Params
from rouge_score import rouge_scorer
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import cohen_kappa_score

from app.agreement import metrics as m

# COCO's 17 body sigmas, as pycocotools ships them.
COCO17_SIGMAS = Params(iouType="keypoints").kpt_oks_sigmas


def _sigmas(k: int, rng: np.random.Generator) -> np.ndarray:
    return COCO17_SIGMAS if k == 17 else rng.uniform(0.005, 0.11, size=k)


def _random_pose(rng: np.random.Generator, k: int, labelled_share: float) -> np.ndarray:
    """A canonical float32 (K, 4) pose: x, y, v in {0,1,2}, conf."""
    pose = np.zeros((k, 4), dtype=np.float32)
    pose[:, :2] = rng.uniform(20, 480, size=(k, 2))
    labelled = rng.random(k) < labelled_share
    pose[:, 2] = np.where(labelled, rng.integers(1, 3, size=k), 0)
    pose[:, 3] = rng.random(k)
    return pose


def _coco_keypoints(pose: np.ndarray, v: np.ndarray) -> list[float]:
    return np.column_stack([pose[:, :2].astype(np.float64), v]).ravel().tolist()


# --------------------------------------------------------------------------- OKS


@pytest.mark.parametrize("k", [17, 133])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_oks_matches_pycocotools(k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    sigmas = _sigmas(k, rng)
    # Ground truths with mostly, rarely and never labelled points (COCO's box fallback).
    gts = [_random_pose(rng, k, share) for share in (0.9, 0.5, 0.1, 0.0)]
    gts[-1][:, 2] = 0
    boxes = [m.Box(*rng.uniform(50, 200, size=4)) for _ in gts]
    areas = rng.uniform(2_000, 60_000, size=len(gts))
    dts = []
    for scale in (2.0, 10.0, 40.0):
        base = gts[int(rng.integers(0, 3))]
        dt = base.copy()
        dt[:, :2] += rng.normal(0, scale, size=(k, 2)).astype(np.float32)
        dt[:, 2] = 2
        dts.append(dt)

    coco = COCO()
    coco.dataset = {
        "images": [{"id": 1, "width": 640, "height": 480}],
        "categories": [{"id": 1, "name": "character", "keypoints": [str(i) for i in range(k)]}],
        "annotations": [
            {
                "id": i + 1,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "keypoints": _coco_keypoints(gt, gt[:, 2]),
                "num_keypoints": int((gt[:, 2] > 0).sum()),
                "area": float(areas[i]),
                "bbox": [box.x, box.y, box.w, box.h],
            }
            for i, (gt, box) in enumerate(zip(gts, boxes, strict=True))
        ],
    }
    coco.createIndex()
    results = coco.loadRes(
        [
            {
                "image_id": 1,
                "category_id": 1,
                "score": 1.0 - 0.1 * i,
                "keypoints": _coco_keypoints(dt, np.ones(k)),
            }
            for i, dt in enumerate(dts)
        ]
    )
    evaluator = COCOeval(coco, results, "keypoints")
    evaluator.params.kpt_oks_sigmas = sigmas
    evaluator.evaluate()
    reference = evaluator.ious[(1, 1)]  # rows: detections by descending score

    ours = np.array(
        [
            [
                m.oks(gt, dt, sigmas, float(area), gt_box=box)
                for gt, area, box in zip(gts, areas, boxes, strict=True)
            ]
            for dt in dts
        ]
    )
    np.testing.assert_allclose(ours, reference, atol=1e-6, rtol=0)
    # The data spans the range, so a wrong variance or area term would show.
    assert reference.min() < 0.2 and reference.max() > 0.8


def test_oks_hand_cases() -> None:
    sigmas = np.array([0.1, 0.1, 0.1])
    gt = np.array([[0, 0, 2, 1], [30, 0, 2, 1], [0, 40, 1, 1]], dtype=np.float32)
    assert m.oks(gt, gt, sigmas, area=100.0) == pytest.approx(1.0)

    # (2 sigma)^2 = 0.04 and area 100: a displacement of sqrt(8) px gives e = 1.
    moved = gt.copy()
    moved[0, :2] += [2.0, 2.0]
    assert m.oks(gt, moved, sigmas, area=100.0) == pytest.approx((math.exp(-1) + 2) / 3, abs=1e-6)
    per_joint = m.oks_per_joint(gt, moved, sigmas, area=100.0)
    np.testing.assert_allclose(per_joint, [math.exp(-1), 1, 1], atol=1e-6)
    # A bigger object forgives the same displacement.
    assert m.oks(gt, moved, sigmas, area=400.0) > m.oks(gt, moved, sigmas, area=100.0)

    # A point the gt did not label is not counted, wherever dt puts it.
    gt_partial = gt.copy()
    gt_partial[2, 2] = 0
    far = gt.copy()
    far[2, :2] = [900, 900]
    assert m.oks(gt_partial, far, sigmas, area=100.0) == pytest.approx(1.0)
    assert math.isnan(m.oks_per_joint(gt_partial, far, sigmas, area=100.0)[2])
    assert m.oks(gt, far, sigmas, area=100.0) == pytest.approx(2 / 3)

    # A point dt left unlabelled is a miss, unless its visibility is ignored COCO-style.
    unlabelled = gt.copy()
    unlabelled[1, 2] = 0
    assert m.oks(gt, unlabelled, sigmas, area=100.0) == pytest.approx(2 / 3)
    assert m.oks(gt, unlabelled[:, :2], sigmas, area=100.0) == pytest.approx(1.0)

    # No labelled gt point and no box: undefined.
    empty = gt.copy()
    empty[:, 2] = 0
    assert math.isnan(m.oks(empty, gt, sigmas, area=100.0))
    with pytest.raises(ValueError):
        m.oks(gt, gt, sigmas[:2], area=100.0)


def test_oks_track_skips_empty_frames_and_penalises_one_sided_ones() -> None:
    sigmas = COCO17_SIGMAS
    rng = np.random.default_rng(5)
    pose = _random_pose(rng, 17, 1.0)
    nothing = pose.copy()
    nothing[:, 2] = 0
    shifted = pose.copy()
    shifted[:, :2] += 5
    frames_a = [pose, nothing, pose, nothing, pose]
    frames_b = [pose, nothing, nothing, pose, shifted]
    score = m.oks_track(frames_a, frames_b, sigmas)

    expected_last = m.oks(pose, shifted, sigmas, m.box_area_from_points(pose))
    assert 0 < expected_last < 1
    assert score.per_frame == pytest.approx({0: 1.0, 2: 0.0, 3: 0.0, 4: expected_last})
    assert score.mean == pytest.approx((1.0 + expected_last) / 4)

    areas = [1e6] * 5
    assert m.oks_track(frames_a, frames_b, sigmas, areas).per_frame[4] > expected_last
    assert math.isnan(m.oks_track([nothing], [nothing], sigmas).mean)


def test_box_and_area_from_labelled_points_only() -> None:
    pose = np.array([[10, 20, 2, 1], [40, 30, 1, 1], [500, 500, 0, 1]], dtype=np.float32)
    box = m.box_from_points(pose)
    assert box == m.Box(10, 20, 30, 10)
    assert box.max_side == 30
    assert m.box_area_from_points(pose) == 300
    pose[:, 2] = 0
    assert m.box_from_points(pose) is None
    assert m.box_area_from_points(pose) == 0.0


def test_pck_three_points() -> None:
    gt = np.array([[0, 0, 2, 1], [10, 0, 2, 1], [0, 10, 2, 1]], dtype=np.float32)
    dt = gt.copy()
    dt[0, :2] += [3, 0]  # 3 px: within 0.5 * 10
    dt[1, :2] += [3, 4]  # exactly 5 px: the threshold counts as correct
    dt[2, :2] += [6, 0]  # 6 px: wrong
    assert m.pck(gt, dt, alpha=0.5) == pytest.approx(2 / 3)
    assert m.pck(gt, dt, alpha=0.5, ref_size=20.0) == pytest.approx(1.0)
    assert m.pck(gt, dt, alpha=0.1) == pytest.approx(0.0)
    dt[0, 2] = 0  # not labelled by dt: a miss
    assert m.pck(gt, dt, alpha=0.5) == pytest.approx(1 / 3)
    gt[:, 2] = 0
    assert math.isnan(m.pck(gt, dt, alpha=0.5))


def test_mean_joint_error_over_points_both_label() -> None:
    gt = np.array([[0, 0, 2, 1], [10, 0, 2, 1], [0, 10, 0, 1]], dtype=np.float32)
    dt = np.array([[3, 4, 2, 1], [10, 0, 0, 1], [100, 10, 2, 1]], dtype=np.float32)
    assert m.mean_joint_error(gt, dt) == pytest.approx(5.0)
    dt[1, 2] = 2
    assert m.mean_joint_error(gt, dt) == pytest.approx(2.5)
    dt[:, 2] = 0
    assert math.isnan(m.mean_joint_error(gt, dt))


def test_correction_distance_and_shares() -> None:
    model = np.array(
        [[0, 0, 2, 0.9], [10, 0, 2, 0.9], [20, 0, 2, 0.4], [30, 0, 2, 0.3], [0, 0, 0, 0]],
        dtype=np.float32,
    )
    final = model.copy()
    final[1, :2] += [0.6, 0.8]  # moved 1 px
    final[2, :2] += [6, 8]  # moved 10 px
    final[3, 2] = 0  # removed
    final[4] = [50, 50, 2, 1]  # added
    distances = m.correction_distance(model, final)
    np.testing.assert_allclose(distances[:3], [0, 1, 10], atol=1e-6)
    assert np.isnan(distances[3:]).all()

    # Of 5 points labelled on either side: moved 10 px, removed and added changed at 2 px.
    assert m.share_changed(model, final, tol_px=2) == pytest.approx(3 / 5)
    assert m.share_changed(model, final, tol_px=0.5) == pytest.approx(4 / 5)
    # Of the model's 4 points, two survived within 2 px.
    assert m.share_accepted_unchanged(model, final, tol_px=2) == pytest.approx(2 / 4)
    final[0, 2] = 1  # re-flagged visible -> hidden
    assert m.share_accepted_unchanged(model, final, tol_px=2) == pytest.approx(1 / 4)
    assert m.share_changed(model, model, tol_px=0) == 0.0
    assert m.share_accepted_unchanged(model, model, tol_px=0) == 1.0


# --------------------------------------------------------------------------- shots


def test_boundary_prf_hand_cases() -> None:
    result = m.boundary_prf([10, 50, 100], [12, 49, 51, 200], tolerance=2)
    assert (result.matched, result.n_reference, result.n_hypothesis) == (2, 3, 4)
    assert result.precision == pytest.approx(2 / 4)
    assert result.recall == pytest.approx(2 / 3)
    assert result.f1 == pytest.approx(2 * (1 / 2) * (2 / 3) / (1 / 2 + 2 / 3))

    assert m.boundary_prf([10], [13], tolerance=3).f1 == 1.0  # edge of the window counts
    assert m.boundary_prf([10], [13], tolerance=2).f1 == 0.0
    assert m.boundary_prf([10], [7], tolerance=3).f1 == 1.0
    # Pairing the closest pair first (13-12) would lose 10-12; the matching keeps both.
    assert m.boundary_prf([10, 13], [12, 15], tolerance=2).matched == 2
    # One-to-one: two hypotheses cannot both claim one reference cut.
    assert m.boundary_prf([10], [9, 11], tolerance=2).precision == pytest.approx(0.5)

    assert m.boundary_prf([], [], tolerance=2) == m.PRF(1.0, 1.0, 1.0, 0, 0, 0)
    assert m.boundary_prf([], [5], tolerance=2).f1 == 0.0
    assert m.boundary_prf([5], [], tolerance=2).f1 == 0.0


def _max_matching(reference: list[int], hypothesis: list[int], tolerance: int) -> int:
    if not reference or not hypothesis:
        return 0
    within = np.array(
        [[abs(r - h) <= tolerance for h in hypothesis] for r in reference], dtype=float
    )
    rows, cols = linear_sum_assignment(within, maximize=True)
    return int(within[rows, cols].sum())


@pytest.mark.parametrize("seed", range(5))
def test_boundary_matching_is_maximal(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(60):
        reference = sorted(set(rng.sample(range(300), rng.randint(0, 25))))
        hypothesis = sorted(set(rng.sample(range(300), rng.randint(0, 25))))
        tolerance = rng.randint(0, 8)
        result = m.boundary_prf(reference, hypothesis, tolerance)
        assert result.matched == _max_matching(reference, hypothesis, tolerance)


def test_shots_to_boundaries() -> None:
    assert m.shots_to_boundaries([[25, 40], [0, 10], [10, 25]]) == [10, 25]
    assert m.shots_to_boundaries([[0, 100]]) == []
    assert m.shots_to_boundaries([]) == []


# --------------------------------------------------------------------------- categories


def test_alpha_krippendorff_2011_worked_example() -> None:
    """Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C:
    4 observers, 12 units, nominal data with missing values; published alpha = 0.743."""
    x = None
    data = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, x, x, x],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, x, 3],
        [x, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, x],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, x],
    ]
    assert m.krippendorff_alpha_nominal(data) == pytest.approx(0.743, abs=5e-4)


def _package_alpha(data: list[list[str | None]]) -> float:
    codes = {label: i for i, label in enumerate(sorted({v for row in data for v in row if v}))}
    matrix = [[np.nan if v is None else codes[v] for v in row] for row in data]
    return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"))


@pytest.mark.parametrize("seed", range(6))
def test_alpha_matches_krippendorff_package(seed: int) -> None:
    rng = random.Random(seed)
    labels = ["joy", "sadness", "anger", "fear", "neutral"][: rng.randint(2, 5)]
    coders, units = rng.randint(2, 5), rng.randint(8, 40)
    truth = [rng.choice(labels) for _ in range(units)]
    data: list[list[str | None]] = [
        [
            None if rng.random() < 0.2 else (t if rng.random() < 0.7 else rng.choice(labels))
            for t in truth
        ]
        for _ in range(coders)
    ]
    ours = m.krippendorff_alpha_nominal(data)
    assert ours == pytest.approx(_package_alpha(data), abs=1e-6)


def test_alpha_edges() -> None:
    assert m.krippendorff_alpha_nominal([["a", "b", "c"], ["a", "b", "c"]]) == pytest.approx(1.0)
    disagree = m.krippendorff_alpha_nominal([["a", "b", "a", "b"], ["b", "a", "b", "a"]])
    assert disagree < 0
    assert math.isnan(m.krippendorff_alpha_nominal([["a", "a"], ["a", "a"]]))
    assert math.isnan(m.krippendorff_alpha_nominal([["a", None], [None, "b"]]))
    with pytest.raises(ValueError):
        m.krippendorff_alpha_nominal([["a", "b"], ["a"]])


KRIPPENDORFF_2011: list[list[float | None]] = [  # the worked example above, None missing
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


@pytest.mark.parametrize(
    ("level", "published"),
    [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)],
)
def test_alpha_levels_on_krippendorffs_worked_example(
    level: m.MeasurementLevel, published: float
) -> None:
    """Krippendorff (2011), section C: the same data at each level of measurement."""
    assert m.krippendorff_alpha(KRIPPENDORFF_2011, level) == pytest.approx(published, abs=5e-4)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
@pytest.mark.parametrize("seed", range(6))
def test_alpha_levels_match_krippendorff_package_with_missing_values(
    level: m.MeasurementLevel, seed: int
) -> None:
    """Quality scores 1-5 or emotion intensities 0-1 from 2-5 coders, a fifth missing."""
    rng = random.Random(seed)
    scores = [1.0, 2.0, 3.0, 4.0, 5.0] if seed % 2 else [0.0, 0.25, 0.5, 0.75, 1.0]
    coders, units = rng.randint(2, 5), rng.randint(8, 40)
    truth = [rng.randrange(len(scores)) for _ in range(units)]
    data: list[list[float | None]] = [
        [
            None
            if rng.random() < 0.2
            else scores[min(len(scores) - 1, max(0, t + rng.choice([-1, 0, 0, 0, 1])))]
            for t in truth
        ]
        for _ in range(coders)
    ]
    matrix = [[np.nan if v is None else v for v in row] for row in data]
    reference = krippendorff.alpha(reliability_data=matrix, level_of_measurement=level)
    ours = m.krippendorff_alpha(data, level)
    assert ours == pytest.approx(float(reference), abs=1e-9)


def test_alpha_levels_credit_near_misses_and_keep_nominal_edges() -> None:
    off_by_one: list[list[float | None]] = [[1, 2, 3, 4, 5, 1, 5], [2, 1, 4, 3, 5, 1, 5]]
    nominal = m.krippendorff_alpha(off_by_one, "nominal")
    assert m.krippendorff_alpha(off_by_one, "ordinal") > nominal
    assert m.krippendorff_alpha(off_by_one, "interval") > nominal
    levels: tuple[m.MeasurementLevel, ...] = ("ordinal", "interval", "ratio")
    for level in levels:
        assert math.isnan(m.krippendorff_alpha([[3, 3], [3, 3]], level))
        assert math.isnan(m.krippendorff_alpha([[1, None], [None, 2]], level))
        assert math.isnan(m.krippendorff_alpha([], level))
        with pytest.raises(ValueError):
            m.krippendorff_alpha([[1, 2], [1]], level)


@pytest.mark.parametrize("seed", range(6))
def test_kappa_matches_scikit_learn(seed: int) -> None:
    rng = random.Random(seed)
    labels = ["day", "night", "dusk", "unknown"][: rng.randint(2, 4)]
    a = [rng.choice(labels) for _ in range(rng.randint(10, 60))]
    b = [x if rng.random() < 0.6 else rng.choice(labels) for x in a]
    assert m.cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-6)


def test_kappa_edges() -> None:
    assert m.cohen_kappa(["a", "b", "a", "c"], ["a", "b", "a", "c"]) == pytest.approx(1.0)
    # Skipped items are dropped on both sides.
    a, b = ["a", "b", None, "a", "b"], ["a", "a", "b", "a", "b"]
    expected = cohen_kappa_score(["a", "b", "a", "b"], ["a", "a", "a", "b"])
    assert m.cohen_kappa(a, b) == pytest.approx(expected, abs=1e-6)
    assert math.isnan(m.cohen_kappa(["a", "a"], ["a", "a"]))
    assert math.isnan(m.cohen_kappa([None], ["a"]))
    with pytest.raises(ValueError):
        m.cohen_kappa(["a"], ["a", "b"])


def test_majority_vote() -> None:
    assert m.majority_vote(["joy", "joy", "fear"]) == "joy"
    assert m.majority_vote(["joy", "fear", "anger"]) is None
    assert m.majority_vote(["joy", "joy", "fear", "fear"]) is None
    assert m.majority_vote([None, "joy", "joy"]) == "joy"
    assert m.majority_vote(["joy", "joy", "fear"], min_agree=3) is None
    assert m.majority_vote([]) is None


# --------------------------------------------------------------------------- captions

CAPTIONS = [
    "A small orange cat chases a red ball across the kitchen floor.",
    "The cat runs after a ball in the kitchen.",
    "Two children wave goodbye at a train station at dusk.",
    "A blue robot dances on a stage under bright spotlights.",
    "The robot is dancing on stage.",
    "Close-up of a girl laughing; the camera pans left to her dog.",
]


def _paper_chrf(hypothesis: str, reference: str, order: int = 6, beta: float = 2.0) -> float:
    """chrF as Popović (2015) defines it: character n-gram precision and recall averaged
    over n = 1..6 (spaces removed), combined as F-beta."""
    hyp, ref = "".join(hypothesis.split()), "".join(reference.split())
    precisions, recalls = [], []
    for n in range(1, order + 1):
        h = Counter(hyp[i : i + n] for i in range(len(hyp) - n + 1))
        r = Counter(ref[i : i + n] for i in range(len(ref) - n + 1))
        if h and r:
            overlap = sum((h & r).values())
            precisions.append(overlap / sum(h.values()))
            recalls.append(overlap / sum(r.values()))
    p, r_ = np.mean(precisions), np.mean(recalls)
    return 0.0 if p + r_ == 0 else float((1 + beta**2) * p * r_ / (beta**2 * p + r_))


def test_chrf_matches_the_definition() -> None:
    for hyp in CAPTIONS:
        for ref in CAPTIONS:
            assert m.chrf(hyp, ref) == pytest.approx(_paper_chrf(hyp, ref), abs=1e-6)
    assert m.chrf(CAPTIONS[0], CAPTIONS[0]) == pytest.approx(1.0)
    assert m.chrf(CAPTIONS[1], CAPTIONS[0]) > m.chrf(CAPTIONS[2], CAPTIONS[0])
    assert m.chrf("", "  ") == 1.0
    assert m.chrf("", CAPTIONS[0]) == 0.0


def test_rouge_l_matches_rouge_score() -> None:
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    rng = random.Random(3)
    words = " ".join(CAPTIONS).split()
    pairs = [(h, r) for h in CAPTIONS for r in CAPTIONS]
    pairs += [
        (" ".join(rng.sample(words, rng.randint(1, 12))), " ".join(rng.sample(words, 10)))
        for _ in range(40)
    ]
    for hyp, ref in pairs:
        expected = scorer.score(ref, hyp)["rougeL"].fmeasure  # score(target, prediction)
        assert m.rouge_l(hyp, ref) == pytest.approx(expected, abs=1e-6)


def test_rouge_l_hand_case() -> None:
    # LCS "the cat on mat" = 4 of 6 tokens on each side.
    assert m.rouge_l("The cat sat on the mat", "the cat lay on a mat.") == pytest.approx(2 / 3)
    assert m.rouge_l("same words here", "Same words, here!") == pytest.approx(1.0)
    assert m.rouge_l("nothing shared", "entirely different") == 0.0
    assert m.rouge_l("...", "") == 1.0


def test_embedding_cosine_uses_the_given_embedding() -> None:
    def letters(texts: list[str]) -> np.ndarray:
        return np.array([[t.count("a"), t.count("b")] for t in texts], dtype=float)

    assert m.embedding_cosine("a", "ab", letters) == pytest.approx(1 / math.sqrt(2))
    assert m.embedding_cosine("aab", "aab", letters) == pytest.approx(1.0)
    assert math.isnan(m.embedding_cosine("a", "xyz", letters))


# --------------------------------------------------------------------------- rollups


def test_summarize_skips_missing_values() -> None:
    summary = m.summarize([*range(1, 11), None, math.nan])
    assert summary == pytest.approx({"mean": 5.5, "median": 5.5, "p10": 1.9, "p90": 9.1, "n": 10})
    empty = m.summarize([None])
    assert empty["n"] == 0 and math.isnan(empty["mean"])
