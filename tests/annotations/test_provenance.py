"""Who stands behind each point: the model, a person who placed or moved it, or a person who
accepted the model's point; decided on the server from what changed, never taken from a client."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sqlalchemy.orm import Session

from app.annotations import undo
from app.annotations.keypoint_edits import accept_above, save_frame
from app.annotations.models import Annotation, Character, Track
from app.annotations.opening import open_annotation
from app.annotations.payload import annotation_payload
from app.annotations.points import (
    SRC_ACCEPTED,
    SRC_MODEL,
    SRC_PERSON,
    decode_with_sources,
    encode_points,
    suggestions,
)
from app.annotations.schemas import RestoredFrame
from app.auth.models import Role, User
from app.clips.models import Clip
from app.projects.skeletons import CONF, V
from tests.factories import as_points, create_clip, create_model_draft, create_user, keypoint_row

WIDTH, HEIGHT = 320, 240


@pytest.fixture
def copy(db: Session) -> tuple[User, int]:
    """An annotator and the track of their untouched copy of a model draft (confidences
    0.1-0.99, every point v=2)."""
    clip = create_clip(
        db, subsets=["pose"], frame_count=3, width=WIDTH, height=HEIGHT, state="ready"
    )
    create_model_draft(db, clip, frames=3)
    user = create_user(db, Role.annotator)
    payload = annotation_payload(db, open_annotation(db, clip, user))
    return user, int(payload["characters"][0]["tracks"][0]["id"])


def _suggest(db: Session, track_id: int, frame: int, index: int, x: float, conf: float) -> None:
    row = keypoint_row(db, track_id, frame)
    pose, sources = decode_with_sources(row.points)
    pose[index, 0], pose[index, V], pose[index, CONF] = x, 0, conf
    row.points = encode_points(pose, sources)
    db.flush()


def test_the_codec_keeps_three_sources_and_finds_suggestions() -> None:
    pose = np.zeros((4, 4), dtype=np.float32)
    pose[:, V] = [2, 0, 0, 0]
    pose[:, CONF] = [0.9, 0.2, 0.0, 0.2]
    sources = np.array([SRC_ACCEPTED, SRC_MODEL, SRC_MODEL, SRC_PERSON], dtype=np.uint8)
    back, back_sources = decode_with_sources(encode_points(pose, sources))
    assert back_sources.tolist() == sources.tolist()
    assert suggestions(back, back_sources).tolist() == [False, True, False, False]


def test_bulk_accept_marks_accepted_keeps_confidence_and_takes_suggestions_on_the_frame(
    db: Session, copy: tuple[User, int]
) -> None:
    user, track_id = copy
    _suggest(db, track_id, 0, 3, 150.0, 0.95)  # on the frame
    _suggest(db, track_id, 0, 4, WIDTH + 40.0, 0.95)  # outside: stays a suggestion
    before, _ = decode_with_sources(keypoint_row(db, track_id, 0).points)
    accept_above(db, user, track_id, 0.9, frames=[0])
    pose, sources = decode_with_sources(keypoint_row(db, track_id, 0).points)
    confident = before[:, CONF] >= 0.9
    confident[4] = False
    assert (sources[confident] == SRC_ACCEPTED).all() and (sources[~confident] == SRC_MODEL).all()
    assert np.allclose(pose[:, CONF], before[:, CONF])
    assert pose[3, V] == 2 and pose[4, V] == 0


def test_a_save_accepts_only_points_left_where_the_model_put_them(
    db: Session, copy: tuple[User, int]
) -> None:
    user, track_id = copy
    _suggest(db, track_id, 1, 5, 150.0, 0.2)
    row = keypoint_row(db, track_id, 1)
    before, _ = decode_with_sources(row.points)
    points = as_points(before)
    points[5][2] = 2  # the suggestion, accepted where it is
    points[6] = [10.0, 10.0, 2]  # moved: the person's, whatever the client calls it
    save_frame(db, user, track_id, 1, points, row.version, accepted=[5, 6, 7])
    pose, sources = decode_with_sources(row.points)
    assert sources[5] == SRC_ACCEPTED and pose[5, CONF] == pytest.approx(0.2, abs=1e-3)
    assert sources[6] == SRC_PERSON and pose[6, CONF] == 1.0
    assert sources[7] == SRC_ACCEPTED and pose[7, CONF] == pytest.approx(before[7, CONF])
    points[5] = [151.0, 60.0, 2]  # moving an accepted point makes it the person's
    save_frame(db, user, track_id, 1, points, row.version)
    assert decode_with_sources(row.points)[1][5] == SRC_PERSON


def test_a_restore_decides_sources_and_confidence_itself(
    db: Session, copy: tuple[User, int]
) -> None:
    user, track_id = copy
    row = keypoint_row(db, track_id, 2)
    model, _ = decode_with_sources(row.points)
    moved = as_points(model)
    moved[9] = [200.0, 120.0, 2]
    save_frame(db, user, track_id, 2, moved, row.version)

    def state(human: list[int], points: list[list[float]]) -> Any:
        return RestoredFrame(frame=2, version=row.version, points=points, human=human,
                             keyframe=False)  # fmt: skip

    claims = [[*p[:3], 1.0] for p in as_points(model)]  # a confidence the model never gave
    undo.restore_frames(db, user, track_id, [state([1] * len(model), claims)], "undo")
    pose, sources = decode_with_sources(row.points)
    assert sources[9] == SRC_PERSON  # moved back by a person's undo, claimed
    untouched = np.arange(len(model)) != 9
    assert (sources[untouched] == SRC_ACCEPTED).all()  # claimed without a change: accepted
    assert np.allclose(pose[untouched, CONF], model[untouched, CONF])  # not the client's 1.0
    undo.restore_frames(db, user, track_id, [state([0] * len(model), claims)], "undo")
    pose, sources = decode_with_sources(row.points)
    assert (sources == SRC_MODEL).all()
    assert pose[9, CONF] == pytest.approx(model[9, CONF], abs=1e-3)  # the draft's, not 1.0


def test_an_accept_on_a_held_drawing_accepts_the_point_on_every_frame_of_the_run(
    db: Session, copy: tuple[User, int]
) -> None:
    user, track_id = copy
    row = keypoint_row(db, track_id, 0)
    clip = db.get_one(Clip, db.get_one(Annotation, _annotation_id(db, track_id)).clip_id)
    clip.held_runs = [[0, 3]]
    for frame in range(3):  # a held drawing: the same pose on every frame, a suggestion in it
        keypoint_row(db, track_id, frame).points = row.points
        _suggest(db, track_id, frame, 5, 150.0, 0.2)
    pose, _ = decode_with_sources(row.points)
    points = as_points(pose)
    points[5][2] = 2
    save_frame(db, user, track_id, 0, points, row.version, apply_to_held_run=True, accepted=[5])
    for frame in range(3):
        pose, sources = decode_with_sources(keypoint_row(db, track_id, frame).points)
        assert sources[5] == SRC_ACCEPTED and pose[5, V] == 2, frame


def _annotation_id(db: Session, track_id: int) -> int:
    character_id = db.get_one(Track, track_id).character_id
    return db.get_one(Character, character_id).annotation_id
