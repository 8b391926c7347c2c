"""What a researcher loading an export notices: stable ids, all-zero invalid parts, a YOLO
dataset that resolves, OpenPose frames without invented people."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.annotations.models import Annotation
from app.export.formats.ids import MAX_CLIP_ID, annotation_id, image_id
from tests.export.builders import approved_annotation, build_folder, media_clip, snapshot
from tests.factories import create_project


@pytest.fixture
def exported(db: Session) -> tuple[Any, list[Annotation]]:
    project = create_project(db)
    annotations = [approved_annotation(db, media_clip(db, project, f"clip {n}".encode()))
                   for n in range(3)]  # fmt: skip
    return project, annotations


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
