"""A demo-like clip for the training packages: a rendered sample clip (a talking humanoid in
two shots, all four subsets) stored as a clip with an approved annotation whose points are the
sample's truth, and a snapshot of it in every package format written into a folder."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
from sqlalchemy.orm import Session

from app.annotations.models import (
    Annotation,
    AnnotationKind,
    Caption,
    CaptionLevel,
    Character,
    CharacterKind,
    KeypointFrame,
    NodeStatus,
    Shot,
    Source,
    SpeechSegment,
    Track,
)
from app.annotations.points import encode_points
from app.clips.models import Clip, ClipState
from app.export.snapshot import write_snapshot
from app.projects.models import Project
from app.projects.skeletons import PoseArray, empty_pose
from app.samples.generator import SampleClip, make_clip
from tests.export.builders import queued_snapshot
from tests.factories import create_clip, create_project, local_media

PACKAGES = ["i2v_package", "pose_package", "face_video_package", "face_audio_package"]
SUBSETS = ["i2v", "pose", "face_video", "face_audio"]
HIDDEN_EVERY = 7  # every 7th point of the truth is left unlabelled, to see it stays out


def sample(folder: Path) -> SampleClip:
    return make_clip(folder, "talker", seed=11, width=320, aspect=4 / 3, fps=12, seconds=2.0,
                     subsets=SUBSETS, kinds=["humanoid"], talking=True, shots=2)  # type: ignore[arg-type]  # fmt: skip


def truth_pose(points: list[list[float]]) -> PoseArray:
    pose = empty_pose(133)
    pose[:, :3] = np.asarray(points, dtype=np.float32)
    pose[::HIDDEN_EVERY, :3] = 0
    pose[pose[:, 2] == 0, :2] = 0
    pose[:, 3] = np.where(pose[:, 2] > 0, 1.0, 0.0)
    return pose


def stored_clip(db: Session, project: Project, clip: SampleClip) -> Clip:
    """The sample as a ready clip of ``project`` with its file under MEDIA_ROOT."""
    payload = clip.path.read_bytes()
    truth = clip.truth
    row = create_clip(
        db, project, content_hash=hashlib.sha256(payload).hexdigest(), size_bytes=len(payload),
        width=truth["width"], height=truth["height"], fps=truth["fps"],
        frame_count=truth["frame_count"], duration_s=truth["duration_s"],
        has_audio=truth["has_audio"], state=ClipState.ready, subsets=SUBSETS,
    )  # fmt: skip
    path = local_media().path(row.storage_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return row


def approved_truth(db: Session, clip: Clip, sample: SampleClip) -> Annotation:
    """A primary approved annotation: the truth's shots, humanoid points, speech, captions."""
    truth = sample.truth
    annotation = Annotation(clip_id=clip.id, kind=AnnotationKind.human, is_primary=True,
                            status=NodeStatus.approved)  # fmt: skip
    db.add(annotation)
    db.flush()
    shots = [Shot(annotation_id=annotation.id, start_frame=s, end_frame=e, source=Source.human)
             for s, e in truth["shots"]]  # fmt: skip
    db.add_all(shots)
    db.add(Caption(annotation_id=annotation.id, level=CaptionLevel.clip, field="short",
                   text="A figure talks."))  # fmt: skip
    for start, end in truth["speech"]:
        db.add(SpeechSegment(annotation_id=annotation.id, start_s=start, end_s=end,
                             transcript="la la", source=Source.human))  # fmt: skip
    for n, character in enumerate(truth["characters"]):
        if character["template"] != "coco_wholebody" or not character["keypoints"]:
            continue
        row = Character(annotation_id=annotation.id, name=f"figure {n}",
                        kind=CharacterKind.humanoid, skeleton="coco_wholebody",
                        source=Source.human)  # fmt: skip
        db.add(row)
        db.flush()
        track = Track(character_id=row.id, num_points=133, source=Source.human)
        db.add(track)
        db.flush()
        for frame, points in enumerate(character["keypoints"]):
            pose = truth_pose(points)
            db.add(KeypointFrame(track_id=track.id, frame_index=frame,
                                 points=encode_points(pose, pose[:, 2] > 0)))  # fmt: skip
    db.flush()
    for shot in shots:
        db.add(Caption(annotation_id=annotation.id, level=CaptionLevel.shot, target_id=shot.id,
                       field="narrative", text=f"Shot from frame {shot.start_frame}."))  # fmt: skip
    db.flush()
    return annotation


class PackagesSnapshot(NamedTuple):
    folder: Path  # the written snapshot
    sample: SampleClip  # the clip it was made from
    project_id: int  # the project holding the clip (for tests that commit and clean up)


def packages_snapshot(db: Session, tmp: Path) -> PackagesSnapshot:
    """Every package of one stored sample clip, written into ``tmp/snapshot``."""
    clip = sample(tmp / "samples")
    project = create_project(db, name=f"packages-{tmp.name}")
    approved_truth(db, stored_clip(db, project, clip), clip)
    snapshot = queued_snapshot(db, project.id, "packages", PACKAGES)
    out = tmp / "snapshot"
    out.mkdir()
    write_snapshot(db, snapshot, out)
    return PackagesSnapshot(out, clip, project.id)
