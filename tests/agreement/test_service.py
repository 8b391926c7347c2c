"""Agreement service rules: matching, majority, gold, hooks, rollups and the readers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.agreement import compare, dashboard, recompute
from app.agreement.adjudication import character_groups, mean_pose, word_diff
from app.agreement.adjudication_list import adjudication_list
from app.agreement.compare import AnnotationView, CharacterView
from app.agreement.models import AgreementScore
from app.annotations.models import NodeStatus
from app.annotations.node_edits import set_tags
from app.annotations.opening import open_annotation
from app.auth.models import Role
from app.batches.models import BatchClip
from app.core.jobs import PENDING_KEY
from app.review import fixes
from tests.agreement.conftest import clip_caption
from tests.factories import (
    approve_truth,
    create_batch,
    create_clip,
    create_model_draft,
    create_project,
    create_user,
)

SIGMAS = (0.05,) * 4


def _pose(x: float, y: float, size: float = 20.0) -> np.ndarray:
    """Four points on a square at (x, y): a tiny character."""
    corners = [(0, 0), (size, 0), (0, size), (size, size)]
    return np.array([[x + dx, y + dy, 2, 1] for dx, dy in corners], dtype=np.float32)


def _char(cid: int, name: str, x: float, shift: float = 0.0) -> CharacterView:
    frames = {f: _pose(x + shift, 10.0) for f in range(3)}
    return CharacterView(cid, name, "tiny", 4, (), frames)


def _view(aid: int, chars: tuple[CharacterView, ...] = (), **over: Any) -> AnnotationView:
    values: dict[str, Any] = {"id": aid, "annotator_id": aid * 10, "version": 1, "shots": ((0, 3),)}
    values |= {"tags": {}, "quality": {}, "captions": {}, "characters": chars}
    values.update(over)
    return AnnotationView(**values)


def test_characters_are_matched_by_box_overlap_not_by_order() -> None:
    left = (_char(1, "fox", 10), _char(2, "owl", 200))
    right = (_char(3, "owl?", 201), _char(4, "fox?", 12))
    pairs = {(a.id, b.id) for a, b, _ in compare.match_characters(left, right) if a and b}
    assert pairs == {(1, 4), (2, 3)}
    rows = compare.compare_clip([_view(1, left), _view(2, right)], None, None, lambda *_: SIGMAS)
    oks = [r for r in rows if r.metric == "oks"]
    assert len(oks) == 2 and all(r.value is not None and r.value > 0.5 for r in oks)


def test_a_character_only_one_annotator_drew_scores_zero() -> None:
    rows = compare.compare_clip(
        [_view(1, (_char(1, "fox", 10),)), _view(2, ())], None, None, lambda *_: SIGMAS
    )
    (oks,) = [r for r in rows if r.metric == "oks"]
    assert oks.value == 0.0 and oks.detail["unmatched"] == "a"


def test_majority_vote_settles_two_of_three_when_the_project_allows_it() -> None:
    views = [
        _view(1, tags={"venue": "indoor", "framing": "wide"}),
        _view(2, tags={"venue": "indoor", "framing": "wide"}),
        _view(3, tags={"venue": "outdoor", "framing": "wide"}),
    ]

    def clip_score(majority: bool) -> dict[str, Any]:
        rows = compare.compare_clip(views, None, None, lambda *_: SIGMAS, majority=majority)
        (row,) = [r for r in rows if r.level == "clip"]
        return {"value": row.value, **row.detail}

    without, with_majority = clip_score(False), clip_score(True)
    assert without["levels"]["tags"] == 0.5 and without["driver"] == "tags"
    assert with_majority["levels"]["tags"] == 1.0
    (alpha,) = [
        r for r in compare.compare_clip(views, None, None, lambda *_: SIGMAS) if r.metric == "alpha"
    ]
    assert alpha.detail["resolved"] == {"venue": "indoor"}
    assert compare.majority_tags(views) == {"venue": "indoor", "framing": "wide"}


def test_mean_pose_averages_points_both_label_and_keeps_lone_ones() -> None:
    a = np.array([[10, 10, 2, 1], [0, 0, 0, 0], [5, 5, 1, 1]], dtype=np.float32)
    b = np.array([[20, 30, 1, 1], [7, 8, 2, 1], [0, 0, 0, 0]], dtype=np.float32)
    merged = mean_pose([a, b])
    np.testing.assert_allclose(merged[:, :3], [[15, 20, 2], [7, 8, 2], [5, 5, 1]])


def test_word_diff_marks_what_each_caption_alone_says() -> None:
    assert word_diff("a red fox runs", "a grey fox runs fast") == [
        ("equal", "a"), ("del", "red"), ("ins", "grey"), ("equal", "fox runs"), ("ins", "fast"),
    ]  # fmt: skip


def test_character_groups_span_three_versions() -> None:
    views = [
        _view(1, (_char(1, "fox", 10), _char(2, "owl", 200))),
        _view(2, (_char(3, "owl", 203),)),
        _view(3, (_char(4, "fox", 11), _char(5, "cat", 400))),
    ]
    groups = {g.name: set(g.members) for g in character_groups(views)}
    assert groups == {"fox": {1, 3}, "owl": {1, 2}, "cat": {3}}


def test_hooks_queue_only_overlapped_or_gold_clips(db: Session) -> None:
    project = create_project(db)
    single, overlapped = create_clip(db, project), create_clip(db, project)
    create_model_draft(db, single, k=17)
    create_model_draft(db, overlapped, k=17)
    batch = create_batch(db, project, [single, overlapped])
    entry = db.query(BatchClip).filter_by(batch_id=batch.id, clip_id=overlapped.id).one()
    entry.required_annotators = 3
    user = create_user(db, Role.annotator)
    db.info.pop(PENDING_KEY, None)
    assert not recompute.on_annotation_submitted(db, open_annotation(db, single, user))
    assert recompute.on_annotation_submitted(db, open_annotation(db, overlapped, user))
    assert [p[:3] for p in db.info.pop(PENDING_KEY)] == [
        (recompute.RECOMPUTE_TASK, (overlapped.id,), "cheap")
    ]


def test_gold_clips_measure_annotators_against_the_approved_answer(db: Session) -> None:
    project = create_project(db)
    clip = create_clip(db, project)
    create_model_draft(db, clip, k=17)
    batch = create_batch(db, project, [clip])
    entry = db.query(BatchClip).filter_by(batch_id=batch.id).one()
    entry.is_gold = True
    reviewer, annotator = create_user(db, Role.reviewer), create_user(db, Role.annotator)
    truth = approve_truth(db, clip, reviewer)
    truth.tags = {"venue": "indoor", "framing": "wide"}
    work = open_annotation(db, clip, annotator)
    vocabulary = project.tag_vocabulary
    answer = {"venue": "indoor", "framing": "close_up"}
    set_tags(db, annotator, work.id, answer, work.version, vocabulary)
    work.status = NodeStatus.submitted
    db.flush()
    db.info.pop(PENDING_KEY, None)
    recompute.recompute_clip(db, clip.id)
    db.info.pop(PENDING_KEY, None)
    (gold,) = dashboard.gold_accuracy(db, dashboard.Filters(project.id))
    assert gold.annotator == annotator.username and gold.clips == 1
    assert gold.values["tags.agreement@gold"] == 0.5
    # the truth has no shots: the annotator's copied model shot has no cut either, F1 1
    assert gold.values["shots.boundary_f1@gold"] == 1.0
    # a single human on a gold clip: no human pair, no adjudication
    assert adjudication_list(db, project.id) == []
    # the gold's author is not scored by rollups
    people = {r.scope_id for r in recompute.aggregate(db, project.id) if r.scope == "annotator"}
    assert people == {annotator.id}


def _score(db: Session, project_id: int, clip_id: int, metric: str, value: float | None,
           a: int | None = None, b: int | None = None, against: str = "human",
           level: str = "keypoints") -> None:  # fmt: skip
    db.add(
        AgreementScore(
            project_id=project_id,
            clip_id=clip_id,
            level=level,
            metric=metric,
            against=against,
            annotator_a_id=a,
            annotator_b_id=b,
            value=value,
            detail={},
            annotation_versions={},
        )
    )


def test_readers_bin_sort_and_roll_up_stored_scores(db: Session) -> None:
    project = create_project(db)
    clips = [create_clip(db, project) for _ in range(3)]
    u1, u2, u3 = (create_user(db, Role.annotator) for _ in range(3))
    _score(db, project.id, clips[0].id, "oks", 0.95, u1.id, u2.id)
    _score(db, project.id, clips[1].id, "oks", 0.35, u1.id, u3.id)
    _score(db, project.id, clips[2].id, "oks", 1.0, u2.id, u3.id)
    _score(db, project.id, clips[2].id, "oks", None, u2.id, u3.id)
    _score(db, project.id, clips[0].id, "oks", 0.5, u1.id, None, against="model")
    db.flush()
    filters = dashboard.Filters(project.id)
    oks = dashboard.spec("keypoints.oks")
    histogram = dashboard.histogram(db, filters, oks)
    assert histogram.counts == [0, 0, 0, 1, 0, 0, 0, 0, 0, 2] and histogram.n == 3
    assert histogram.mean == pytest.approx((0.95 + 0.35 + 1.0) / 3)
    rows = dashboard.clip_table(db, filters, "keypoints.oks", descending=True)
    assert [r.clip_id for r in rows] == [clips[2].id, clips[0].id, clips[1].id]
    rolled = {(r.scope, r.scope_id, r.metric): r for r in recompute.aggregate(db, project.id)}
    assert rolled["project", project.id, "oks"].value == pytest.approx(2.3 / 3)
    assert rolled["project", project.id, "oks"].n == 3  # NULLs are not counted
    assert rolled["annotator", u1.id, "oks"].value == pytest.approx((0.95 + 0.35) / 2)
    assert rolled["annotator", u3.id, "oks"].value == pytest.approx((0.35 + 1.0) / 2)
    assert rolled["annotator", u1.id, "oks@model"].value == 0.5
    bars = dashboard.annotator_bars(db, filters, oks)
    assert bars == []  # nothing stored until the rollup task runs
    assert recompute.recompute_rollups(db, project.id) == len(rolled)
    bars = dashboard.annotator_bars(db, filters, oks)
    assert [b.label for b in bars] == [u2.username, u3.username, u1.username]
    assert not math.isnan(bars[0].value or math.nan)


def test_agreement_scores_what_annotators_submitted_not_a_reviewers_fix(
    db: Session, scenario: dict[str, Any]
) -> None:
    """Fix and accept changes the approved content, not the annotator's measured work."""
    clip_id = scenario["clip"].id
    recompute.recompute_clip(db, clip_id)
    before = {(r.level, r.metric, r.against): r.value for r in _all_scores(db, clip_id)}
    caption = clip_caption(db, scenario["a"])
    fixes.fix_and_accept(db, scenario["reviewer"], "caption", caption.id, caption.version,
                         text="The fox jumps over a fallen log in the forest.")  # fmt: skip
    assert clip_caption(db, scenario["a"]).text == "The fox jumps over a fallen log in the forest."
    recompute.recompute_clip(db, clip_id)
    after = {(r.level, r.metric, r.against): r.value for r in _all_scores(db, clip_id)}
    assert after == before
    assert any(level == "captions" for level, _, _ in before)  # the caption was measured


def _all_scores(db: Session, clip_id: int) -> list[AgreementScore]:
    return list(db.scalars(select(AgreementScore).where(AgreementScore.clip_id == clip_id)))
