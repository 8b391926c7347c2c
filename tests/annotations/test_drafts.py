"""Model-side writers: idempotent re-runs, merging a new draft into people's copies, and the
COCO-WholeBody import (service level, real PostgreSQL, rolled back)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.annotations import drafts
from app.annotations.models import (
    Annotation,
    AnnotationKind,
    Caption,
    CaptionLevel,
    Character,
    CharacterKind,
    KeypointFrame,
    Revision,
    Source,
    SpeechSegment,
    Track,
)
from app.annotations.points import decode_points, encode_points
from app.clips.models import Clip
from app.core.errors import Invalid
from app.media.drawings import DrawingRun, runs_from_json
from app.projects.skeletons import COCO_WHOLEBODY, PoseArray, empty_pose
from tests.factories import create_clip

K = COCO_WHOLEBODY.num_keypoints
FRAMES = 6


def pose_at(offset: float, seed: int = 0) -> PoseArray:
    """A fully visible pose, shifted by ``offset`` pixels on both axes."""
    rng = np.random.default_rng(seed)
    pose = empty_pose(K)
    pose[:, :2] = rng.uniform(20, 200, (K, 2)) + offset
    pose[:, 2] = 2
    pose[:, 3] = 0.9
    return pose


def drafts_at(offset: float) -> list[drafts.FrameDraft]:
    return [drafts.FrameDraft(i, pose_at(offset, seed=i), ["low_conf:1"]) for i in range(FRAMES)]


@pytest.fixture
def clip(db: Session) -> Clip:
    return create_clip(db, frame_count=FRAMES, width=320, height=240, fps=24.0)


def count(db: Session, clip: Clip, model: type) -> int:
    """Rows of ``model`` under ``clip``'s annotations (worker tests commit other clips' rows)."""
    query = select(func.count()).select_from(model)
    if model is KeypointFrame:
        query = query.join(Track, KeypointFrame.track_id == Track.id)
    if model in (KeypointFrame, Track):
        query = query.join(Character, Track.character_id == Character.id)
        owner = Character.annotation_id
    else:
        owner = model.annotation_id  # type: ignore[attr-defined]
    query = query.join(Annotation, owner == Annotation.id)
    return int(db.scalar(query.where(Annotation.clip_id == clip.id)) or 0)


def copy_for_person(db: Session, clip: Clip) -> dict[int, KeypointFrame]:
    """What the human side does when an annotator opens the draft: copy its rows."""
    model = drafts.model_annotation(db, clip)
    human = Annotation(clip_id=clip.id, kind=AnnotationKind.human, annotator_id=None)
    db.add(human)
    db.flush()
    rows: dict[int, KeypointFrame] = {}
    for character in db.scalars(select(Character).where(Character.annotation_id == model.id)):
        mine = Character(
            annotation_id=human.id,
            name=character.name,
            kind=character.kind,
            skeleton=character.skeleton,
            source=character.source,
        )
        db.add(mine)
        db.flush()
        for track in db.scalars(select(Track).where(Track.character_id == character.id)):
            new_track = Track(
                character_id=mine.id, num_points=track.num_points, source=track.source
            )
            db.add(new_track)
            db.flush()
            for frame in db.scalars(
                select(KeypointFrame).where(KeypointFrame.track_id == track.id)
            ):
                row = KeypointFrame(
                    track_id=new_track.id,
                    frame_index=frame.frame_index,
                    points=frame.points,
                    model_points=frame.model_points,
                    part_valid=frame.part_valid,
                    flags=list(frame.flags),
                )
                db.add(row)
                rows[frame.frame_index] = row
    db.flush()
    return rows


def edit_point(row: KeypointFrame, index: int, xy: tuple[float, float]) -> None:
    pose, human = decode_points(row.points, K)
    pose[index, :2] = xy
    pose[index, 3] = 1.0
    human[index] = True
    row.points = encode_points(pose, human)


def test_a_draft_track_is_written_once_and_a_rerun_replaces_it(db: Session, clip: Clip) -> None:
    first = drafts.write_draft_track(
        db, clip, name=drafts.MODEL_CHARACTER_NAME, frames=drafts_at(0)
    )
    again = drafts.write_draft_track(
        db, clip, name=drafts.MODEL_CHARACTER_NAME, frames=drafts_at(0)
    )

    assert (again.character_id, again.track_id) == (first.character_id, first.track_id)
    annotation = db.scalars(select(Annotation).where(Annotation.clip_id == clip.id)).one()
    assert annotation.kind == AnnotationKind.model and not annotation.is_primary
    assert count(db, clip, Character) == 1 and count(db, clip, Track) == 1
    assert count(db, clip, KeypointFrame) == FRAMES
    row = db.scalars(
        select(KeypointFrame).where(
            KeypointFrame.track_id == first.track_id, KeypointFrame.frame_index == 2
        )
    ).one()
    pose, human = decode_points(row.points, K)
    assert row.model_points == row.points and not human.any()
    np.testing.assert_allclose(pose[:, :2], pose_at(0, seed=2)[:, :2])
    assert row.flags == ["low_conf:1"]
    assert row.part_valid == 0b11111  # every part of the skeleton is visible


def test_the_model_character_keeps_its_drawings_and_a_rerun_replaces_them(
    db: Session, clip: Clip
) -> None:
    slide = DrawingRun(1, 3, ((1.0, 0.0, 0.0), (1.0, 4.5, -1.0)))
    written = drafts.write_draft_track(
        db, clip, name=drafts.MODEL_CHARACTER_NAME, frames=drafts_at(0),
        drawing_runs=[slide, DrawingRun.still(3, 6)], timing="twos",
    )  # fmt: skip
    character = db.get_one(Character, written.character_id)
    assert runs_from_json(character.drawing_runs) == [slide, DrawingRun.still(3, 6)]
    assert character.timing == "twos"

    drafts.write_draft_track(db, clip, name=drafts.MODEL_CHARACTER_NAME, frames=drafts_at(0))
    db.refresh(character)
    assert (character.drawing_runs, character.timing) == ([], None)


def test_rerun_updates_model_points_keeps_human_points_and_flags_the_moved_draft(
    db: Session, clip: Clip
) -> None:
    drafts.write_draft_track(db, clip, name=drafts.MODEL_CHARACTER_NAME, frames=drafts_at(0))
    copies = copy_for_person(db, clip)
    edit_point(copies[1], 0, (5.0, 5.0))  # far from any draft
    target = pose_at(8, seed=3)[9, :2]
    edit_point(copies[3], 9, (float(target[0]), float(target[1])))  # where the new draft goes
    human_made = copies[4]
    human_made.model_points = None  # a frame the person made: not a copy of a draft
    before_human_made = human_made.points
    db.flush()

    result = drafts.write_draft_track(
        db, clip, name=drafts.MODEL_CHARACTER_NAME, frames=drafts_at(8)
    )
    db.expire_all()

    assert result.copies.tracks == 1
    assert result.copies.model_changed_frames == [1]
    for index, row in copies.items():
        pose, human = decode_points(row.points, K)
        if index == 4:
            assert row.points == before_human_made and row.model_points is None
            continue
        new = pose_at(8, seed=index)
        np.testing.assert_allclose(decode_points(row.model_points or b"", K)[0][:, :2], new[:, :2])
        model_sourced = ~human
        np.testing.assert_allclose(pose[model_sourced, :2], new[model_sourced, :2])
        assert ("model_changed" in row.flags) == (index == 1)
        assert "low_conf:1" in row.flags
    pose1, human1 = decode_points(copies[1].points, K)
    assert human1[0] and tuple(pose1[0, :2]) == (5.0, 5.0)  # the person's point survived
    _, human3 = decode_points(copies[3].points, K)
    assert human3[9]  # the draft moved onto the person's point: nothing to review
    revision = db.scalars(
        select(Revision).join(Annotation).where(Annotation.clip_id == clip.id)
    ).one()
    assert revision.source == Source.model and revision.after is not None
    assert revision.after["model_rerun"]["model_changed"] == [1]


def test_an_unchanged_rerun_leaves_peoples_copies_alone(db: Session, clip: Clip) -> None:
    drafts.write_draft_track(db, clip, name=drafts.MODEL_CHARACTER_NAME, frames=drafts_at(0))
    copies = copy_for_person(db, clip)
    edit_point(copies[2], 5, (1.0, 1.0))
    db.flush()
    versions = {i: r.version for i, r in copies.items()}

    result = drafts.write_draft_track(
        db, clip, name=drafts.MODEL_CHARACTER_NAME, frames=drafts_at(0)
    )
    db.expire_all()

    assert result.copies.frames_updated == 0
    assert {i: r.version for i, r in copies.items()} == versions
    assert all("model_changed" not in r.flags for r in copies.values())
    assert count(db, clip, Revision) == 0


def test_merge_frame_moves_only_model_points_and_ignores_sub_tolerance_moves() -> None:
    old, work = pose_at(0), pose_at(0)
    human = np.zeros(K, bool)
    human[[0, 1]] = True
    work[0, :2] = (1.0, 1.0)
    work[1, :2] = (2.0, 2.0)
    small = pose_at(drafts.MODEL_CHANGED_PX / 2)  # moved, but less than "a few pixels"
    merged = drafts.merge_frame(work, human, old, small)
    assert not merged.model_changed
    np.testing.assert_array_equal(merged.pose[:2], work[:2])
    np.testing.assert_array_equal(merged.pose[2:], small[2:])
    assert merged.points_updated == K - 2
    assert drafts.merge_frame(work, human, old, pose_at(10)).model_changed


def test_shots_captions_and_speech_are_replaced_not_duplicated(db: Session, clip: Clip) -> None:
    annotation = drafts.model_annotation(db, clip)
    first = drafts.replace_model_shots(db, annotation, [(0, 3, "static"), (3, 6, "pan_left")])
    again = drafts.replace_model_shots(db, annotation, [(0, 3, "static"), (3, 6, "zoom_in")])
    assert [s.id for s in again] == [s.id for s in first]
    assert again[1].camera_motion == "zoom_in"
    fewer = drafts.replace_model_shots(db, annotation, [(0, 6, "static")])
    assert len(fewer) == 1 and count(db, clip, drafts.Shot) == 1

    rows = [
        drafts.CaptionDraftRow(CaptionLevel.clip, 0, "short", "A clip."),
        drafts.CaptionDraftRow(CaptionLevel.shot, fewer[0].id, "narrative", "Nothing moves."),
    ]
    for _ in range(2):
        drafts.replace_model_captions(db, annotation, rows, "builtin")
    captions = db.scalars(
        select(Caption).where(Caption.annotation_id == annotation.id).order_by(Caption.id)
    ).all()
    assert [(c.field, c.text, c.model_text, c.model_name) for c in captions] == [
        ("short", "A clip.", "A clip.", "builtin"),
        ("narrative", "Nothing moves.", "Nothing moves.", "builtin"),
    ]
    drafts.replace_model_captions(db, annotation, rows[:1], "builtin")
    assert count(db, clip, Caption) == 1

    for _ in range(2):
        drafts.replace_model_speech(db, annotation, [(0.1, 0.5), (1.0, 1.4)])
    assert count(db, clip, SpeechSegment) == 2


# --------------------------------------------------------------------------- COCO import


def coco_file() -> dict[str, Any]:
    """Two tracks; track 7 only on frames 1 and 4 (sparse: nothing may be filled in)."""
    images = [{"id": 10 + i, "file_name": f"frame_{i:06d}.jpg"} for i in range(FRAMES)]
    images[0] = {"id": 10, "frame_index": 0, "file_name": "first.jpg"}
    annotations = []
    for i in range(FRAMES):
        annotations.append(coco_annotation(10 + i, track_id=1, x=10 + i))
    for i in (1, 4):
        annotations.append(coco_annotation(10 + i, track_id=7, x=100 + i))
    return {"images": images, "annotations": annotations, "categories": [{"id": 1}]}


def coco_annotation(image_id: int, *, track_id: int, x: float) -> dict[str, Any]:
    def part(n: int, vis: int = 2) -> list[float]:
        return [value for j in range(n) for value in (x + j, 50.0 + j, vis)]

    return {
        "image_id": image_id,
        "track_id": track_id,
        "category_id": 1,
        "score": 0.75,
        "keypoints": part(17),
        "foot_kpts": part(6, vis=1),
        "face_kpts": part(68, vis=0),
        "lefthand_kpts": part(21),
        "righthand_kpts": part(21),
    }


def test_coco_wholebody_import_writes_one_sparse_track_per_track_id(
    db: Session, clip: Clip
) -> None:
    summary = drafts.import_coco_wholebody(db, clip, coco_file())
    again = drafts.import_coco_wholebody(db, clip, coco_file())

    assert summary["tracks"] == 2 and summary["frames"] == FRAMES + 2
    assert again["character_ids"] == summary["character_ids"]  # replaced in place
    characters = db.scalars(
        select(Character)
        .join(Annotation)
        .where(Annotation.clip_id == clip.id)
        .order_by(Character.name)
    ).all()
    assert [(c.name, c.source, c.kind) for c in characters] == [
        ("imported track 1", Source.import_, CharacterKind.humanoid),
        ("imported track 7", Source.import_, CharacterKind.humanoid),
    ]
    sparse = db.scalars(
        select(KeypointFrame.frame_index)
        .join(Track)
        .where(Track.character_id == characters[1].id)
        .order_by(KeypointFrame.frame_index)
    ).all()
    assert sparse == [1, 4]
    row = db.scalars(
        select(KeypointFrame)
        .join(Track)
        .where(Track.character_id == characters[0].id, KeypointFrame.frame_index == 3)
    ).one()
    pose, human = decode_points(row.points, K)
    assert not human.any() and row.model_points == row.points
    assert tuple(pose[0]) == pytest.approx((13.0, 50.0, 2.0, 0.75), abs=1e-3)
    assert tuple(pose[17, 2:]) == pytest.approx((1.0, 0.75), abs=1e-3)  # feet hidden
    assert not pose[23:91].any()  # face unlabelled: v=0 at (0, 0), no confidence
    assert tuple(pose[132, :3]) == (13.0 + 20, 50.0 + 20, 2.0)


def _drop(coco: dict[str, Any], path: str) -> dict[str, Any]:
    bad = copy.deepcopy(coco)
    if path == "short_foot":
        bad["annotations"][2]["foot_kpts"] = bad["annotations"][2]["foot_kpts"][:-3]
    elif path == "bad_v":
        bad["annotations"][0]["keypoints"][2] = 0.6
    elif path == "unknown_image":
        bad["annotations"][-1]["image_id"] = 999
    elif path == "frame_outside":
        bad["images"][3]["file_name"] = f"frame_{FRAMES + 5}.jpg"
    elif path == "no_frame":
        bad["images"][2]["file_name"] = "still.jpg"
    elif path == "duplicate":
        bad["annotations"].append(copy.deepcopy(bad["annotations"][0]))
    elif path == "nan":
        bad["annotations"][1]["keypoints"][0] = float("nan")
    return bad


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("short_foot", "annotations[2]: foot_kpts must be a list of 18 numbers, got 15"),
        ("bad_v", "annotations[0]: the third value of each keypoints point is v"),
        ("unknown_image", "image_id 999 is not in 'images'"),
        ("frame_outside", f"images[3]: frame {FRAMES + 5} is outside the clip"),
        ("no_frame", "images[2]: give 'frame_index' or a file_name ending in the frame number"),
        ("duplicate", "track 1 has two annotations on frame 0"),
        ("nan", "annotations[1]: keypoints must hold finite numbers only"),
    ],
)
def test_a_malformed_coco_file_is_refused_and_writes_nothing(
    db: Session, clip: Clip, broken: str, message: str
) -> None:
    with pytest.raises(Invalid) as caught:
        drafts.import_coco_wholebody(db, clip, _drop(coco_file(), broken))
    assert message in caught.value.message
    assert count(db, clip, Character) == 0 and count(db, clip, KeypointFrame) == 0


def test_a_refused_import_keeps_the_previous_one(db: Session, clip: Clip) -> None:
    drafts.import_coco_wholebody(db, clip, coco_file())
    with pytest.raises(Invalid):
        drafts.import_coco_wholebody(db, clip, {"images": [], "annotations": []})
    assert count(db, clip, Character) == 2 and count(db, clip, KeypointFrame) == FRAMES + 2
