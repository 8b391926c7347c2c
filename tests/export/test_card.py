"""The dataset card (README.md, stats.json, contact_sheet.png, splits.csv) agrees with the
files of the same snapshot."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations.models import Annotation, Character, KeypointFrame, Track
from app.annotations.points import decode_points
from app.export.formats.coco import WHOLEBODY_PARTS
from tests.export.builders import approved_annotation, build_folder, run_card_sample
from tests.export.test_frames_and_splits import video_clip, with_options
from tests.factories import create_project

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")


def test_the_card_counts_what_the_files_hold(db: Session, tmp_path: Path, media_root: Path) -> None:
    project = create_project(db)
    annotations = [approved_annotation(db, video_clip(db, project, tmp_path, n, cached=n > 0))
                   for n in range(4)]  # fmt: skip
    snap = with_options(db, project.id, ["coco_wholebody", "yolo", "manifests"],
                        val_percent=25, licence="CC BY 4.0", source="studio reels")  # fmt: skip
    out = build_folder(db, snap, tmp_path)
    stats = json.loads((out / "stats.json").read_text())
    coco = json.loads((out / "coco_wholebody.json").read_text())
    assert stats["clips"] == len({im["clip"] for im in coco["images"]}) == 4
    assert stats["keypoint_annotations"] == len(coco["annotations"])
    for subset, count in stats["clips_per_subset"].items():
        manifest = (out / "manifests" / f"{subset}.jsonl").read_text().splitlines()
        assert count == len(manifest)
    for split, sizes in stats["splits"].items():
        doc = json.loads((out / "coco" / "wholebody" / f"{split}.json").read_text())
        assert sizes["images"] == len(doc["images"])
        assert sizes["clips"] == len({im["clip"] for im in doc["images"]})
    assert (stats["splits"]["train"]["clips"], stats["splits"]["val"]["clips"]) == (3, 1)
    labelled = {"body": 0, "feet": 0, "face": 0, "left_hand": 0, "right_hand": 0}
    for ann in coco["annotations"]:
        labelled["body"] += sum(v > 0 for v in ann["keypoints"][2::3])
        for name, _, _, part, _ in WHOLEBODY_PARTS:
            labelled[part] += sum(v > 0 for v in ann[name][2::3])
    assert stats["labelled_points_per_part"] == labelled
    shares = stats["labelled_share_per_part"]
    assert shares["body"] == pytest.approx(labelled["body"] / (17 * 16), abs=1e-4)
    people = models = 0
    for annotation in annotations:
        for row in stored_points(db, annotation):
            pose, human = decode_points(row)
            seen = pose[:, 2] > 0
            people += int((seen & human).sum())
            models += int((seen & ~human).sum())
    provenance = stats["provenance_of_labelled_points"]
    assert provenance["points"] == {"person": people, "model": models}
    assert provenance["shares"]["person"] == pytest.approx(people / (people + models), abs=1e-4)
    assert (stats["licence"], stats["source"]) == ("CC BY 4.0", "studio reels")
    rows = list(csv.DictReader((out / "splits.csv").open()))
    assert sorted(r["clip"] for r in rows) == sorted({im["clip"] for im in coco["images"]})
    assert {r["clip"]: r["split"] for r in rows} == {
        im["clip"]: im["split"] for im in coco["images"]
    }
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[1] == 4 * 320
    readme = (out / "README.md").read_text()
    assert "CC BY 4.0" in readme and "studio reels" in readme and "contact_sheet.png" in readme
    assert f"| train | 3 | {stats['splits']['train']['images']} |" in readme
    assert "-start_number 0" not in readme

    without = with_options(db, project.id, ["coco_person"], frames=False, split_seed=1)
    without.name = "no frames"
    out = build_folder(db, without, tmp_path)
    readme = (out / "README.md").read_text()
    assert "ffmpeg" in readme and "-start_number 0" in readme
    assert '"images/$split/$clip/%06d.jpg"' in readme and "under the CelLabel instance's" in readme
    assert json.loads((out / "stats.json").read_text())["clip_files"]["media_root"] == 4
    for language in ("python", "sh"):
        shutil.rmtree(out / "images", ignore_errors=True)
        run_card_sample(out, language, MEDIA_ROOT=str(media_root))
        assert_sample_made_every_image(out, 4)


@pytest.mark.parametrize("image_format", ["jpg", "png"])
def test_the_cards_sample_recreates_the_frames_from_the_media_the_archive_carries(
    db: Session, tmp_path: Path, image_format: str
) -> None:
    project = create_project(db)
    for n in range(2):
        approved_annotation(db, video_clip(db, project, tmp_path, n, cached=False))
    snap = with_options(db, project.id, ["coco_person", "media"], frames=False,
                        image_format=image_format)  # fmt: skip
    out = build_folder(db, snap, tmp_path)
    rows = list(csv.DictReader((out / "splits.csv").open()))
    assert all(row["source"] == f"media/{row['clip']}.mp4" for row in rows)
    assert "in this archive (`media/`)" in (out / "README.md").read_text()
    for language in ("python", "sh"):
        shutil.rmtree(out / "images", ignore_errors=True)
        run_card_sample(out, language)  # no MEDIA_ROOT, no store: the archive alone
        assert_sample_made_every_image(out, 2, image_format)


def assert_sample_made_every_image(out: Path, clips: int, ext: str = "jpg") -> None:
    """The card's sample wrote every frame of every clip, under the names COCO gives them."""
    coco = json.loads((out / "coco_person_keypoints.json").read_text())
    made = {p.relative_to(out / "images").as_posix() for p in (out / "images").rglob(f"*.{ext}")}
    named = {f"{im['split']}/{im['file_name']}" for im in coco["images"]}
    assert named and named <= made
    assert len(made) == 4 * clips  # every frame, annotated or not


def stored_points(db: Session, annotation: Annotation) -> list[bytes]:
    query = (select(KeypointFrame.points).join(Track).join(Character)
             .where(Character.annotation_id == annotation.id))  # fmt: skip
    return list(db.scalars(query))
