"""Exports label a point only where a person stands behind it (app/export/labels.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations.keypoint_edits import accept_above, save_frame
from app.annotations.models import Annotation, Character, KeypointFrame, NodeStatus, Track
from app.annotations.opening import open_annotation
from app.annotations.points import SRC_ACCEPTED, SRC_MODEL, SRC_PERSON, decode_with_sources
from app.auth.models import Role, User
from app.clips.models import Clip
from app.export import snapshot as export_snapshot
from app.export.formats.bundle import clip_key
from app.export.formats.coco import visibility
from app.export.labels import LabelRule, labelled_points
from app.projects.models import Project
from app.projects.skeletons import CONF, V, empty_pose
from tests.export.builders import media_clip, queued_snapshot
from tests.factories import create_model_draft, create_project, create_user

FLOOR = 0.3


def test_the_rule_labels_a_persons_points_and_counts_approved_model_points_only_when_asked():
    pose = empty_pose(4)
    pose[:, V] = [2, 1, 2, 0]
    pose[:, CONF] = [0.9, 0.2, 0.9, 0.9]
    sources = np.array([SRC_MODEL, SRC_PERSON, SRC_ACCEPTED, SRC_ACCEPTED], dtype=np.uint8)
    default, counting = LabelRule(), LabelRule(FLOOR, approved_model_points_count=True)
    assert labelled_points(pose, sources, default, track_status="approved").tolist() == [
        False, True, True, False
    ]  # fmt: skip
    assert labelled_points(pose, sources, counting, track_status="approved")[0]
    assert not labelled_points(pose, sources, counting, track_status="draft")[0]
    pose[0, CONF] = 0.25
    assert not labelled_points(pose, sources, counting, track_status="approved")[0]


def _model_copy(db: Session, project: Project, name: bytes) -> tuple[Annotation, Track, User]:
    """An annotator's untouched copy of a model draft (every point v=2, confidences 0.1-0.99)."""
    clip = media_clip(db, project, name)
    create_model_draft(db, clip)
    annotator = create_user(db, Role.annotator)
    annotation = open_annotation(db, clip, annotator)
    track = db.scalar(select(Track).join(Character).where(Character.annotation_id == annotation.id))
    assert track is not None
    return annotation, track, annotator


def _approve(db: Session, annotation: Annotation, track: Track) -> None:
    annotation.status = track.status = NodeStatus.approved
    annotation.is_primary = True
    db.flush()


def _stored(db: Session, track: Track, frame: int) -> tuple[np.ndarray, np.ndarray]:
    row = db.scalar(
        select(KeypointFrame).where(KeypointFrame.track_id == track.id,
                                    KeypointFrame.frame_index == frame)
    )  # fmt: skip
    assert row is not None
    return decode_with_sources(row.points)


def _exported(db: Session, project: Project, tmp_path: Path, annotation: Annotation) -> dict:
    """Frame -> (133 visibilities, 17 body triples) of the clip's COCO-WholeBody export."""
    snap = queued_snapshot(db, project.id, f"labels-{len(list(tmp_path.iterdir()))}",
                           ["coco_wholebody"])  # fmt: skip
    out = tmp_path / f"out-{snap.id}"
    out.mkdir()
    export_snapshot.write_snapshot(db, snap, out)
    coco = json.loads((out / "coco_wholebody.json").read_text())
    key = clip_key({"content_hash": db.get_one(Clip, annotation.clip_id).content_hash})
    images = {im["id"]: im["frame_index"] for im in coco["images"] if im["clip"] == key}
    return {
        images[a["image_id"]]: (np.array(visibility(a)), np.array(a["keypoints"]).reshape(17, 3))
        for a in coco["annotations"]
        if a["image_id"] in images
    }


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")


def test_untouched_model_points_of_an_approved_track_are_not_labelled_by_default(
    db: Session, tmp_path: Path
) -> None:
    project = create_project(db)
    annotation, track, _ = _model_copy(db, project, b"untouched")
    _approve(db, annotation, track)
    for v, body in _exported(db, project, tmp_path, annotation).values():
        assert not v.any()
        assert not body.any()  # not labelled: 0, 0, 0, never a model position


def test_the_project_setting_counts_approved_model_points_at_or_above_the_floor(
    db: Session, tmp_path: Path
) -> None:
    project = create_project(db)
    project.approved_model_points_count = True
    annotation, track, _ = _model_copy(db, project, b"counted")
    _approve(db, annotation, track)
    exported = _exported(db, project, tmp_path, annotation)
    assert sorted(exported) == [0, 1, 2, 3]  # every frame of the clip
    for frame, (v, _) in exported.items():
        pose, _ = _stored(db, track, frame)
        confident = pose[:, CONF] >= project.keypoint_confidence_floor
        assert confident.any() and not confident.all()
        assert v.tolist() == np.where(confident, 2, 0).tolist()
    track.status = NodeStatus.draft  # a track nobody approved counts nothing of the model's
    db.flush()
    assert all(not v.any() for v, _ in _exported(db, project, tmp_path, annotation).values())


def test_accepted_and_moved_points_are_labelled(db: Session, tmp_path: Path) -> None:
    project = create_project(db)
    annotation, track, annotator = _model_copy(db, project, b"touched")
    assert accept_above(db, annotator, track.id, 0.9, frames=[0]) > 0
    pose, _ = _stored(db, track, 1)
    points = [[float(x), float(y), int(v)] for x, y, v, _ in pose]
    points[0] = [12.0, 34.0, 1]
    row = db.scalar(
        select(KeypointFrame).where(KeypointFrame.track_id == track.id,
                                    KeypointFrame.frame_index == 1)
    )  # fmt: skip
    assert row is not None
    save_frame(db, annotator, track.id, 1, points, row.version)
    _approve(db, annotation, track)

    first, first_sources = _stored(db, track, 0)
    accepted = first[:, CONF] >= 0.9
    assert (first_sources[accepted] == SRC_ACCEPTED).all()
    assert (first_sources[~accepted] == SRC_MODEL).all()
    assert _stored(db, track, 1)[1].tolist() == [SRC_PERSON] + [SRC_MODEL] * 132

    exported = _exported(db, project, tmp_path, annotation)
    assert exported[0][0].tolist() == np.where(accepted, 2, 0).tolist()
    v, body = exported[1]
    assert v.tolist() == [1] + [0] * 132
    assert body[0].tolist() == [12.0, 34.0, 1] and not body[1:].any()
