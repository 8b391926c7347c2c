"""Edits on a character's held drawing that slides or is zoomed: every frame of the run takes
the edit carried by its move, so a dragged point moves by the same displacement (in the
drawing's own coordinates) on each frame; whole-frame holds stay as they were."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from app.annotations.keypoint_edits import (
    copy_previous_drawing,
    interpolate,
    review_fix_frame,
    save_frame,
)
from app.annotations.models import Annotation
from app.annotations.opening import open_annotation
from app.annotations.payload import annotation_payload, frames_of
from app.annotations.points import SRC_MODEL, SRC_PERSON, decode_points, decode_with_sources
from app.auth.models import Role
from app.media.drawings import DrawingRun
from app.projects.skeletons import PoseArray
from tests.factories import create_clip, create_model_draft, create_user

# Frames 1-3 show one drawing sliding right and down; frame 0 and 4-5 are drawings of their own.
SLIDE = DrawingRun(1, 4, ((1.0, 0.0, 0.0), (1.0, 12.0, 0.0), (1.0, 20.0, 6.0)))
# Frames 0-2 show one drawing the camera zooms into (x1.5, then x2) about the frame's corner.
ZOOM = DrawingRun(0, 3, ((1.0, 0.0, 0.0), (1.5, -50.0, -20.0), (2.0, -100.0, -40.0)))


def _open(db: Session, *runs: DrawingRun, **clip_over: Any) -> tuple[Annotation, Any]:
    """An annotator's copy of a 6-frame 320x240 clip whose model character holds ``runs``."""
    clip = create_clip(db, frame_count=6, width=320, height=240, state="ready", **clip_over)
    create_model_draft(db, clip, frames=6, drawing_runs=runs, timing="twos" if runs else None)
    user = create_user(db, Role.annotator)
    return open_annotation(db, clip, user), user


def _character(db: Session, annotation: Annotation) -> dict[str, Any]:
    """The annotation's character as the workspace reads it (its frames' current versions)."""
    character: dict[str, Any] = annotation_payload(db, annotation)["characters"][0]
    return character


def _track(db: Session, annotation: Annotation) -> dict[str, Any]:
    track: dict[str, Any] = _character(db, annotation)["tracks"][0]
    return track


def _poses(db: Session, track_id: int) -> dict[int, PoseArray]:
    return {row.frame_index: decode_points(row.points)[0] for row in frames_of(db, track_id)}


def _drag(
    db: Session, user: Any, track: dict[str, Any], frame: int, point: int, to: list[float]
) -> list[int]:
    """Drag one point on ``frame`` with "apply to the held run"; the frames saved."""
    shown = next(f for f in track["frames"] if f["frame"] == frame)
    points = [p[:3] for p in shown["points"]]
    points[point] = [*to, 2]
    version = shown["version"]
    rows = save_frame(db, user, track["id"], frame, points, version, apply_to_held_run=True)
    return sorted(r.frame_index for r in rows)


def test_a_drag_on_a_sliding_drawing_moves_every_frame_of_the_run_by_the_same_displacement(
    db: Session,
) -> None:
    annotation, user = _open(db, SLIDE)
    track = _track(db, annotation)
    before = _poses(db, track["id"])
    x, y = before[2][9, :2]
    assert _drag(db, user, track, 2, 9, [x + 7, y - 3]) == [1, 2, 3]

    after = _poses(db, track["id"])
    for frame in (1, 2, 3):
        assert np.allclose(after[frame][9, :2] - before[frame][9, :2], [7, -3], atol=1e-3)
        assert after[frame][9, 2] == 2
    for frame in (0, 4, 5):  # drawings of their own
        assert np.array_equal(after[frame], before[frame])
    for frame in (1, 3):  # the other points stay the model's, where the model put them
        _, sources = decode_with_sources(frames_of(db, track["id"])[frame].points)
        assert sources[9] == SRC_PERSON and (np.delete(sources, 9) == SRC_MODEL).all()


def test_on_a_zoomed_drawing_the_displacement_scales_with_the_frame(db: Session) -> None:
    annotation, user = _open(db, ZOOM)
    track = _track(db, annotation)
    before = _poses(db, track["id"])
    x, y = before[0][20, :2]
    _drag(db, user, track, 0, 20, [x + 4, y + 2])
    after = _poses(db, track["id"])
    for frame, scale in ((0, 1.0), (1, 1.5), (2, 2.0)):
        moved = after[frame][20, :2] - before[frame][20, :2]
        assert np.allclose(moved, [4 * scale, 2 * scale], atol=1e-3)

    # From a zoomed frame back: 6 px at x1.5 is 4 px on the first frame, 8 px at x2.
    track = _track(db, annotation)
    x, y = after[1][30, :2]
    _drag(db, user, track, 1, 30, [x - 6, y])
    again = _poses(db, track["id"])
    for frame, dx in ((0, -4.0), (1, -6.0), (2, -8.0)):
        assert np.allclose(again[frame][30, :2] - after[frame][30, :2], [dx, 0], atol=1e-3)


def test_a_point_carried_off_the_frame_is_not_labelled_there(db: Session) -> None:
    annotation, user = _open(db, SLIDE)
    track = _track(db, annotation)
    _drag(db, user, track, 1, 9, [305.0, 100.0])  # 20 px further right on frame 3: off the frame
    after = _poses(db, track["id"])
    assert after[1][9].tolist()[:3] == [305.0, 100.0, 2.0]
    assert after[2][9].tolist()[:3] == [317.0, 100.0, 2.0]
    assert after[3][9, 2] == 0 and after[3][9, 0] == 325.0


def test_a_box_drawn_on_a_sliding_drawing_follows_it(db: Session) -> None:
    annotation, user = _open(db, SLIDE)
    track = _track(db, annotation)
    shown = track["frames"][1]
    points = [p[:3] for p in shown["points"]]
    save_frame(db, user, track["id"], 1, points, shown["version"], apply_to_held_run=True,
               box=[90.0, 40.0, 80.0, 60.0])  # fmt: skip
    boxes = {row.frame_index: row.box for row in frames_of(db, track["id"])}
    assert boxes[1] == [90.0, 40.0, 80.0, 60.0]
    assert boxes[2] == [102.0, 40.0, 80.0, 60.0]
    assert boxes[3] == [110.0, 46.0, 80.0, 60.0]
    assert boxes[0] is None and boxes[4] is None


def test_whole_frame_holds_stay_still_when_the_character_has_no_drawings_of_its_own(
    db: Session,
) -> None:
    annotation, user = _open(db, held_runs=[[1, 4]])
    character = _character(db, annotation)
    assert character["drawing_runs"] == [] and character["timing"] is None
    track = character["tracks"][0]
    _drag(db, user, track, 2, 9, [150.0, 60.0])
    after = _poses(db, track["id"])
    assert [after[f][9, :2].tolist() for f in range(1, 4)] == [[150.0, 60.0]] * 3
    assert after[0][9, :2].tolist() != [150.0, 60.0]


def test_a_character_looked_at_on_its_own_ignores_the_clips_whole_frame_holds(
    db: Session,
) -> None:
    """Its timing is set: the clip's hold of frames 1-3 is the background's, not its own."""
    annotation, user = _open(db, SLIDE, held_runs=[[4, 6]])
    track = _track(db, annotation)
    assert _drag(db, user, track, 4, 9, [150.0, 60.0]) == [4]


def test_opening_copies_the_characters_drawings_and_timing(db: Session) -> None:
    character = _character(db, _open(db, SLIDE)[0])
    assert character["drawing_runs"] == [SLIDE.as_json()]
    assert character["timing"] == "twos"


def test_copy_previous_lands_on_the_runs_first_frame_and_slides_with_it(db: Session) -> None:
    annotation, user = _open(db, SLIDE)
    track = _track(db, annotation)
    previous = _poses(db, track["id"])[0]
    copy_previous_drawing(db, user, track["id"], 2, track["frames"][2]["version"])
    after = _poses(db, track["id"])
    assert np.allclose(after[1], previous)
    assert np.allclose(after[2][:, :2], previous[:, :2] + [12, 0])
    assert np.allclose(after[3][:, :2], previous[:, :2] + [20, 6])


def test_interpolation_keeps_a_sliding_drawing_one_drawing(db: Session) -> None:
    """Between keyframes 0 and 5, the run's frames take the value at its first frame carried by
    the run's moves (the drawing slides; it does not change)."""
    annotation, user = _open(db, SLIDE)
    track = _track(db, annotation)
    ends = {}
    for frame, x in ((0, 100.0), (5, 150.0)):
        shown = track["frames"][frame]
        points = [p[:3] for p in shown["points"]]
        points[9] = [x, 100.0, 2]
        save_frame(db, user, track["id"], frame, points, shown["version"], keyframe=True)
        ends[frame] = x
    interpolate(db, user, track["id"], 0, 5)
    after = _poses(db, track["id"])
    assert after[1][9, :2].tolist() == [110.0, 100.0]  # t = 1/5 at the run's first frame
    assert after[2][9, :2].tolist() == [122.0, 100.0]
    assert after[3][9, :2].tolist() == [130.0, 106.0]
    assert after[4][9, :2].tolist() == [140.0, 100.0]


def test_a_reviewers_fix_on_a_sliding_drawing_follows_it(db: Session) -> None:
    track = _track(db, _open(db, SLIDE)[0])
    reviewer = create_user(db, Role.reviewer)
    before = _poses(db, track["id"])
    shown = track["frames"][3]
    points = [p[:3] for p in shown["points"]]
    x, y = before[3][9, :2]
    points[9] = [x - 5, y + 5, 2]
    rows = review_fix_frame(db, reviewer, track["id"], 3, points, shown["version"])
    assert sorted(r.frame_index for r in rows) == [1, 2, 3]
    after = _poses(db, track["id"])
    for frame in (1, 2, 3):
        assert np.allclose(after[frame][9, :2] - before[frame][9, :2], [-5, 5], atol=1e-3)
