"""Frames in the archive under the names the annotation files use, and the split by clip."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from sqlalchemy.orm import Session

from app.clips.filters import ClipFilter
from app.clips.models import Clip
from app.core.storage import clip_prefix
from app.export.models import ExportSnapshot
from app.export.options import ExportOptions
from app.export.snapshot import split_clips
from app.export.splits import SplitClip, assign_splits, share
from app.media.decode import read_frame
from app.media.framecache import build_frame_cache, open_frame_cache
from app.projects.models import Project
from tests.export.builders import (
    HEIGHT,
    WIDTH,
    approved_annotation,
    approved_clips,
    build_folder,
    key_of,
    media_clip,
    snapshot,
)
from tests.factories import create_project, local_media
from tests.media.videos import write_pyav

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")


def video_clip(db: Session, project: Project, tmp_path: Path, n: int, cached: bool) -> Clip:
    """A clip whose file is a real 4-frame video (distinct per ``n``), with its frame cache
    built when ``cached``."""
    path = write_pyav(tmp_path / f"v{n}.mp4", frames=4, width=WIDTH, height=HEIGHT, fps=12 + n)
    clip = media_clip(db, project, path.read_bytes())
    if cached:
        build_frame_cache(
            clip_path(clip), local_media().path(clip_prefix(project.id, clip.id)) / "frames"
        )
    return clip


def clip_path(clip: Clip) -> Path:
    return local_media().path(clip.storage_key)


def with_options(
    db: Session, project_id: int, formats: list[str], **options: object
) -> ExportSnapshot:
    snap = snapshot(db, project_id, formats)
    snap.options = ExportOptions.model_validate(options).model_dump(mode="json")
    db.flush()
    return snap


def test_every_coco_file_name_and_yolo_label_has_its_frame_from_the_cache_or_the_source(
    db: Session, tmp_path: Path
) -> None:
    project = create_project(db)
    cached = video_clip(db, project, tmp_path, 0, cached=True)
    decoded = video_clip(db, project, tmp_path, 1, cached=False)
    for clip in (cached, decoded):
        approved_annotation(db, clip)
    snap = with_options(db, project.id, ["coco_wholebody", "yolo"], val_percent=0)
    out = build_folder(db, snap, tmp_path)
    root = out / "yolo"
    data = yaml.safe_load((root / "data.yaml").read_text())
    coco = json.loads((out / "coco" / "wholebody" / "train.json").read_text())
    assert coco["info"]["image_folder"] == "yolo/images/train" and len(coco["images"]) == 8
    for image in coco["images"]:
        path = out / coco["info"]["image_folder"] / image["file_name"]
        assert path.is_file(), path
        assert path.relative_to(root / data["train"]).as_posix() == image["file_name"]
    labels = sorted((root / "labels").rglob("*.txt"))
    assert len(labels) == 8
    for label in labels:
        head, _, tail = str(label).rpartition("/labels/")
        assert Path(f"{head}/images/{tail}").with_suffix(".jpg").is_file()
    cache = open_frame_cache(local_media().path(clip_prefix(project.id, cached.id)) / "frames")
    key = key_of_clip(cached)
    for frame in range(4):
        written = (root / "images" / "train" / key / f"{frame:06d}.jpg").read_bytes()
        assert written == cache.read_frame(frame)  # the cache's JPEG as is
    key = key_of_clip(decoded)
    for frame in range(4):
        written = root / "images" / "train" / key / f"{frame:06d}.jpg"
        got = cv2.cvtColor(cv2.imread(str(written)), cv2.COLOR_BGR2RGB).astype(int)
        expected = read_frame(clip_path(decoded), frame).astype(int)
        assert np.abs(got - expected).mean() < 3  # the same frame, within JPEG's loss


def test_png_frames_and_frames_left_out(db: Session, tmp_path: Path) -> None:
    project = create_project(db)
    clip = video_clip(db, project, tmp_path, 2, cached=True)
    approved_annotation(db, clip)
    out = build_folder(db, with_options(db, project.id, ["coco_person"], image_format="png",
                                        val_percent=0), tmp_path)  # fmt: skip
    coco = json.loads((out / "coco" / "person" / "train.json").read_text())
    for image in coco["images"]:
        png = out / "images" / "train" / image["file_name"]
        assert png.suffix == ".png"
        got = cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB)
        assert (got == read_frame(clip_path(clip), image["frame_index"])).all()  # lossless
    none = build_folder(db, snapshot(db, project.id, ["coco_person", "yolo"]), tmp_path)
    assert not list(none.rglob("*.jpg")) and not (none / "images").exists()


def key_of_clip(clip: Clip) -> str:
    return str(clip.content_hash)[:16]


# --------------------------------------------------------------------------- split


def strata_clips(per_stratum: int) -> list[SplitClip]:
    kinds = (("human",), ("creature",), ("human", "creature"))
    subsets = (("pose",), ("face_video", "i2v"))
    out: list[SplitClip] = []
    for s, subset in enumerate(subsets):
        for k, kind in enumerate(kinds):
            for _ in range(per_stratum + s + k):
                cid = len(out) + 1
                out.append(SplitClip(cid, f"{cid:016x}", subset, kind))
    return out


@pytest.mark.parametrize(("val", "test"), [(10, 0), (20, 10), (33.3, 33.3), (50, 0)])
def test_the_split_is_by_clip_seeded_and_proportional_per_stratum(val: float, test: float) -> None:
    clips = strata_clips(7)
    options = ExportOptions(val_percent=val, test_percent=test, split_seed=4)
    split = assign_splits(clips, options)
    assert set(split) == {c.clip_id for c in clips}  # each clip exactly one side
    assert assign_splits(list(reversed(clips)), options) == split  # order does not matter
    other = assign_splits(clips, options.model_copy(update={"split_seed": 5}))
    assert other != split  # the seed decides
    strata: dict[object, list[int]] = {}
    for c in clips:
        strata.setdefault(c.stratum, []).append(c.clip_id)
    for members in strata.values():
        n = len(members)
        for name, percent in (("val", val), ("test", test)):
            got = sum(split[m] == name for m in members)
            assert abs(got - n * percent / 100) <= 1 and got == share(n, percent)


def test_two_snapshots_with_the_same_seed_split_the_same_clips_the_same_way(
    db: Session, tmp_path: Path
) -> None:
    project, annotations = approved_clips(db, 6)
    first = with_options(db, project.id, ["coco_wholebody", "yolo", "manifests"], val_percent=34,
                         test_percent=17, split_seed=9, frames=False)  # fmt: skip
    second = with_options(db, project.id, ["coco_wholebody", "manifests"], val_percent=34,
                          test_percent=17, split_seed=9, frames=False)  # fmt: skip
    second.name = "again"
    outs = [build_folder(db, s, tmp_path) for s in (first, second)]
    sides = []
    for out in outs:
        side: dict[str, str] = {}
        for split in ("train", "val", "test"):
            doc = json.loads((out / "coco" / "wholebody" / f"{split}.json").read_text())
            for image in doc["images"]:
                assert side.setdefault(image["clip"], split) == split  # no clip on two sides
        for line in (out / "manifests" / "pose.jsonl").read_text().splitlines():
            record = json.loads(line)
            assert record["split"] == side[record["clip"]]
        sides.append(side)
    assert sides[0] == sides[1] and sorted(sides[0].values()) == [
        "test",
        "train",
        "train",
        "train",
        "val",
        "val",
    ]
    yolo = outs[0] / "yolo"
    for key, split in sides[0].items():
        assert (yolo / "labels" / split / key).is_dir()
    assert yaml.safe_load((yolo / "data.yaml").read_text())["test"] == "images/test"
    strata = {c.stratum for c in split_clips(db, project.id, ClipFilter())}
    assert len(strata) == 1 and {key_of(db, a) for a in annotations} == set(sides[0])
