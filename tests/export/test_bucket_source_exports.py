"""A clip read in place from a registered bucket source (a real SeaweedFS) exports its pixels:
frame images, the copy of its file and the training packages all come from the source's
bucket, whichever store holds this instance's own media; and the dataset card's sample reads
it from there."""

from __future__ import annotations

import csv
import json
import shutil
import uuid
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clips import bucket_sources as sources
from app.clips.models import Clip, ClipState
from app.export.formats.bundle import clip_key
from app.media.decode import Image, iter_frames
from app.pipeline.steps import frames_step, probe_step
from app.projects.models import Project
from tests.clips.test_bucket_sources import source_form
from tests.export.builders import approved_annotation, build_folder, run_card_sample
from tests.export.test_frames_and_splits import video_clip, with_options
from tests.factories import create_project
from tests.media.videos import write_pyav
from tests.object_store import ACCESS_KEY, REGION, SECRET_KEY, SeaweedServer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")


def bucket_clip(db: Session, store: SeaweedServer, video: Path) -> Clip:
    """``video`` put in a team's bucket, listed as a clip of a new project through a registered
    source, and processed there (probe, then the frame cache) as a worker would."""
    bucket = store.make_bucket(f"team-{uuid.uuid4().hex[:10]}")
    store.client().put_object(Bucket=bucket, Key="reels/one.mp4", Body=video.read_bytes())
    project = create_project(db)
    source = sources.register_source(db, project, source_form(store, f"s3://{bucket}/reels/"))
    sources.sync_source(db, source.id)
    clip = db.scalars(select(Clip).where(Clip.source_id == source.id)).one()
    probe_step(db, clip)
    frames_step(db, clip)
    clip.state, clip.subsets = ClipState.ready, ["pose", "i2v"]
    db.flush()
    return clip


def image_rgb(path: Path) -> Image:
    """An image file's pixels as RGB."""
    return cast(Image, cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))


@pytest.mark.parametrize("media", ["local", "bucket"])
def test_a_bucket_source_clip_exports_its_frames_file_and_packages_from_its_bucket(
    db: Session, object_store: SeaweedServer, tmp_path: Path, request: pytest.FixtureRequest,
    media: str,
) -> None:  # fmt: skip
    if media == "bucket":  # this instance's media in a bucket of its own, not the source's
        request.getfixturevalue("use_object_store")
    video = write_pyav(tmp_path / "one.mp4", frames=6, width=96, height=64, fps=12)
    clip = bucket_clip(db, object_store, video)
    approved_annotation(db, clip)
    formats = ["coco_wholebody", "media", "pose_package", "i2v_package"]
    # PNG: the frames are decoded from the source (the cache holds JPEGs) and compare exactly.
    snap = with_options(db, clip.project_id, formats, image_format="png", val_percent=0)
    out = build_folder(db, snap, tmp_path)

    source_frames = list(iter_frames(video))
    coco = json.loads((out / "coco" / "wholebody" / "train.json").read_text())
    assert len(coco["images"]) == 6
    for image in coco["images"]:
        png = out / coco["info"]["image_folder"] / image["file_name"]
        assert np.array_equal(image_rgb(png), source_frames[image["frame_index"]])
    assert (out / "media" / f"{clip_key({'content_hash': clip.content_hash})}.mp4").read_bytes() \
        == video.read_bytes()  # fmt: skip
    for subset in ("pose", "i2v"):
        rows = (out / "packages" / subset / "manifest.jsonl").read_text().splitlines()
        assert sum(json.loads(row)["frames"] for row in rows) == 6
    for row in map(json.loads, (out / "packages" / "i2v" / "manifest.jsonl").open()):
        first = out / "packages" / "i2v" / row["first_frame"]
        assert row["clip_id"] == clip.id
        assert np.array_equal(image_rgb(first), source_frames[row["start_frame"]])


def test_the_cards_sample_reads_a_bucket_source_clip_from_its_bucket(
    db: Session, object_store: SeaweedServer, tmp_path: Path, media_root: Path
) -> None:
    video = write_pyav(tmp_path / "one.mp4", frames=6, width=96, height=64, fps=12)
    clip = bucket_clip(db, object_store, video)
    approved_annotation(db, clip)
    imported = video_clip(db, db.get_one(Project, clip.project_id), tmp_path, 1, cached=False)
    approved_annotation(db, imported)  # beside it, a clip in this instance's MEDIA_ROOT
    out = build_folder(db, with_options(db, clip.project_id, ["coco_person"], frames=False,
                                        val_percent=0), tmp_path)  # fmt: skip
    rows = {int(row["clip_id"]): row for row in csv.DictReader((out / "splits.csv").open())}
    bucket = sources.get_source(db, clip.source_id or 0).url.split("/")[2]
    assert rows[clip.id]["source"] == f"s3://{bucket}/reels/one.mp4"
    assert rows[imported.id]["source"] == imported.storage_key
    readme = (out / "README.md").read_text()
    assert "in a bucket (`s3://bucket/key`" in readme and "instance's MEDIA_ROOT" in readme

    env = {"AWS_ENDPOINT_URL": object_store.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
           "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": REGION,
           "MEDIA_ROOT": str(media_root)}  # fmt: skip
    for language, loss in (("python", 3), ("sh", 6)):  # the ffmpeg loop: its own JPEG quality
        shutil.rmtree(out / "images", ignore_errors=True)
        run_card_sample(out, language, **env)
        for row, source in ((rows[clip.id], video), (rows[imported.id], tmp_path / "v1.mp4")):
            made = sorted((out / "images" / "train" / row["clip"]).glob("*.jpg"))
            expected = list(iter_frames(source))
            assert [p.name for p in made] == [f"{n:06d}.jpg" for n in range(len(expected))]
            for path, frame in zip(made, expected, strict=True):
                assert np.abs(image_rgb(path).astype(int) - frame.astype(int)).mean() < loss
