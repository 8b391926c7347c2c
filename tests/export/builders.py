"""Approved annotations with every kind of node, for the export tests."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations.models import (
    Annotation,
    Character,
    KeypointFrame,
    NodeStatus,
    Source,
    SpeechSegment,
    Track,
)
from app.annotations.node_edits import update_caption
from app.annotations.opening import open_annotation
from app.annotations.payload import annotation_payload
from app.annotations.points import BoolArray, decode_points, encode_points
from app.auth.models import Role, User
from app.clips.filters import ClipFilter
from app.clips.models import Clip, ClipState
from app.core.storage import get_storage
from app.export import service as export_service
from app.export.formats.bundle import clip_key
from app.export.models import ExportSnapshot
from app.export.options import ExportOptions
from app.export.schemas import ExportCreate
from app.export.snapshot import write_snapshot
from app.media.drawings import DrawingRun
from app.projects.models import Project
from app.projects.skeletons import PoseArray, empty_pose
from app.review.models import ReviewComment
from tests.factories import (
    create_clip,
    create_model_draft,
    create_project,
    create_user,
)

WIDTH, HEIGHT = 320, 240
# The character's drawing on frames 1-2, slid 3.5 px right and 1.25 px up on frame 2.
SLIDING_HOLD = DrawingRun(1, 3, ((1.0, 0.0, 0.0), (1.0, 3.5, -1.25)))


def pose_for(frame: int, k: int = 133) -> PoseArray:
    """A pose with every visibility: v cycles 0, 1, 2 over points (shifted per frame)."""
    pose = empty_pose(k)
    idx = np.arange(k)
    pose[:, 0] = 20 + (idx * 7 + frame * 3) % 280
    pose[:, 1] = 10 + (idx * 5 + frame) % 220
    pose[:, 2] = (idx + frame) % 3
    pose[:, 3] = np.round(0.2 + 0.6 * ((idx % 10) / 10), 2)
    pose[pose[:, 2] == 0, :2] = 0
    pose[pose[:, 2] == 0, 3] = 0
    return pose


def media_clip(db: Session, project: Project, payload: bytes, **over: object) -> Clip:
    """A clip whose stored file really exists (in the media store: the local folder, or the
    bucket under `use_object_store`) and matches its content hash."""
    digest = hashlib.sha256(payload).hexdigest()
    clip = create_clip(
        db, project, content_hash=digest, size_bytes=len(payload), width=WIDTH, height=HEIGHT,
        fps=12.0, frame_count=4, duration_s=4 / 12, state=ClipState.ready,
        subsets=["pose", "i2v", "face_audio"], **over,
    )  # fmt: skip
    get_storage().save_stream(clip.storage_key, io.BytesIO(payload))
    return clip


def approved_annotation(
    db: Session, clip: Clip, annotator: User | None = None, reviewer: User | None = None
) -> Annotation:
    """A person's primary, approved annotation of ``clip`` with keypoints, captions, speech,
    emotions, an edit in the history and a review thread."""
    annotator = annotator or create_user(db, Role.annotator)
    reviewer = reviewer or create_user(db, Role.reviewer)
    create_model_draft(db, clip, frames=clip.frame_count or 4)
    annotation = open_annotation(db, clip, annotator)
    character = db.scalar(select(Character).where(Character.annotation_id == annotation.id))
    assert character is not None
    character.emotions = [{"start": 0, "end": 2, "label": "amusement"}]
    character.drawing_runs, character.timing = [SLIDING_HOLD.as_json()], "twos"
    track = db.scalar(select(Track).where(Track.character_id == character.id))
    assert track is not None
    for row in db.scalars(select(KeypointFrame).where(KeypointFrame.track_id == track.id)):
        human = np.arange(133) % 4 == 0
        row.points = encode_points(pose_for(row.frame_index), human)
    db.add(SpeechSegment(annotation_id=annotation.id, start_s=0.05, end_s=0.2,
                         transcript="hello", source=Source.human))  # fmt: skip
    db.flush()
    captions = annotation_payload(db, annotation)["captions"]
    update_caption(
        db, annotator, captions[0]["id"], "A small figure waves hello.", captions[0]["version"]
    )
    annotation.status = NodeStatus.approved
    annotation.is_primary = True
    db.flush()
    root = ReviewComment(annotation_id=annotation.id, node_type="character",
                         node_id=character.id, frame_index=1, author_id=reviewer.id,
                         reason="wrong_keypoint", body="Left wrist is off.")  # fmt: skip
    db.add(root)
    db.flush()
    db.add(ReviewComment(annotation_id=annotation.id, node_type="character",
                         node_id=character.id, parent_id=root.id, author_id=annotator.id,
                         body="Fixed.", resolved=True))  # fmt: skip
    db.flush()
    return annotation


def approved_clips(db: Session, count: int) -> tuple[Project, list[Annotation]]:
    """A new project with ``count`` clips (files ``video 0``, ``video 1``, ...), each with an
    :func:`approved_annotation`."""
    project = create_project(db)
    files = (f"video {n}".encode() for n in range(count))
    return project, [approved_annotation(db, media_clip(db, project, f)) for f in files]


def queued_snapshot(
    db: Session, project_id: int, name: str, formats: list[str], **flt: object
) -> ExportSnapshot:
    """A queued export snapshot of the project's approved clips (no build task is sent),
    without frames (the clips' files are not videos)."""
    data = ExportCreate(project_id=project_id, name=name, formats=formats,
                        filter=ClipFilter.model_validate(flt),
                        options=ExportOptions(frames=False))  # fmt: skip
    return export_service.create_export(db, data, None, send=False)


def snapshot(db: Session, project_id: int, formats: list[str], **flt: object) -> ExportSnapshot:
    return queued_snapshot(db, project_id, f"snap-{'-'.join(formats)}", formats, **flt)


def build_folder(db: Session, snap: ExportSnapshot, tmp_path: Path) -> Path:
    out = tmp_path / f"out-{snap.id}"
    out.mkdir()
    write_snapshot(db, snap, out)
    return out


def key_of(db: Session, annotation: Annotation) -> str:
    return clip_key({"content_hash": db.get_one(Clip, annotation.clip_id).content_hash})


def stored_poses(db: Session, annotation: Annotation) -> dict[int, PoseArray]:
    """Frame -> pose of the annotation's (single) track as the database holds the points a
    person stands behind; the model's (untouched) points are all-zero, as exports write them
    by default (docs/export-formats.md)."""
    track = db.scalar(select(Track).join(Character).where(Character.annotation_id == annotation.id))
    assert track is not None
    rows = db.scalars(select(KeypointFrame).where(KeypointFrame.track_id == track.id))
    return {r.frame_index: _labelled_only(*decode_points(r.points)) for r in rows}


def _labelled_only(pose: PoseArray, by_person: BoolArray) -> PoseArray:
    return np.where(by_person[:, None], pose, 0).astype(np.float32)


_CLI_SCRIPT = textwrap.dedent(
    """
    import sys
    from typer.testing import CliRunner
    from app.cli import cli
    from app.core.db import session_scope
    from app.core.migrate import upgrade_database
    from tests.export.builders import approved_annotation, media_clip
    from tests.factories import create_project

    upgrade_database()
    with session_scope() as s:
        project = create_project(s, name="embedded")
        approved_annotation(s, media_clip(s, project, b"embedded clip"))
    runner = CliRunner()
    result = runner.invoke(cli, ["export", "--project", "embedded", "--format",
                                 "coco_person,captions", "--no-frames", "--out", *sys.argv[1:]])
    print(result.output)
    assert result.exit_code == 0, result.output
    """
)


def embedded_cli_export(tmp_path: Path, out: Path, *args: str, **env: str) -> str:
    """Run `cellabel export` (project "embedded", one approved clip) in a fresh embedded
    instance (SQLite, inline build) in a subprocess, with ``env`` added; its output."""
    root = Path(__file__).resolve().parents[2]
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    base.update(DATA_DIR=str(tmp_path / "data"), MEDIA_ROOT=str(tmp_path / "media"),
                PYTHONPATH=str(root), **env)  # fmt: skip
    done = subprocess.run([sys.executable, "-c", _CLI_SCRIPT, str(out), *args], cwd=tmp_path,
                          env=base, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def run_card_sample(out: Path, language: str = "python", **env: str) -> None:
    """Run a sample of the snapshot's README recreating its frame images (``python``: PyAV,
    ``sh``: the ffmpeg loop) in the snapshot folder ``out``, as someone holding only the
    archive would: no CelLabel settings in the environment, only ``env``."""
    readme = (out / "README.md").read_text()
    code = readme.split(f"```{language}\n", 1)[1].split("\n```", 1)[0]
    script = out.parent / f"{out.name}-sample.{language}"
    script.write_text(code + "\n")
    runner = sys.executable if language == "python" else "bash"
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    done = subprocess.run([runner, str(script)], cwd=out, env={**keep, **env},
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
