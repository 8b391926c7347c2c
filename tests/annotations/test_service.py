"""The human side of annotation: copies of the model draft, versioned edits, history."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations import undo
from app.annotations.keypoint_edits import (
    accept_above,
    copy_previous_drawing,
    interpolate,
    save_frame,
)
from app.annotations.models import KeypointFrame, NodeStatus, Revision
from app.annotations.node_edits import (
    add_speech,
    delete_speech,
    set_emotions,
    set_quality,
    set_shot_boundaries,
    set_tags,
    update_caption,
    update_speech,
)
from app.annotations.opening import open_annotation
from app.annotations.payload import annotation_payload, frames_of
from app.annotations.points import decode_points
from app.annotations.revisions import revisions_of
from app.annotations.schemas import RestoredFrame as _State
from app.auth.models import Role
from app.core.errors import Conflict, Forbidden, Invalid, NotFound
from app.projects.models import DEFAULT_REQUIRED_LEVELS
from app.review.submission import submit
from tests.factories import create_clip, create_model_draft, create_user


def _setup(db: Session, frames: int = 6):  # type: ignore[no-untyped-def]
    clip = create_clip(
        db, subsets=["pose"], frame_count=frames, width=320, height=240, state="ready"
    )
    create_model_draft(db, clip, frames=frames)
    user = create_user(db, Role.annotator)
    annotation = open_annotation(db, clip, user)
    payload = annotation_payload(db, annotation)
    track = payload["characters"][0]["tracks"][0]
    return clip, user, annotation, track


def _points(frame: dict) -> list[list[float]]:  # type: ignore[type-arg]
    return [p[:3] for p in frame["points"]]


def test_opening_copies_the_model_draft_once(db: Session) -> None:
    clip, user, annotation, track = _setup(db)
    payload = annotation_payload(db, annotation)
    assert len(track["frames"]) == 6 and track["num_points"] == 133
    assert {c["model_text"] for c in payload["captions"]} == {
        "A figure waves.",
        "The figure waves.",
    }
    assert all(
        c["text"] == c["model_text"] for c in payload["captions"]
    )  # people start from the draft
    assert open_annotation(db, clip, user).id == annotation.id


def test_saving_a_frame_marks_moved_points_human_and_records_history(db: Session) -> None:
    _, user, _, track = _setup(db)
    frame = track["frames"][2]
    points = _points(frame)
    points[9] = [200.0, 120.0, 2]  # the left wrist
    points[10][2] = 1  # right wrist occluded
    [row] = save_frame(db, user, track["id"], 2, points, frame["version"])
    pose, human = decode_points(row.points)
    assert pose[9, :2].tolist() == [200.0, 120.0] and pose[10, 2] == 1
    assert human[9] and human[10] and human.sum() == 2
    assert row.version == frame["version"] + 1
    rev = db.scalars(
        select(Revision).where(Revision.node_type == "keypoint_frame", Revision.node_id == row.id)
    ).all()
    assert rev[-1].after == {"9": [200.0, 120.0, 2.0], "10": [points[10][0], points[10][1], 1.0]}


def test_a_stale_save_gets_a_conflict_with_the_other_version(db: Session) -> None:
    _, user, _, track = _setup(db)
    frame = track["frames"][1]
    mine, theirs = _points(frame), _points(frame)
    theirs[0] = [10.0, 10.0, 2]
    save_frame(db, user, track["id"], 1, theirs, frame["version"])
    mine[0] = [20.0, 20.0, 2]
    with pytest.raises(Conflict) as caught:
        save_frame(db, user, track["id"], 1, mine, frame["version"])
    assert caught.value.detail["current"]["points"][0][:2] == [10.0, 10.0]


def test_an_edit_on_a_held_frame_changes_the_whole_run(db: Session) -> None:
    clip, user, _, track = _setup(db)
    clip.held_runs = [[2, 5]]
    frame = track["frames"][3]
    points = _points(frame)
    points[0] = [150.0, 60.0, 2]
    saved = save_frame(db, user, track["id"], 3, points, frame["version"], apply_to_held_run=True)
    assert sorted(r.frame_index for r in saved) == [2, 3, 4]
    for row in db.scalars(select(KeypointFrame).where(KeypointFrame.track_id == track["id"])):
        pose, _ = decode_points(row.points)
        assert (pose[0, :2].tolist() == [150.0, 60.0]) == (row.frame_index in (2, 3, 4))


def test_interpolation_fills_frames_between_keyframes_but_keeps_human_points(db: Session) -> None:
    _, user, _, track = _setup(db, frames=6)
    f0, f4 = track["frames"][0], track["frames"][4]
    a, b = _points(f0), _points(f4)
    a[0], b[0] = [100.0, 100.0, 2], [140.0, 180.0, 2]
    save_frame(db, user, track["id"], 0, a, f0["version"], keyframe=True)
    save_frame(db, user, track["id"], 4, b, f4["version"], keyframe=True)
    f2 = track["frames"][2]
    manual = _points(f2)
    manual[1] = [7.0, 7.0, 2]
    save_frame(db, user, track["id"], 2, manual, f2["version"])
    interpolate(db, user, track["id"], 0, 4)
    rows = {r.frame_index: decode_points(r.points)[0] for r in frames_of(db, track["id"])}
    assert rows[1][0, :2].tolist() == [110.0, 120.0]
    assert rows[3][0, :2].tolist() == [130.0, 160.0]
    assert rows[2][1, :2].tolist() == [7.0, 7.0]  # a person's point is never overwritten
    with pytest.raises(Invalid, match="keyframes"):
        interpolate(db, user, track["id"], 1, 3)


def test_accept_above_threshold_accepts_only_confident_model_points(db: Session) -> None:
    _, user, _, track = _setup(db, frames=2)
    accepted = accept_above(db, user, track["id"], 0.9, frames=[0])
    pose, human = decode_points(frames_of(db, track["id"])[0].points)
    assert accepted == int((pose[:, 3] >= 0.9).sum()) > 0
    assert np.array_equal(human, pose[:, 3] >= 0.9)


def test_copy_previous_keeps_provenance_and_confidence(db: Session) -> None:
    clip, user, _, track = _setup(db, frames=4)
    clip.held_runs = [[2, 4]]
    previous = _points(track["frames"][1])
    previous[9] = [200.0, 120.0, 2]
    save_frame(db, user, track["id"], 1, previous, track["frames"][1]["version"])
    source, source_human = decode_points(frames_of(db, track["id"])[1].points)
    copy_previous_drawing(db, user, track["id"], 3, track["frames"][3]["version"])
    for row in frames_of(db, track["id"])[2:]:
        pose, human = decode_points(row.points)
        assert np.array_equal(pose, source) and np.array_equal(human, source_human)
    assert source_human.sum() == 1  # only the moved wrist is a person's


def test_an_action_reports_each_changed_frame_with_its_state_before(db: Session) -> None:
    _, user, _, track = _setup(db, frames=3)
    snapshot = undo.snapshot_track(db, track["id"])
    accept_above(db, user, track["id"], 0.9, frames=[1])
    [change] = undo.changed_since(db, track["id"], snapshot)
    assert change["frame"] == 1 and sum(change["human"]) > 0
    assert change["before"]["human"] == [0] * 133
    assert np.allclose(change["before"]["points"], track["frames"][1]["points"], atol=1e-3)


def test_restoring_frames_puts_back_points_sources_and_keyframe_exactly(db: Session) -> None:
    _, user, _, track = _setup(db, frames=3)
    frame = track["frames"][1]
    before = {"points": frame["points"], "human": frame["human"], "keyframe": False}
    moved = _points(frame)
    moved[9] = [200.0, 120.0, 2]
    [row] = save_frame(db, user, track["id"], 1, moved, frame["version"], keyframe=True)
    state = _State(frame=1, version=row.version, **before)
    [restored] = undo.restore_frames(db, user, track["id"], [state], "undo")
    pose, human = decode_points(restored.points)
    assert np.allclose(pose, frame["points"], atol=1e-3)
    assert not human.any() and not restored.is_keyframe
    assert revisions_of(db, "keypoint_frame", row.id)[-1].action == "undo"


def test_restoring_a_frame_someone_changed_since_writes_nothing(db: Session) -> None:
    _, user, _, track = _setup(db, frames=3)
    first, second = track["frames"][0], track["frames"][1]
    theirs = _points(second)
    theirs[0] = [5.0, 5.0, 2]
    save_frame(db, user, track["id"], 1, theirs, second["version"])
    states = [
        _State(frame=f["frame"], version=f["version"], points=f["points"], human=f["human"],
               keyframe=True)
        for f in (first, second)
    ]  # fmt: skip
    with pytest.raises(Conflict) as caught:
        undo.restore_frames(db, user, track["id"], states, "undo")
    assert caught.value.detail["current"]["points"][0][:2] == [5.0, 5.0]
    with pytest.raises(Invalid, match="0 or 1"):
        bad = _State(frame=0, version=first["version"], points=first["points"],
                     human=[2] * 133, keyframe=False)  # fmt: skip
        undo.restore_frames(db, user, track["id"], [bad], "undo")


def test_out_of_frame_points_and_bad_shapes_are_refused(db: Session) -> None:
    _, user, _, track = _setup(db, frames=2)
    points = _points(track["frames"][0])
    points[0] = [9999.0, 10.0, 2]
    with pytest.raises(Invalid, match="outside"):
        save_frame(db, user, track["id"], 0, points, 1)
    with pytest.raises(Invalid, match="Expected 133"):
        save_frame(db, user, track["id"], 0, points[:5], 1)


def test_only_the_owner_edits_and_only_before_submission(db: Session) -> None:
    _clip, user, annotation, track = _setup(db, frames=2)
    other = create_user(db, Role.annotator)
    points = _points(track["frames"][0])
    with pytest.raises(NotFound):  # someone else's annotation looks absent, as for a read
        save_frame(db, other, track["id"], 0, points, 1)
    annotation.status = NodeStatus.submitted
    with pytest.raises(Forbidden, match="submitted"):
        save_frame(db, user, track["id"], 0, points, 1)


def test_submit_requires_every_level_of_the_clip_subsets(db: Session) -> None:
    clip, user, annotation, _track = _setup(db, frames=2)
    clip.subsets = ["pose", "i2v"]
    with pytest.raises(Invalid) as caught:
        submit(db, user, annotation.id, DEFAULT_REQUIRED_LEVELS)
    assert set(caught.value.detail["missing"]) == {"tags", "quality"}
    annotation.quality = {"keep": True}
    db.flush()
    set_tags(
        db,
        user,
        annotation.id,
        {"time_of_day": "day", "venue": "outdoor", "framing": "wide", "count": "solo"},
        annotation.version,
        {"time_of_day": ["day"], "venue": ["outdoor"], "framing": ["wide"], "count": ["solo"]},
    )
    assert submit(db, user, annotation.id, DEFAULT_REQUIRED_LEVELS).status == NodeStatus.submitted


def test_shot_boundaries_move_split_and_merge(db: Session) -> None:
    _clip, user, annotation, _ = _setup(db, frames=6)
    shots = set_shot_boundaries(db, user, annotation.id, [0, 2, 4], annotation.version)
    assert [(s.start_frame, s.end_frame) for s in shots] == [(0, 2), (2, 4), (4, 6)]
    shots = set_shot_boundaries(db, user, annotation.id, [0, 4], annotation.version)
    assert [(s.start_frame, s.end_frame) for s in shots] == [(0, 4), (4, 6)]
    with pytest.raises(Invalid):
        set_shot_boundaries(db, user, annotation.id, [0, 9], annotation.version)


def test_emotions_quality_and_speech_are_validated_and_versioned(db: Session) -> None:
    clip, user, annotation, _ = _setup(db, frames=6)
    clip.duration_s = 2.0
    character = annotation_payload(db, annotation)["characters"][0]
    labels = ["amusement", "neutral"]
    with pytest.raises(Invalid, match="not one of"):
        set_emotions(db, user, character["id"], [{"start": 0, "end": 3, "label": "joy"}], 1, labels)
    with pytest.raises(Invalid, match="outside"):
        set_emotions(
            db, user, character["id"], [{"start": 4, "end": 9, "label": "neutral"}], 1, labels
        )
    saved = set_emotions(
        db,
        user,
        character["id"],
        [{"start": 3, "end": 6, "label": "neutral"}, {"start": 0, "end": 3, "label": "amusement"}],
        1,
        labels,
    )
    assert [s["label"] for s in saved.emotions] == ["amusement", "neutral"]
    with pytest.raises(Conflict):
        set_emotions(db, user, character["id"], [], 1, labels)
    with pytest.raises(Invalid, match="why"):
        set_quality(db, user, annotation.id, False, [], annotation.version)
    set_quality(db, user, annotation.id, False, ["static"], annotation.version)
    assert annotation.quality == {"keep": False, "reasons": ["static"]}
    segment = add_speech(db, user, annotation.id, 0.5, 1.2, "hello")
    with pytest.raises(Invalid):
        add_speech(db, user, annotation.id, 1.5, 2.5)
    update_speech(db, user, segment.id, 0.4, 1.3, "hello there", segment.version)
    with pytest.raises(Conflict):
        update_speech(db, user, segment.id, 0.4, 1.3, "stale", 1)
    delete_speech(db, user, segment.id, segment.version)
    assert annotation_payload(db, annotation)["speech"] == []
    actions = [r.action for r in revisions_of(db, "speech_segment", segment.id)]
    assert actions == ["create", "update", "delete"]


def test_saving_what_is_already_there_writes_nothing(db: Session) -> None:
    _, user, annotation, track = _setup(db)
    frame = track["frames"][3]

    def revisions() -> int:
        return len(
            db.scalars(select(Revision).where(Revision.annotation_id == annotation.id)).all()
        )

    points = _points(frame)
    points[9] = [150.0, 100.0, 2]
    [row] = save_frame(db, user, track["id"], 3, points, frame["version"])
    count, version = revisions(), row.version
    for _ in range(3):  # the same points again (a retried autosave, a second tab)
        [row] = save_frame(db, user, track["id"], 3, points, row.version)
    assert (revisions(), row.version) == (count, version)
    # Marking the frame as a keyframe is a change even though no point moved.
    [row] = save_frame(db, user, track["id"], 3, points, row.version, keyframe=True)
    assert revisions() == count + 1 and row.is_keyframe
    caption = annotation_payload(db, annotation)["captions"][0]
    saved = update_caption(db, user, caption["id"], "A figure waves hello.", caption["version"])
    count = revisions()
    again = update_caption(db, user, caption["id"], "A figure waves hello.", saved.version)
    assert (revisions(), again.version) == (count, saved.version)
