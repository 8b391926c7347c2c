"""Two annotators disagree on one overlapped clip: scores land in PostgreSQL, the clip goes to
adjudication, and the adjudicated result becomes the clip's approved primary annotation.

Expected values come from the pure metrics (and the krippendorff package) applied to the
annotators' edits as this test made them, not from the stored rows.
"""

from __future__ import annotations

from typing import Any

import krippendorff
import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.agreement import adjudication, metrics, recompute
from app.agreement.adjudication_list import adjudication_list
from app.agreement.models import AgreementRollup, AgreementScore
from app.agreement.schemas import AdjudicationChoice
from app.annotations.models import Annotation, Character, NodeStatus, Revision, Shot
from app.core.jobs import PENDING_KEY
from app.media.drawings import DrawingRun
from app.projects.skeletons import COCO_WHOLEBODY
from tests.agreement.conftest import (
    CAPTION_A,
    CAPTION_B,
    FRAMES,
    clip_caption,
    poses,
    scores,
    track_of,
)


def test_disagreement_is_scored_adjudicated_and_approved(
    db: Session, scenario: dict[str, Any]
) -> None:
    clip, a, b = scenario["clip"], scenario["a"], scenario["b"]
    pending = [p[:3] for p in db.info.get(PENDING_KEY, [])]
    assert (recompute.RECOMPUTE_TASK, (clip.id,), "cheap") in pending

    result = recompute.recompute_clip(db, clip.id)
    assert result.humans == 2

    # keypoints: OKS of the two tracks, both directions averaged, COCO-WholeBody sigmas
    pa, pb = poses(db, track_of(db, a)), poses(db, track_of(db, b))
    frames_a = [pa[f] for f in range(FRAMES)]
    frames_b = [pb[f] for f in range(FRAMES)]
    sigmas = COCO_WHOLEBODY.sigmas
    expected_oks = (
        metrics.oks_track(frames_a, frames_b, sigmas).mean
        + metrics.oks_track(frames_b, frames_a, sigmas).mean
    ) / 2
    (oks_row,) = scores(db, clip.id, "keypoints", "oks", "human")
    assert oks_row.value == pytest.approx(expected_oks, rel=1e-9)
    assert 0.0 < expected_oks < 1.0
    per_joint = oks_row.detail["per_joint"]
    assert len(per_joint) == 133
    # bob unlabelled the left hand: alice's points there are misses, worse than the body
    assert per_joint[95] < per_joint[30]
    assert {oks_row.annotator_a_id, oks_row.annotator_b_id} == {a.annotator_id, b.annotator_id}
    assert oks_row.annotation_versions == {str(a.id): a.version, str(b.id): b.version}
    errors = [metrics.mean_joint_error(pb[f], pa[f]) for f in range(FRAMES)]
    (err_row,) = scores(db, clip.id, "keypoints", "joint_error", "human")
    assert err_row.value == pytest.approx(float(np.mean(errors)))
    # 17 body points 9 px apart (+3 vs -6) among the 133 - 21 points both label
    assert err_row.value == pytest.approx(9.0 * 17 / 112, abs=1e-3)

    # shots: alice cut at frame 3, bob did not cut at all
    (f1,) = scores(db, clip.id, "shots", "boundary_f1", "human")
    assert f1.value == metrics.boundary_prf([3], [], 2).f1 == 0.0

    # tags: agree on venue, not on time of day
    units = [["day", "outdoor"], ["night", "outdoor"]]
    codes = {"day": 0, "night": 1, "outdoor": 2}
    (alpha,) = scores(db, clip.id, "tags", "alpha", "human")
    reference = krippendorff.alpha(
        reliability_data=[[codes[v] for v in row] for row in units],
        level_of_measurement="nominal",
    )
    assert alpha.value == pytest.approx(reference)
    (kappa,) = scores(db, clip.id, "tags", "kappa", "human")
    assert kappa.value == pytest.approx(metrics.cohen_kappa(*units))

    # captions: chrF both ways averaged, ROUGE-L
    (chrf,) = scores(db, clip.id, "captions", "chrf", "human")
    chrf_ab = (metrics.chrf(CAPTION_A, CAPTION_B) + metrics.chrf(CAPTION_B, CAPTION_A)) / 2
    # both kept the model's caption of the first shot as it was: that field scores 1
    assert chrf.detail["fields"] == {
        "clip:short": pytest.approx(chrf_ab, abs=1e-4),
        "shot@0:narrative": 1.0,
    }
    assert chrf.value == pytest.approx((chrf_ab + 1.0) / 2, abs=1e-4)
    (rouge,) = scores(db, clip.id, "captions", "rouge_l", "human")
    assert rouge.value == pytest.approx((metrics.rouge_l(CAPTION_A, CAPTION_B) + 1.0) / 2, abs=1e-4)

    # human vs model: alice moved 17 body points by 3 px on every frame and kept the rest
    corrections = {
        r.annotator_a_id: r for r in scores(db, clip.id, "keypoints", "correction_px", "model")
    }
    changed = {
        r.annotator_a_id: r for r in scores(db, clip.id, "keypoints", "share_changed", "model")
    }
    assert corrections[a.annotator_id].value == pytest.approx(3.0 * 17 / 133, abs=1e-3)
    assert changed[a.annotator_id].value == pytest.approx(17 / 133)
    assert changed[b.annotator_id].value == pytest.approx((17 + 21) / 133)

    # idempotent: a second recompute replaces the rows
    count = len(scores(db, clip.id, "keypoints", "oks", "human"))
    total = db.query(AgreementScore).filter_by(clip_id=clip.id).count()
    recompute.recompute_clip(db, clip.id)
    assert db.query(AgreementScore).filter_by(clip_id=clip.id).count() == total
    assert len(scores(db, clip.id, "keypoints", "oks", "human")) == count

    # rollups: the project mean of OKS is this clip's OKS; each annotator has it too
    recompute.recompute_rollups(db, scenario["project"].id)
    stored = db.scalars(
        select(AgreementRollup).where(
            AgreementRollup.project_id == scenario["project"].id,
            AgreementRollup.level == "keypoints",
            AgreementRollup.metric == "oks",
        )
    ).all()
    assert {(r.scope, r.scope_id) for r in stored} == {
        ("project", scenario["project"].id), ("batch", scenario["batch"].id),
        ("annotator", a.annotator_id), ("annotator", b.annotator_id),
    }  # fmt: skip
    assert all(r.value == pytest.approx(expected_oks) for r in stored)

    # the lowest level (shots, F1 0) drives the clip into adjudication
    assert result.needs_adjudication
    queue = adjudication_list(db, scenario["project"].id)
    assert [q.clip_id for q in queue] == [clip.id]
    assert queue[0].driver == "shots" and queue[0].score == 0.0

    # the reviewer takes alice's shots, bob's captions and tags, and the mean skeleton
    held = DrawingRun(1, 3, ((1.0, 0.0, 0.0), (1.0, 4.0, -2.0))).as_json()
    for version in (a, b):  # the character's held drawings, as the model found them
        character = db.get_one(Character, track_of(db, version).character_id)
        character.drawing_runs, character.timing = [held], "twos"
    page = adjudication.adjudication_page(db, clip.id)
    assert [v.annotation.id for v in page.versions] == [a.id, b.id]
    assert len(page.groups) == 1 and set(page.groups[0].members) == {a.id, b.id}
    choice = AdjudicationChoice(shots=a.id, captions=b.id, tags=b.id, characters={0: "mean"})
    result_annotation = adjudication.adjudicate(db, scenario["reviewer"], clip.id, choice)

    assert result_annotation.status == NodeStatus.approved
    assert result_annotation.is_primary
    assert result_annotation.tags["time_of_day"] == "night"
    others = db.scalars(select(Annotation).where(Annotation.clip_id == clip.id)).all()
    assert [x.id for x in others if x.is_primary] == [result_annotation.id]
    shots = db.scalars(
        select(Shot).where(Shot.annotation_id == result_annotation.id).order_by(Shot.start_frame)
    ).all()
    assert [(s.start_frame, s.end_frame) for s in shots] == [(0, 3), (3, FRAMES)]
    assert all(s.status == NodeStatus.approved for s in shots)
    assert clip_caption(db, result_annotation).text == CAPTION_B
    merged = poses(db, track_of(db, result_annotation))
    character = db.get_one(Character, track_of(db, result_annotation).character_id)
    assert (character.drawing_runs, character.timing) == ([held], "twos")
    for f in range(FRAMES):
        both = (pa[f][:, 2] > 0) & (pb[f][:, 2] > 0)
        np.testing.assert_allclose(
            merged[f][both, :2], (pa[f][both, :2] + pb[f][both, :2]) / 2, atol=1e-4
        )
        only_a = (pa[f][:, 2] > 0) & ~both
        np.testing.assert_allclose(merged[f][only_a, :2], pa[f][only_a, :2], atol=1e-4)
    history = db.scalars(
        select(Revision).where(
            Revision.annotation_id == result_annotation.id, Revision.node_type == "annotation"
        )
    ).one()
    assert history.action == "adjudicate"
    assert history.after["picks"] == {"shots": a.id, "captions": b.id, "tags": b.id,
                                      "quality": a.id, "speech": a.id}  # fmt: skip
    assert history.after["characters"] == {"0": "mean"}
    assert adjudication_list(db, scenario["project"].id) == []
