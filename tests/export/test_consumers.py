"""An export loaded the way its consumers load it: pycocotools (COCO + COCOeval(gt, gt)) on a
split file, and a YOLO-pose reader written from Ultralytics' documented label format
(``class cx cy w h`` then K x ``(x y v)``, all normalised to [0, 1]; the label of
``.../images/<rest>.jpg`` is ``.../labels/<rest>.txt``), pairing every image with its label
line by line. Nothing is trained."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from sqlalchemy.orm import Session

from tests.export.builders import HEIGHT, WIDTH, approved_annotation, build_folder
from tests.export.test_frames_and_splits import video_clip, with_options
from tests.factories import create_project

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def read_yolo_pose(data_yaml: Path, split: str) -> list[tuple[Path, list[list[float]]]]:
    """(image, label rows) of every image of a split, as an Ultralytics-style loader pairs
    them; checks each row's shape and ranges."""
    data = yaml.safe_load(data_yaml.read_text())
    k, dims = data["kpt_shape"]
    images = sorted(p for p in (data_yaml.parent / data[split]).rglob("*")
                    if p.suffix.lower() in IMAGE_SUFFIXES)  # fmt: skip
    out = []
    for image in images:
        head, _, tail = str(image).rpartition("/images/")
        label = Path(f"{head}/labels/{tail}").with_suffix(".txt")
        rows = []
        for line in label.read_text().splitlines() if label.exists() else []:
            values = [float(v) for v in line.split()]
            assert len(values) == 5 + k * dims, line[:40]
            assert int(values[0]) in data["names"]
            kpts = np.asarray(values[5:]).reshape(k, dims)
            coords = np.concatenate([values[1:5], kpts[:, :2].ravel()])
            assert ((coords >= 0) & (coords <= 1)).all(), line[:40]
            assert set(kpts[:, 2].tolist()) <= {0, 1, 2}
            rows.append(values)
        out.append((image, rows))
    return out


def test_an_export_loads_in_pycocotools_and_an_ultralytics_style_reader(
    db: Session, tmp_path: Path
) -> None:
    project = create_project(db)
    for n in range(3):
        approved_annotation(db, video_clip(db, project, tmp_path, n, cached=n != 1))
    snap = with_options(db, project.id, ["coco_wholebody", "coco_person", "yolo"],
                        val_percent=34)  # fmt: skip
    out = build_folder(db, snap, tmp_path)

    train_json = out / "coco" / "person" / "train.json"
    gt = COCO(str(train_json))
    folder = out / gt.dataset["info"]["image_folder"]
    for image in gt.dataset["images"]:
        pixels = cv2.imread(str(folder / image["file_name"]))
        assert pixels is not None and pixels.shape[:2] == (image["height"], image["width"])
    results: list[dict[str, Any]] = [{**a, "score": 1.0} for a in gt.dataset["annotations"]]
    dt = gt.loadRes(results)
    ev = COCOeval(gt, dt, iouType="keypoints")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)

    wholebody = {im["file_name"]: im for im in json.loads(
        (out / "coco_wholebody.json").read_text())["images"]}  # fmt: skip
    anns: dict[int, list[dict[str, Any]]] = {}
    for ann in json.loads((out / "coco_wholebody.json").read_text())["annotations"]:
        anns.setdefault(ann["image_id"], []).append(ann)
    data_yaml = out / "yolo" / "data.yaml"
    paired = 0
    for split in ("train", "val"):
        for image, rows in read_yolo_pose(data_yaml, split):
            name = image.relative_to(data_yaml.parent / "images" / split).as_posix()
            coco_image = wholebody[name]
            assert coco_image["split"] == split
            expected = sorted(anns.get(coco_image["id"], []), key=lambda a: a["track_id"])
            assert len(rows) == len(expected)
            for row, ann in zip(rows, expected, strict=True):
                x, y, w, h = ann["bbox"]
                box = [(x + w / 2) / WIDTH, (y + h / 2) / HEIGHT, w / WIDTH, h / HEIGHT]
                assert row[1:5] == pytest.approx(box, abs=1e-4)  # COCO rounds to 0.01 px
                kpts = np.asarray(row[5:]).reshape(-1, 3)[:17]
                body = np.asarray(ann["keypoints"], dtype=float).reshape(17, 3)
                assert (kpts[:, 2] == body[:, 2]).all()
                seen = body[:, 2] > 0
                assert np.allclose(kpts[seen, 0] * WIDTH, body[seen, 0], atol=0.01)
                assert np.allclose(kpts[seen, 1] * HEIGHT, body[seen, 1], atol=0.01)
                paired += 1
    assert paired == len(anns) == 12
    labels = list((out / "yolo" / "labels").rglob("*.txt"))
    assert len(labels) == 12  # and every label had its image
