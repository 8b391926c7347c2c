"""Export snapshots checked by independent readers (pycocotools, zipfile, json) and round trips."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations.drafts import import_coco_wholebody, import_track_name
from app.annotations.models import (
    Annotation,
    Caption,
    Character,
    KeypointFrame,
    NodeStatus,
    Track,
)
from app.annotations.points import decode_points
from app.clips.models import Clip
from app.core.errors import Invalid
from app.export import build, service
from app.export import snapshot as export_snapshot
from app.export.archive import FIXED_DATE
from app.export.formats.coco import images_of_clip, visibility
from app.export.importer import import_captions
from app.projects.skeletons import COCO_WHOLEBODY, V, X, Y, part_validity
from tests.export.builders import (
    HEIGHT,
    WIDTH,
    approved_annotation,
    approved_clips,
    build_folder,
    key_of,
    media_clip,
    snapshot,
    stored_poses,
)
from tests.factories import create_clip, create_project, local_media

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")


@pytest.fixture
def exported(db: Session) -> tuple[object, list[Annotation]]:
    return approved_clips(db, 2)


def test_coco_person_file_loads_in_pycocotools_and_scores_perfectly_against_itself(
    db: Session, exported: tuple, tmp_path: Path
) -> None:
    project, annotations = exported
    out = build_folder(db, snapshot(db, project.id, ["coco_person"]), tmp_path)
    gt = COCO(str(out / "coco_person_keypoints.json"))
    n_frames = sum(len(stored_poses(db, a)) for a in annotations)
    assert len(gt.getImgIds()) == n_frames and len(gt.getAnnIds()) == n_frames
    results = [{**a, "score": 1.0} for a in gt.loadAnns(gt.getAnnIds())]
    evaluation = COCOeval(gt, gt.loadRes(results), iouType="keypoints")
    evaluation.params.kpt_oks_sigmas = np.array(COCO_WHOLEBODY.sigmas[:17])
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    assert evaluation.stats[0] == pytest.approx(1.0)


def _valid_parts_only(pose: np.ndarray) -> np.ndarray:
    """The labelled pose as COCO-WholeBody writes it: a part with a validity flag (all but the
    body) that is not valid is all zeros."""
    out = pose.copy()
    for part, valid in part_validity(pose, COCO_WHOLEBODY).items():
        if part != "body" and not valid:
            out[list(COCO_WHOLEBODY.parts[part])] = 0
    return out


def test_wholebody_part_arrays_and_visibility_match_the_stored_poses(
    db: Session, exported: tuple, tmp_path: Path
) -> None:
    project, annotations = exported
    out = build_folder(db, snapshot(db, project.id, ["coco_wholebody"]), tmp_path)
    coco = COCO(str(out / "coco_wholebody.json"))
    for annotation in annotations:
        truth = {f: _valid_parts_only(p) for f, p in stored_poses(db, annotation).items()}
        key = key_of(db, annotation)
        images = {im["frame_index"]: im for im in coco.dataset["images"] if im["clip"] == key}
        assert sorted(images) == sorted(truth)
        for frame, pose in truth.items():
            image = images[frame]
            assert image["file_name"] == f"{key}/{frame:06d}.jpg"
            assert (image["width"], image["height"]) == (WIDTH, HEIGHT)
            (ann,) = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))
            assert len(ann["keypoints"]) == 51 and len(ann["foot_kpts"]) == 18
            assert len(ann["face_kpts"]) == 204
            assert len(ann["lefthand_kpts"]) == len(ann["righthand_kpts"]) == 63
            assert visibility(ann) == pose[:, V].astype(int).tolist()
            hand = np.asarray(ann["lefthand_kpts"], dtype=float).reshape(21, 3)
            labelled = pose[91:112, V] > 0
            assert np.allclose(hand[labelled, :2], pose[91:112][labelled, :2], atol=0.01)
            assert (hand[~labelled] == 0).all()
            assert ann["num_keypoints"] == int((pose[:17, V] > 0).sum())
            assert ann["lefthand_valid"] == bool((pose[91:112, V] == 2).sum() >= 6)
            assert ann["track_id"] == 0 and ann["category_id"] == 1 and ann["iscrowd"] == 0


def test_coco_visibility_survives_a_round_trip_through_model_drafts(
    db: Session, exported: tuple, tmp_path: Path
) -> None:
    project, annotations = exported
    out = build_folder(db, snapshot(db, project.id, ["coco_wholebody"]), tmp_path)
    coco = json.loads((out / "coco_wholebody.json").read_text())
    clip = db.get_one(Clip, annotations[0].clip_id)
    import_coco_wholebody(db, clip, images_of_clip(coco, key_of(db, annotations[0])))
    draft_track = db.scalar(
        select(Track).join(Character).where(Character.name == import_track_name(0))
        .join(Annotation, Character.annotation_id == Annotation.id)
        .where(Annotation.clip_id == clip.id)
    )  # fmt: skip
    assert draft_track is not None
    rows = db.scalars(select(KeypointFrame).where(KeypointFrame.track_id == draft_track.id))
    imported = {r.frame_index: decode_points(r.points)[0] for r in rows}
    truth = {f: _valid_parts_only(p) for f, p in stored_poses(db, annotations[0]).items()}
    assert sorted(imported) == sorted(truth)
    for frame, pose in truth.items():
        assert (imported[frame][:, V] == pose[:, V]).all()
        assert np.allclose(imported[frame][:, :2], pose[:, :2], atol=0.01)


def test_only_approved_primary_annotations_are_exported_with_their_versions(
    db: Session, exported: tuple, tmp_path: Path
) -> None:
    project, annotations = exported
    pending = approved_annotation(db, media_clip(db, project, b"not yet"))
    pending.status = NodeStatus.submitted
    db.flush()
    snap = snapshot(db, project.id, ["captions"])
    build.build_now(db, snap)
    assert snap.annotation_versions == {str(a.id): a.version for a in annotations}
    with zipfile.ZipFile(local_media().path(snap.storage_key or "")) as zf:
        lines = zf.read("captions.jsonl").decode().splitlines()
        assert all(info.date_time == FIXED_DATE for info in zf.infolist())
    assert [json.loads(line)["clip_id"] for line in lines] == sorted(a.clip_id for a in annotations)


def test_a_limit_exports_the_first_matching_clips_across_pages(
    db: Session, exported: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, annotations = exported
    annotations += [approved_annotation(db, media_clip(db, project, f"more {n}".encode()))
                    for n in range(3)]  # fmt: skip
    monkeypatch.setattr(export_snapshot, "METADATA_CHUNK", 1)  # a page per clip
    snap = snapshot(db, project.id, ["captions"], limit=3)
    lines = (build_folder(db, snap, tmp_path) / "captions.jsonl").read_text().splitlines()
    first_three = sorted(a.clip_id for a in annotations)[:3]
    assert [json.loads(line)["clip_id"] for line in lines] == first_three


def test_a_snapshot_rebuilds_to_the_same_bytes(db: Session, exported: tuple) -> None:
    project, _ = exported
    snap = snapshot(db, project.id, ["coco_wholebody", "openpose", "yolo", "captions",
                                     "manifests", "cellabel", "agreement", "media"])  # fmt: skip
    build.build_now(db, snap)
    first = local_media().path(snap.storage_key or "").read_bytes()
    sha = snap.sha256
    snap.state = service.QUEUED
    build.build_now(db, snap)
    assert local_media().path(snap.storage_key or "").read_bytes() == first
    assert snap.sha256 == sha
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert names == sorted(names) and "snapshot.json" in names


def test_openpose_frames_follow_the_documented_body25_mapping(
    db: Session, exported: tuple, tmp_path: Path
) -> None:
    project, annotations = exported
    out = build_folder(db, snapshot(db, project.id, ["openpose"]), tmp_path)
    key = key_of(db, annotations[0])
    for frame, pose in stored_poses(db, annotations[0]).items():
        doc = json.loads(
            (out / "openpose" / key / f"{key}_{frame:012d}_keypoints.json").read_text()
        )
        (person,) = doc["people"]
        body = np.asarray(person["pose_keypoints_2d"]).reshape(25, 3)
        # BODY_25 2 = right shoulder (COCO 6), 5 = left shoulder (COCO 5), 22 = right big toe (20)
        for b25, coco in ((0, 0), (2, 6), (5, 5), (11, 16), (19, 17), (22, 20)):
            if pose[coco, V] > 0:
                assert body[b25, :2] == pytest.approx(pose[coco, [X, Y]], abs=0.01)
                assert body[b25, 2] == pytest.approx(pose[coco, 3], abs=1e-3)
            else:
                assert (body[b25] == 0).all()
        neck_known = pose[5, V] > 0 and pose[6, V] > 0
        expected_neck = (pose[5, :2] + pose[6, :2]) / 2 if neck_known else np.zeros(2)
        assert body[1, :2] == pytest.approx(expected_neck, abs=0.01)
        assert len(person["face_keypoints_2d"]) == 70 * 3
        assert len(person["hand_left_keypoints_2d"]) == len(person["hand_right_keypoints_2d"]) == 63
        assert (doc["canvas_width"], doc["canvas_height"]) == (WIDTH, HEIGHT)


def test_yolo_labels_are_normalised_and_flip_idx_swaps_sides(
    db: Session, exported: tuple, tmp_path: Path
) -> None:
    project, annotations = exported
    out = build_folder(db, snapshot(db, project.id, ["yolo"]), tmp_path)
    key = key_of(db, annotations[0])
    for frame, pose in stored_poses(db, annotations[0]).items():
        (line,) = (
            (out / "yolo" / "labels" / "train" / key / f"{frame:06d}.txt").read_text().splitlines()
        )
        values = np.asarray(line.split(), dtype=float)
        assert values[0] == 0 and len(values) == 5 + 133 * 3
        kpts = values[5:].reshape(133, 3)
        coords = np.concatenate([values[1:5], kpts[:, :2].ravel()])
        assert ((coords >= 0) & (coords <= 1)).all()
        assert (kpts[:, 2] == pose[:, V]).all()
        seen = pose[:, V] > 0
        assert np.allclose(kpts[seen, 0] * WIDTH, pose[seen, X], atol=0.01)
        assert np.allclose(kpts[seen, 1] * HEIGHT, pose[seen, Y], atol=0.01)
    data = (out / "yolo" / "data.yaml").read_text()
    flip = json.loads(data.split("flip_idx: ")[1].splitlines()[0])
    assert "kpt_shape: [133, 3]" in data
    assert flip[COCO_WHOLEBODY.index("left_shoulder")] == COCO_WHOLEBODY.index("right_shoulder")
    assert [flip[i] for i in flip] == list(range(133))


def test_captions_and_manifests_describe_each_clip(
    db: Session, exported: tuple, tmp_path: Path
) -> None:
    project, _ = exported
    out = build_folder(db, snapshot(db, project.id, ["captions", "manifests", "coco_wholebody",
                                                      "media"]), tmp_path)  # fmt: skip
    record = json.loads((out / "captions.jsonl").read_text().splitlines()[0])
    assert record["captions"] == {"short": "A small figure waves hello."}
    assert record["shots"][0]["captions"] == {"narrative": "The figure waves."}
    assert record["characters"][0]["emotions"] == [{"start": 0, "end": 2, "label": "amusement"}]
    assert record["speech"] == [{"start": 0.05, "end": 0.2, "transcript": "hello"}]
    pose_lines = (out / "manifests" / "pose.jsonl").read_text().splitlines()
    assert len(pose_lines) == 2 and (out / "manifests" / "face_video.jsonl").read_text() == ""
    entry = json.loads(pose_lines[0])
    assert (out / entry["media"]).read_bytes() == b"video 0"
    assert entry["annotations"] == {"coco_wholebody": "coco_wholebody.json",
                                    "captions": "captions.jsonl"}  # fmt: skip
    audio = json.loads((out / "manifests" / "face_audio.jsonl").read_text().splitlines()[0])
    assert audio["speech"] == [[0.05, 0.2]]


def test_captions_import_into_the_primary_or_the_model_draft(
    db: Session, exported: tuple, tmp_path: Path
) -> None:
    project, annotations = exported
    out = build_folder(db, snapshot(db, project.id, ["captions"]), tmp_path)
    path = out / "captions.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    lines[0]["captions"]["short"] = "Edited elsewhere."
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    report = import_captions(db, project, path, into="primary")
    assert report.captions == 1 and report.skipped == []
    texts = set(db.scalars(select(Caption.text).where(Caption.annotation_id == annotations[0].id)))
    assert "Edited elsewhere." in texts
    assert import_captions(db, project, path, into="primary").captions == 0  # nothing changed

    import_captions(db, project, path, into="model")
    draft = db.scalar(
        select(Annotation).where(
            Annotation.clip_id == annotations[0].clip_id, Annotation.kind == "model"
        )
    )
    assert draft is not None
    rows = db.scalars(select(Caption).where(Caption.annotation_id == draft.id))
    model = {(c.level.value, c.field): c.model_text for c in rows}
    assert model == {
        ("clip", "short"): "Edited elsewhere.",
        ("shot", "narrative"): "The figure waves.",
    }


def test_an_export_needs_approved_clips_and_a_free_name(db: Session) -> None:
    project = create_project(db)
    create_clip(db, project)
    with pytest.raises(Invalid):
        snapshot(db, project.id, ["captions"])
