"""Driving the annotator workspace in Chromium: one ready clip with a model draft for the
session (``draft_clip``), a fresh annotator with it in their queue per test (``annotator``),
and the gestures (drag a keypoint, jump to a frame) the workspace tests share."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from app.annotations.models import Annotation, AnnotationKind, KeypointFrame
from app.annotations.payload import annotation_payload
from app.annotations.points import decode_points
from app.auth.models import Role, User
from app.batches.models import Batch, BatchClip, BatchMember
from app.clips import service as clips
from app.core.db import get_engine
from app.pipeline import intake
from app.pipeline.runner import run_queued_inline
from app.projects.models import Project
from app.samples.generator import make_clip
from tests.browser.conftest import image_to_client, sign_in
from tests.factories import PASSWORD, create_model_draft, create_project, create_user

LEFT_WRIST, RIGHT_WRIST, NOSE = 9, 10, 0


def session() -> Session:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)()


@dataclass
class DraftClip:
    project_id: int
    clip_id: int
    held_runs: list[list[int]]


@pytest.fixture(scope="session", name="draft_clip")
def draft_clip_fixture(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DraftClip]:
    """A decoded 24-frame clip (drawn on twos) whose model draft has one humanoid track."""
    sample = make_clip(
        tmp_path_factory.mktemp("clip"), "ws", seed=11, width=320, fps=12, seconds=2,
        subsets=["pose"], kinds=["humanoid"], talking=False, timing="twos", shots=1,
    )  # fmt: skip
    with session() as s, s.begin():
        project = create_project(s, name=f"ws-{uuid.uuid4().hex[:8]}", subsets=None)
        spec = clips.ClipSpec(subsets=["pose"])
        clip_id = intake.import_file(s, project, sample.path, spec).clip_id
        project_id = project.id
    run_queued_inline([clip_id])
    with session() as s, s.begin():
        clip = clips.get_clip(s, clip_id)
        assert clip.state.value == "ready", clip.error
        clip.held_runs = sample.truth["held_runs"]
        for old in s.scalars(select(Annotation).where(Annotation.clip_id == clip_id)):
            s.delete(old)
        s.flush()
        create_model_draft(s, clip)
        held = [list(r) for r in clip.held_runs]
    yield DraftClip(project_id, clip_id, held)
    with session() as s, s.begin():
        users = select(BatchMember.user_id).join(Batch).where(Batch.project_id == project_id)
        user_ids = list(s.scalars(users))
        s.execute(delete(Project).where(Project.id == project_id))
        s.execute(delete(User).where(User.id.in_(user_ids)))


@pytest.fixture(name="annotator")
def annotator_fixture(draft_clip: DraftClip, unique: str) -> str:
    """A new annotator with the clip in their queue (their own copy of the draft)."""
    with session() as s, s.begin():
        user = create_user(s, Role.annotator, username=f"ws-save-{unique}")
        batch = Batch(project_id=draft_clip.project_id, name=f"ws-save-{unique}")
        s.add(batch)
        s.flush()
        s.add_all([
            BatchClip(batch_id=batch.id, clip_id=draft_clip.clip_id),
            BatchMember(batch_id=batch.id, user_id=user.id, role="annotator"),
        ])  # fmt: skip
        return str(user.username)


@dataclass
class Opened:
    url: str
    annotation_id: int
    track_id: int


def open_next_clip(page: Page, base_url: str, username: str, clip_id: int) -> Opened:
    """Sign in, press Next clip in the queue and wait for the workspace to be ready."""
    sign_in(page, base_url, username, PASSWORD)
    page.goto(f"{base_url}/queue")
    page.click("text=Next clip")
    page.wait_for_url(re.compile(r"/annotate/\d+$"))
    wait_ready(page)
    with session() as s:
        annotation = s.scalar(
            select(Annotation)
            .join(User, User.id == Annotation.annotator_id)
            .where(
                Annotation.clip_id == clip_id,
                Annotation.kind == AnnotationKind.human,
                User.username == username,
            )
        )
        assert annotation is not None
        track_id = annotation_payload(s, annotation)["characters"][0]["tracks"][0]["id"]
        return Opened(page.url, annotation.id, track_id)


def wait_ready(page: Page, frame: int = 0) -> None:
    expect(page.locator("#workspace")).to_have_attribute("data-ready", "true")
    expect(page.locator("#workspace")).to_have_attribute("data-shown", str(frame))


def point_on_screen(page: Page, index: int) -> tuple[float, float]:
    x, y = page.evaluate("(i) => window.CelLabelWorkspace.stage.points[i].slice(0, 2)", index)
    return image_to_client(page, x, y)


def shown_point(page: Page, index: int) -> list[float]:
    """Where the stage draws keypoint ``index`` now, in clip pixels."""
    return list(page.evaluate("(i) => window.CelLabelWorkspace.stage.points[i].slice(0, 3)", index))


def drag(page: Page, index: int, dx: float, dy: float) -> None:
    page.locator("#stage").scroll_into_view_if_needed()
    x, y = point_on_screen(page, index)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx / 2, y + dy / 2)
    page.mouse.move(x + dx, y + dy)
    page.mouse.up()


def go(page: Page, frame: int) -> None:
    page.fill("[data-testid=ws-frame]", str(frame))
    page.press("[data-testid=ws-frame]", "Enter")
    expect(page.locator("#workspace")).to_have_attribute("data-shown", str(frame))


def stored_frame(track_id: int, frame: int) -> tuple[np.ndarray, np.ndarray, Any]:
    """The saved (pose, human mask, row) of one frame."""
    with session() as s:
        row = s.scalar(
            select(KeypointFrame).where(
                KeypointFrame.track_id == track_id, KeypointFrame.frame_index == frame
            )
        )
        assert row is not None
        pose, human = decode_points(row.points)
        return pose, human, row
