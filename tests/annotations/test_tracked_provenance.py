"""Tracked points (carried from a person's keyframe by point tracking) are guesses like the
model's: not labelled in exports, shown as guesses, until a person accepts or moves them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sqlalchemy.orm import Session

from app.annotations import undo
from app.annotations.keypoint_edits import accept_above, save_frame
from app.annotations.opening import open_annotation
from app.annotations.payload import annotation_payload, frame_payload
from app.annotations.points import (
    SRC_ACCEPTED,
    SRC_MODEL,
    SRC_PERSON,
    SRC_TRACKED,
    decode_points,
    decode_with_sources,
    encode_points,
)
from app.annotations.schemas import RestoredFrame
from app.auth.models import Role, User
from app.export.labels import LabelRule, labelled_points
from app.projects.skeletons import CONF, V, empty_pose
from tests.factories import as_points, create_clip, create_model_draft, create_user, keypoint_row

TRACKED = [3, 4, 5]


@pytest.fixture
def copy(db: Session) -> tuple[User, int]:
    """An annotator's copy of a model draft whose points 3-5 on frame 1 were tracked
    (confidence 0.8, visible)."""
    clip = create_clip(db, subsets=["pose"], frame_count=3, width=320, height=240, state="ready")
    create_model_draft(db, clip, frames=3)
    user = create_user(db, Role.annotator)
    payload = annotation_payload(db, open_annotation(db, clip, user))
    track_id = int(payload["characters"][0]["tracks"][0]["id"])
    row = keypoint_row(db, track_id, 1)
    pose, sources = decode_with_sources(row.points)
    sources[TRACKED], pose[TRACKED, CONF], pose[TRACKED, V] = SRC_TRACKED, 0.8, 2
    row.points = encode_points(pose, sources)
    db.flush()
    return user, track_id


def test_exports_do_not_label_a_tracked_point_until_a_person_accepts_it() -> None:
    pose = empty_pose(3)
    pose[:, V], pose[:, CONF] = 2, 0.9
    sources = np.array([SRC_TRACKED, SRC_ACCEPTED, SRC_PERSON], dtype=np.uint8)
    assert labelled_points(pose, sources, LabelRule(), track_status="approved").tolist() == [
        False, True, True
    ]  # fmt: skip
    assert not decode_points(encode_points(pose, sources))[1][0]  # nobody stands behind it


def test_the_workspace_reads_tracked_points_as_guesses_with_their_confidence(
    db: Session, copy: tuple[User, int]
) -> None:
    _, track_id = copy
    frame = frame_payload(keypoint_row(db, track_id, 1))
    assert [frame["tracked"][i] for i in TRACKED] == [1, 1, 1]
    assert [frame["human"][i] for i in TRACKED] == [0, 0, 0]
    assert sum(frame["tracked"]) == len(TRACKED)
    assert frame["points"][3][CONF] == pytest.approx(0.8, abs=1e-3)


def test_accepting_a_tracked_point_makes_it_accepted_and_moving_one_the_persons(
    db: Session, copy: tuple[User, int]
) -> None:
    user, track_id = copy
    row = keypoint_row(db, track_id, 1)
    before, _ = decode_with_sources(row.points)
    points = as_points(before)
    points[4] = [12.0, 14.0, 2]
    save_frame(db, user, track_id, 1, points, row.version, accepted=[3])
    pose, sources = decode_with_sources(row.points)
    assert sources[3] == SRC_ACCEPTED and pose[3, CONF] == pytest.approx(0.8, abs=1e-3)
    assert sources[4] == SRC_PERSON and pose[4, CONF] == 1.0
    assert sources[5] == SRC_TRACKED  # neither accepted nor moved: still a guess


def test_bulk_accept_takes_tracked_points_above_the_threshold(
    db: Session, copy: tuple[User, int]
) -> None:
    user, track_id = copy
    accept_above(db, user, track_id, 0.75, frames=[1])
    _, sources = decode_with_sources(keypoint_row(db, track_id, 1).points)
    assert (sources[TRACKED] == SRC_ACCEPTED).all()


def test_undo_and_redo_keep_tracked_points_tracked(db: Session, copy: tuple[User, int]) -> None:
    user, track_id = copy
    row = keypoint_row(db, track_id, 1)
    tracked_pose, _ = decode_with_sources(row.points)
    saved = frame_payload(row)

    def state(pose: np.ndarray, tracked: list[int]) -> Any:
        return RestoredFrame(frame=1, version=row.version, points=pose.tolist(),
                             human=[0] * len(pose), tracked=tracked, keyframe=False)  # fmt: skip

    moved = tracked_pose.copy()
    moved[TRACKED, 0] += 5.0  # as the state before tracking had them
    undo.restore_frames(db, user, track_id, [state(moved, [0] * len(moved))], "undo")
    assert (decode_with_sources(row.points)[1][TRACKED] == SRC_MODEL).all()
    undo.restore_frames(db, user, track_id, [state(tracked_pose, saved["tracked"])], "redo")
    pose, sources = decode_with_sources(row.points)
    assert (sources[TRACKED] == SRC_TRACKED).all()
    assert np.allclose(pose[TRACKED, CONF], 0.8, atol=1e-3)  # the tracker's, not a person's 1
