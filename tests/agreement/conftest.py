"""A clip two annotators annotated differently, through the annotation service (shared)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.agreement import recompute
from app.agreement.models import AgreementScore
from app.annotations.keypoint_edits import save_frame
from app.annotations.models import (
    Annotation,
    Caption,
    CaptionLevel,
    Character,
    KeypointFrame,
    Track,
)
from app.annotations.node_edits import set_shot_boundaries, set_tags, update_caption
from app.annotations.opening import open_annotation
from app.annotations.points import decode_points
from app.auth.models import Role, User
from app.batches.models import BatchClip
from app.projects.models import Subset
from app.review.submission import submit
from tests.factories import (
    create_batch,
    create_clip,
    create_model_draft,
    create_project,
    create_user,
)

FRAMES = 6
CAPTION_A = "A small fox waves its paw at the camera."
CAPTION_B = "The fox jumps over a fallen log in the forest."


def track_of(db: Session, annotation: Annotation) -> Track:
    char = db.scalars(select(Character).where(Character.annotation_id == annotation.id)).one()
    return db.scalars(select(Track).where(Track.character_id == char.id)).one()


def poses(db: Session, track: Track) -> dict[int, np.ndarray]:
    rows = db.scalars(select(KeypointFrame).where(KeypointFrame.track_id == track.id))
    return {r.frame_index: decode_points(r.points)[0] for r in rows}


def edit_keypoints(
    db: Session, user: User, annotation: Annotation, shift: float, hide: range
) -> None:
    """Move the body points by ``shift`` px and unlabel the points in ``hide`` on every frame."""
    track = track_of(db, annotation)
    for frame, pose in sorted(poses(db, track).items()):
        points = [[float(x), float(y), int(v)] for x, y, v, _ in pose]
        for j in range(17):
            points[j][0] += shift
        for j in hide:
            points[j][2] = 0
        row = db.scalars(
            select(KeypointFrame).where(
                KeypointFrame.track_id == track.id, KeypointFrame.frame_index == frame
            )
        ).one()
        save_frame(db, user, track.id, frame, points, row.version)


def clip_caption(db: Session, annotation: Annotation) -> Caption:
    return db.scalars(
        select(Caption).where(
            Caption.annotation_id == annotation.id,
            Caption.level == CaptionLevel.clip,
            Caption.field == "short",
        )
    ).one()


def scores(
    db: Session, clip_id: int, level: str, metric: str, against: str
) -> list[AgreementScore]:
    return list(
        db.scalars(
            select(AgreementScore).where(
                AgreementScore.clip_id == clip_id,
                AgreementScore.level == level,
                AgreementScore.metric == metric,
                AgreementScore.against == against,
            )
        )
    )


@pytest.fixture
def scenario(db: Session) -> dict[str, Any]:
    return build_scenario(db)


def build_scenario(db: Session) -> dict[str, Any]:
    """Alice and Bob disagree on one overlapped pose clip and submit (recompute queued)."""
    project = create_project(db, subsets=[Subset.pose])
    clip = create_clip(db, project, subsets=["pose"], frame_count=FRAMES, width=320, height=240)
    draft = create_model_draft(db, clip, frames=FRAMES)
    batch = create_batch(db, project, [clip])
    entry = db.scalars(select(BatchClip).where(BatchClip.batch_id == batch.id)).one()
    entry.required_annotators = 2
    alice, bob = create_user(db, Role.annotator), create_user(db, Role.annotator)
    reviewer = create_user(db, Role.reviewer)
    vocab = project.tag_vocabulary
    a = open_annotation(db, clip, alice)
    b = open_annotation(db, clip, bob)
    edit_keypoints(db, alice, a, shift=3.0, hide=range(0))
    edit_keypoints(db, bob, b, shift=-6.0, hide=range(91, 112))  # bob drops the left hand
    update_caption(db, alice, clip_caption(db, a).id, CAPTION_A, clip_caption(db, a).version)
    update_caption(db, bob, clip_caption(db, b).id, CAPTION_B, clip_caption(db, b).version)
    set_tags(db, alice, a.id, {"time_of_day": "day", "venue": "outdoor"}, a.version, vocab)
    set_tags(db, bob, b.id, {"time_of_day": "night", "venue": "outdoor"}, b.version, vocab)
    set_shot_boundaries(db, alice, a.id, [0, 3], a.version)
    set_shot_boundaries(db, bob, b.id, [0], b.version)
    for user, annotation in ((alice, a), (bob, b)):
        submit(db, user, annotation.id, project.required_levels)
        assert recompute.on_annotation_submitted(db, annotation)
    return {"project": project, "clip": clip, "draft": draft, "batch": batch, "a": a, "b": b,
            "alice": alice, "bob": bob, "reviewer": reviewer}  # fmt: skip
