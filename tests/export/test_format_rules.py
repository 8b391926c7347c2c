"""What a researcher loading an export notices: stable ids, all-zero invalid parts, a YOLO
dataset that resolves, OpenPose frames without invented people."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from pycocotools.coco import COCO
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations.models import Annotation, Character, KeypointFrame, Track
from app.annotations.points import encode_points
from app.export.formats.boxes import BOX_PADDING
from app.export.formats.ids import MAX_CLIP_ID, annotation_id, image_id
from app.projects.models import Project
from app.projects.skeletons import PoseArray, empty_pose
from tests.export.builders import (
    HEIGHT,
    WIDTH,
    approved_clips,
    build_folder,
    key_of,
    snapshot,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")


@pytest.fixture
def exported(db: Session) -> tuple[Project, list[Annotation]]:
    return approved_clips(db, 3)


def coco_ids(path: Path) -> tuple[dict[tuple[int, int], int], dict[tuple[int, int, int], int]]:
    """(clip id, frame) -> image id and (clip id, track, frame) -> annotation id of a COCO file."""
    doc = json.loads(path.read_text())
    images = {(im["clip_id"], im["frame_index"]): im["id"] for im in doc["images"]}
    where = {im["id"]: (im["clip_id"], im["frame_index"]) for im in doc["images"]}
    anns = {}
    for ann in doc["annotations"]:
        clip_id, frame = where[ann["image_id"]]
        anns[(clip_id, ann["track_id"], frame)] = ann["id"]
    return images, anns


def test_ids_are_equal_across_snapshots_subsets_and_formats(
    db: Session, exported: tuple, tmp_path: Path
) -> None:
    project, annotations = exported
    full = build_folder(db, snapshot(db, project.id, ["coco_wholebody", "coco_person"]), tmp_path)
    last = annotations[-1].clip_id
    subset = build_folder(
        db, snapshot(db, project.id, ["coco_wholebody"], clip_ids=[last]), tmp_path
    )
    images, anns = coco_ids(full / "coco_wholebody.json")
    sub_images, sub_anns = coco_ids(subset / "coco_wholebody.json")
    assert sub_images and sub_anns
    assert sub_images == {k: v for k, v in images.items() if k[0] == last}
    assert sub_anns == {k: v for k, v in anns.items() if k[0] == last}
    person_images, person_anns = coco_ids(full / "coco_person_keypoints.json")
    assert person_images == images
    assert person_anns.items() <= anns.items()
    # the documented scheme, and every id distinct
    assert all(v == k[0] * 10**6 + k[1] for k, v in images.items())
    assert all(v == (k[0] * 10**6 + k[2]) * 100 + k[1] for k, v in anns.items())
    assert len(set(anns.values())) == len(anns)


def test_stable_ids_refuse_inputs_they_cannot_keep_apart() -> None:
    assert image_id(7, 42) == 7_000_042
    assert annotation_id(7, 3, 42) == 700_004_203
    assert annotation_id(MAX_CLIP_ID, 99, 999_999) <= 2**53 - 1
    for bad in ((0, 0, 0), (MAX_CLIP_ID + 1, 0, 0), (1, 100, 0), (1, -1, 0), (1, 0, 10**6)):
        with pytest.raises(ValueError, match="stable export id"):
            annotation_id(*bad)


def store_poses(db: Session, annotation: Annotation, pose_of: Callable[[int], PoseArray]) -> None:
    """Replace every stored frame of the annotation's track with ``pose_of(frame)``, as placed
    by a person."""
    track = db.scalar(select(Track).join(Character).where(Character.annotation_id == annotation.id))
    assert track is not None
    for row in db.scalars(select(KeypointFrame).where(KeypointFrame.track_id == track.id)):
        row.points = encode_points(pose_of(row.frame_index), np.ones(133, dtype=bool))
    db.flush()


def part_test_pose(frame: int) -> PoseArray:
    """Body and right hand clearly visible; feet only hidden (v=1) and clamped onto the
    frame's bottom edge, left hand 5 of 21 visible (below a quarter), face 17 of 68 visible
    (exactly a quarter)."""
    pose = empty_pose(133)
    pose[:, 0] = 30 + np.arange(133) % 200 + frame
    pose[:, 1] = 20 + (np.arange(133) * 3) % 180
    pose[17:23, 1] = HEIGHT - 1
    pose[:, 3] = 1.0
    pose[0:17, 2] = 2
    pose[17:23, 2] = 1
    pose[91:96, 2] = 2
    pose[96:100, 2] = 1
    pose[23:40, 2] = 2
    pose[112:133, 2] = 2
    pose[pose[:, 2] == 0, :2] = 0
    return pose


def padded_body_box(ann: dict[str, Any]) -> list[float]:
    """The documented person box: the labelled body and feet points' tight box scaled by
    BOX_PADDING about its centre, clipped to the image."""
    shown = np.concatenate([np.asarray(ann[f]).reshape(-1, 3) for f in ("keypoints", "foot_kpts")])
    shown = shown[shown[:, 2] > 0]
    (x0, y0), (x1, y1) = shown[:, :2].min(axis=0), shown[:, :2].max(axis=0)
    dx, dy = (x1 - x0) * (BOX_PADDING - 1) / 2, (y1 - y0) * (BOX_PADDING - 1) / 2
    x0, y0, x1, y1 = max(0, x0 - dx), max(0, y0 - dy), min(WIDTH, x1 + dx), min(HEIGHT, y1 + dy)
    return [x0, y0, x1 - x0, y1 - y0]


def test_invalid_parts_are_all_zero_and_valid_part_boxes_use_their_own_points(
    db: Session, exported: tuple, tmp_path: Path
) -> None:
    project, annotations = exported
    store_poses(db, annotations[0], part_test_pose)
    out = build_folder(db, snapshot(db, project.id, ["coco_wholebody", "coco_person"]), tmp_path)
    coco = COCO(str(out / "coco_wholebody.json"))
    person = COCO(str(out / "coco_person_keypoints.json"))
    clip_id = annotations[0].clip_id
    images = [im["id"] for im in coco.dataset["images"] if im["clip_id"] == clip_id]
    assert images
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=images)):
        assert ann["foot_valid"] is False and ann["lefthand_valid"] is False
        assert ann["foot_kpts"] == [0] * 18 and ann["lefthand_kpts"] == [0] * 63
        assert ann["lefthand_box"] == [0, 0, 0, 0]
        assert ann["face_valid"] is True and ann["righthand_valid"] is True
        frame = coco.imgs[ann["image_id"]]["frame_index"]
        pose = part_test_pose(frame)
        for field, idx in (("face_box", slice(23, 40)), ("righthand_box", slice(112, 133))):
            xs, ys = pose[idx, 0], pose[idx, 1]
            expected = [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]
            assert ann[field] == pytest.approx(expected, abs=0.01)
        face = np.asarray(ann["face_kpts"]).reshape(68, 3)
        assert (face[:17, 2] == 2).all() and (face[17:] == 0).all()
        # the box holds the body points the file shows (padded), not the zeroed feet on the
        # bottom edge
        assert ann["bbox"] == pytest.approx(padded_body_box(ann), abs=0.01)
        assert ann["bbox"][1] + ann["bbox"][3] < HEIGHT - 1
        assert person.anns[ann["id"]]["bbox"] == ann["bbox"]


def test_an_annotation_with_only_invalid_parts_labelled_is_left_out(
    db: Session, exported: tuple, tmp_path: Path
) -> None:
    project, annotations = exported

    def hidden_feet_only(frame: int) -> PoseArray:
        pose = empty_pose(133)
        pose[17:23] = [50.0, HEIGHT - 1, 1, 0.1]
        return pose

    store_poses(db, annotations[0], hidden_feet_only)
    out = build_folder(db, snapshot(db, project.id, ["coco_wholebody"]), tmp_path)
    coco = COCO(str(out / "coco_wholebody.json"))
    images = [im["id"] for im in coco.dataset["images"] if im["clip_id"] == annotations[0].clip_id]
    assert len(images) == 4 and coco.getAnnIds(imgIds=images) == []


def test_the_box_is_the_padded_body_box_and_stray_hand_or_face_points_do_not_stretch_it(
    db: Session, exported: tuple, tmp_path: Path
) -> None:
    project, annotations = exported

    def stray(frame: int) -> PoseArray:
        pose = part_test_pose(frame)
        pose[17:23, 2] = 2  # feet valid and inside the body's reach
        pose[17:23, :2] = (150, 200)
        pose[112, :2], pose[112, 2] = (WIDTH - 2, 2), 2  # a stray right-hand point far right
        pose[23, :2], pose[23, 2] = (2, HEIGHT - 2), 2  # a stray face point bottom left
        return pose

    store_poses(db, annotations[0], stray)
    out = build_folder(db, snapshot(db, project.id, ["coco_wholebody", "yolo"]), tmp_path)
    coco = json.loads((out / "coco_wholebody.json").read_text())
    clip_id = annotations[0].clip_id
    images = {im["id"]: im for im in coco["images"] if im["clip_id"] == clip_id}
    anns = [a for a in coco["annotations"] if a["image_id"] in images]
    assert len(anns) == 4
    for ann in anns:
        pose = stray(images[ann["image_id"]]["frame_index"])
        body = pose[:23][pose[:23, 2] > 0]
        assert ann["bbox"] == pytest.approx(padded_body_box(ann), abs=0.01)
        x, y, w, h = ann["bbox"]
        assert x > 2 and x + w < WIDTH - 2 and y + h < HEIGHT - 2  # the stray points are outside
        assert w == pytest.approx(min(WIDTH, np.ptp(body[:, 0]) * BOX_PADDING), abs=0.02)
        assert ann["area"] == pytest.approx(w * h, abs=0.05)
        key, frame = images[ann["image_id"]]["clip"], images[ann["image_id"]]["frame_index"]
        line = (out / "yolo" / "labels" / "train" / key / f"{frame:06d}.txt").read_text()
        cx, cy, bw, bh = (float(v) for v in line.split()[1:5])
        assert (cx * WIDTH, cy * HEIGHT) == pytest.approx((x + w / 2, y + h / 2), abs=0.01)
        assert (bw * WIDTH, bh * HEIGHT) == pytest.approx((w, h), abs=0.01)


def test_a_person_drawn_box_wins_over_the_padded_body_box_clipped_to_the_image(
    db: Session, exported: tuple, tmp_path: Path
) -> None:
    project, annotations = exported
    store_poses(db, annotations[0], part_test_pose)
    drawn = {0: [12.0, 8.0, 100.0, 90.0], 2: [WIDTH - 50.0, 10.0, 80.0, 60.0]}  # 2 overhangs
    track = db.scalar(
        select(Track).join(Character).where(Character.annotation_id == annotations[0].id)
    )
    assert track is not None
    for row in db.scalars(select(KeypointFrame).where(KeypointFrame.track_id == track.id)):
        row.box = drawn.get(row.frame_index)
    db.flush()
    formats = ["coco_wholebody", "coco_person", "yolo"]
    out = build_folder(db, snapshot(db, project.id, formats), tmp_path)
    expected = {0: [12.0, 8.0, 100.0, 90.0], 2: [WIDTH - 50.0, 10.0, 50.0, 60.0]}
    coco = json.loads((out / "coco_wholebody.json").read_text())
    images = {im["id"]: im for im in coco["images"] if im["clip_id"] == annotations[0].clip_id}
    anns = {images[a["image_id"]]["frame_index"]: a for a in coco["annotations"]
            if a["image_id"] in images}  # fmt: skip
    person = json.loads((out / "coco_person_keypoints.json").read_text())
    person_boxes = {a["id"]: a["bbox"] for a in person["annotations"]}
    assert len(anns) == 4
    for frame, ann in anns.items():
        assert person_boxes[ann["id"]] == ann["bbox"]  # the same box in both COCO files
        box = expected.get(frame)
        if box is None:  # no drawn box: the padded body box as before
            assert ann["bbox"] == pytest.approx(padded_body_box(ann), abs=0.01)
            continue
        assert ann["bbox"] == pytest.approx(box, abs=0.01)
        assert ann["area"] == pytest.approx(box[2] * box[3], abs=0.05)
        key = images[ann["image_id"]]["clip"]
        line = (out / "yolo" / "labels" / "train" / key / f"{frame:06d}.txt").read_text()
        cx, cy, bw, bh = (float(v) for v in line.split()[1:5])
        x, y, w, h = box
        assert (cx * WIDTH, cy * HEIGHT) == pytest.approx((x + w / 2, y + h / 2), abs=0.01)
        assert (bw * WIDTH, bh * HEIGHT) == pytest.approx((w, h), abs=0.01)


def ultralytics_label_path(image: Path) -> Path:
    """Ultralytics' documented pairing: the last ``/images/`` of an image path becomes
    ``/labels/`` and the suffix ``.txt``."""
    head, _, tail = str(image).rpartition("/images/")
    return Path(f"{head}/labels/{tail}").with_suffix(".txt")


def test_yolo_data_yaml_resolves_beside_the_labels_and_pairs_with_coco_names(
    db: Session, exported: tuple, tmp_path: Path
) -> None:
    project, _ = exported
    out = build_folder(db, snapshot(db, project.id, ["yolo", "coco_wholebody"]), tmp_path)
    root = out / "yolo"
    data = yaml.safe_load((root / "data.yaml").read_text())
    assert "path" not in data  # absent: Ultralytics resolves against the yaml's folder
    assert data["kpt_shape"] == [133, 3] and data["names"] == {0: "person"}
    for split in ("train", "val"):
        folder, name = Path(data[split]).parts  # images/<split>, beside labels/<split>
        assert folder == "images" and (root / "labels" / name).is_dir()
    coco = json.loads((out / "coco_wholebody.json").read_text())
    expected = {
        ultralytics_label_path(root / data["train"] / im["file_name"]) for im in coco["images"]
    }
    written = set((root / "labels").rglob("*.txt"))
    assert written and written == expected


def test_openpose_frame_with_nobody_labelled_has_no_people(
    db: Session, exported: tuple, tmp_path: Path
) -> None:
    project, annotations = exported
    empty = 1
    store_poses(db, annotations[0], lambda f: empty_pose(133) if f == empty else part_test_pose(f))
    out = build_folder(db, snapshot(db, project.id, ["openpose"]), tmp_path)
    key = key_of(db, annotations[0])
    files = sorted((out / "openpose" / key).glob("*_keypoints.json"))
    assert len(files) == 4
    for frame, path in enumerate(files):
        assert path.name == f"{key}_{frame:012d}_keypoints.json"
        people = json.loads(path.read_text())["people"]
        if frame == empty:
            assert people == []
        else:
            (person,) = people
            assert any(person["pose_keypoints_2d"])
