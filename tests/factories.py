"""Small builders: `create_x(session, **overrides)` instead of giant fixtures."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.auth import service as auth_service
from app.auth.models import Role, User
from app.batches.models import Assignment, Batch, BatchClip
from app.clips.models import Clip
from app.core.local_storage import LocalStorage
from app.core.security import SESSION_COOKIE, sign
from app.core.storage import clip_prefix, get_storage
from app.media.drawings import DrawingRun, carry, run_at
from app.projects import service as project_service
from app.projects.models import Project

_seq = itertools.count(1)
PASSWORD = "correct horse battery"


def create_user(session: Session, role: Role = Role.annotator, **over: Any) -> User:
    name = over.pop("username", f"{role.value}{next(_seq)}")
    user = auth_service.create_user(session, name, over.pop("password", PASSWORD), role)
    for key, value in over.items():
        setattr(user, key, value)
    session.flush()
    return user


def create_project(session: Session, **over: Any) -> Project:
    return project_service.create_project(session, over.pop("name", f"project{next(_seq)}"), **over)


def create_clip(session: Session, project: Project | None = None, **over: Any) -> Clip:
    project = project or create_project(session)
    n = next(_seq)
    values: dict[str, Any] = {
        "project_id": project.id,
        "filename": f"clip{n}.mp4",
        "storage_key": f"clips/{project.id}/x{n}/source.mp4",
        "content_hash": f"{n:064x}",
        "subsets": ["pose"],
    }
    values.update(over)
    clip = Clip(**values)
    session.add(clip)
    session.flush()
    return clip


def login(client: TestClient, session: Session, user: User) -> str:
    """Sign `user` in on `client` (a real server-side session); returns the CSRF token."""
    new = auth_service.start_session(session, user)
    client.cookies.set(SESSION_COOKIE, sign(new.key))
    return new.csrf_token


def create_ready_clips(session: Session, project: Project, n: int, **over: Any) -> list[Clip]:
    """``n`` clips whose pipeline is done (state ready), so the queue may hand them out."""
    from app.clips.models import ClipState

    return [create_clip(session, project, state=ClipState.ready, **over) for _ in range(n)]


def create_batch(session: Session, project: Project, clips: list[Clip], **over: Any) -> Any:
    """A batch of exactly ``clips`` (hand-picked), via the batches service."""
    from app.batches import service
    from app.batches.schemas import BatchCreate
    from app.clips.filters import ClipFilter

    data = BatchCreate(
        name=over.pop("name", f"batch{next(_seq)}"),
        project_id=project.id,
        filter=ClipFilter(clip_ids=[c.id for c in clips]),
        **over,
    )
    return service.create_batch(session, data)


def approve_truth(session: Session, clip: Clip, reviewer: User | None = None) -> Any:
    """Give ``clip`` approved truth: a primary human annotation in state approved (gold)."""
    from app.annotations.models import Annotation, AnnotationKind, NodeStatus

    annotation = Annotation(
        clip_id=clip.id,
        kind=AnnotationKind.adjudicated,
        annotator_id=reviewer.id if reviewer else None,
        is_primary=True,
        status=NodeStatus.approved,
    )
    session.add(annotation)
    session.flush()
    return annotation


def create_model_draft(
    session: Session,
    clip: Clip,
    frames: int = 6,
    k: int = 133,
    *,
    drawing_runs: Sequence[DrawingRun] = (),
    timing: str | None = None,
) -> Any:
    """A model annotation with one shot, one humanoid track of `frames` frames and captions.

    With ``drawing_runs`` the character holds those drawings (see :func:`hold_drawings`)."""
    import numpy as np

    from app.annotations.models import (
        Annotation,
        AnnotationKind,
        Caption,
        CaptionLevel,
        Character,
        CharacterKind,
        KeypointFrame,
        Shot,
        Source,
        Track,
    )
    from app.annotations.points import encode_points
    from app.projects.skeletons import empty_pose

    clip.frame_count = clip.frame_count or frames
    clip.width, clip.height = clip.width or 320, clip.height or 240
    draft = Annotation(clip_id=clip.id, kind=AnnotationKind.model)
    session.add(draft)
    session.flush()
    shot = Shot(
        annotation_id=draft.id, start_frame=0, end_frame=clip.frame_count, source=Source.model
    )
    char = Character(
        annotation_id=draft.id,
        name="character 1",
        kind=CharacterKind.humanoid,
        skeleton="coco_wholebody" if k == 133 else "coco17",
        source=Source.model,
    )
    session.add_all([shot, char])
    session.flush()
    track = Track(character_id=char.id, num_points=k, source=Source.model)
    session.add(track)
    session.flush()
    for f in range(clip.frame_count):
        pose = empty_pose(k)
        pose[:, 0] = 100 + f + np.arange(k) % 50
        pose[:, 1] = 50 + np.arange(k) % 40
        pose[:, 2] = 2
        pose[:, 3] = np.linspace(0.1, 0.99, k)
        blob = encode_points(pose)
        session.add(KeypointFrame(track_id=track.id, frame_index=f, points=blob, model_points=blob))
    session.flush()
    if drawing_runs or timing:
        hold_drawings(session, char, drawing_runs, timing)
    session.add_all(
        [
            Caption(
                annotation_id=draft.id,
                level=CaptionLevel.clip,
                target_id=0,
                field="short",
                text="",
                model_text="A figure waves.",
                model_name="builtin",
            ),
            Caption(
                annotation_id=draft.id,
                level=CaptionLevel.shot,
                target_id=shot.id,
                field="narrative",
                text="",
                model_text="The figure waves.",
                model_name="builtin",
            ),
        ]
    )
    session.flush()
    return draft


def hold_drawings(
    session: Session, character: Any, runs: Sequence[DrawingRun], timing: str | None
) -> None:
    """The character holds ``runs`` (drawn with ``timing``): as the keypoints step writes a
    held drawing, each run's frames get the pose of its first frame carried by their moves."""
    from sqlalchemy import select

    from app.annotations.models import KeypointFrame, Track
    from app.annotations.points import decode_with_sources, encode_points

    character.drawing_runs, character.timing = [run.as_json() for run in runs], timing
    track_ids = select(Track.id).where(Track.character_id == character.id)
    rows = session.scalars(select(KeypointFrame).where(KeypointFrame.track_id.in_(track_ids)))
    by_frame = {(row.track_id, row.frame_index): row for row in rows}
    for (track_id, frame), row in sorted(by_frame.items()):
        run = run_at(list(runs), frame)
        if run is None or frame == run.start:
            continue
        first, sources = decode_with_sources(by_frame[(track_id, run.start)].points)
        first[:, :2] = carry(first[:, :2], run.moves[0], run.move_at(frame))
        row.points = row.model_points = encode_points(first, sources)
    session.flush()


def assign_clip(session: Session, clip: Clip, annotator: User, batch_name: str = "b") -> Assignment:
    """``clip`` in a new batch of its project, assigned to ``annotator`` (not started)."""
    batch = Batch(project_id=clip.project_id, name=batch_name)
    session.add(batch)
    session.flush()
    slot = BatchClip(batch_id=batch.id, clip_id=clip.id)
    session.add(slot)
    session.flush()
    assignment = Assignment(batch_clip_id=slot.id, clip_id=clip.id, annotator_id=annotator.id)
    session.add(assignment)
    session.flush()
    return assignment


def create_assignment(session: Session, **clip_over: Any) -> tuple[Clip, User, Assignment]:
    """A ready 4-frame 320x240 clip (``clip_over`` changes it) with a model draft, assigned to
    a new annotator who has not started it: (clip, annotator, assignment)."""
    values: dict[str, Any] = {"frame_count": 4, "width": 320, "height": 240, "state": "ready"}
    clip = create_clip(session, **{**values, **clip_over})
    create_model_draft(session, clip, frames=4)
    user = create_user(session, Role.annotator)
    return clip, user, assign_clip(session, clip, user)


def keypoint_row(session: Session, track_id: int, frame: int) -> Any:
    """The stored KeypointFrame of one track's frame (it must exist)."""
    from sqlalchemy import select

    from app.annotations.models import KeypointFrame

    row = session.scalar(
        select(KeypointFrame).where(
            KeypointFrame.track_id == track_id, KeypointFrame.frame_index == frame
        )
    )
    assert row is not None
    return row


def as_points(pose: Any) -> list[list[float]]:
    """A (K, 4) pose as the ``[x, y, v]`` rows a frame save sends."""
    return [[float(x), float(y), int(v)] for x, y, v, _ in pose]


def local_media() -> LocalStorage:
    """The media folder of the test stacks (both keep media on the local disk)."""
    storage = get_storage()
    assert isinstance(storage, LocalStorage)
    return storage


def clip_media_dir(clip: Clip) -> Path:
    """The folder of a clip's media on the test stacks' local disk."""
    return local_media().path(clip_prefix(clip.project_id, clip.id))
