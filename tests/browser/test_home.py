"""In Chromium, as an annotator: the home page lists the work a reviewer sent back, with the
reviewer's reason and comment, and its link opens the workspace at the pinned frame."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations.models import Annotation, NodeStatus
from app.annotations.opening import open_assignment
from app.auth.models import Role
from app.batches import claims
from app.batches.models import Assignment, AssignmentState, BatchMember
from app.clips import service as clips
from app.pipeline import intake
from app.pipeline.runner import run_queued_inline
from app.review.models import ReviewComment
from app.samples.generator import make_clip
from tests.browser.conftest import sign_in
from tests.factories import PASSWORD, create_batch, create_model_draft, create_project, create_user

pytestmark = pytest.mark.browser

Committed = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class Assigned:
    """An annotator with one opened assignment on a ready clip (frames decoded)."""

    username: str
    assignment_id: int
    annotation_id: int
    project_id: int
    filename: str


def assigned_clip(
    committed: Committed, cleanup: dict[str, list[int]], unique: str, tmp_path: Path
) -> Assigned:
    sample = make_clip(tmp_path, f"home{unique}", seed=5, width=160, fps=12, seconds=1,
                       subsets=["pose"], kinds=["humanoid"], talking=False, timing="ones",
                       shots=1)  # fmt: skip
    with committed() as s:
        project = create_project(s, name=f"home-{unique}")
        cleanup["projects"].append(project.id)
        clip_id = intake.import_file(s, project, sample.path).clip_id
    assert clip_id is not None
    run_queued_inline([clip_id])
    with committed() as s:
        clip = clips.get_clip(s, clip_id)
        assert clip.state.value == "ready", clip.error
        for old in s.scalars(select(Annotation).where(Annotation.clip_id == clip_id)):
            s.delete(old)
        s.flush()
        create_model_draft(s, clip)
        annotator = create_user(s, Role.annotator, username=f"home-ann-{unique}")
        cleanup["users"].append(annotator.id)
        batch = create_batch(s, project, [clip])
        s.add(BatchMember(batch_id=batch.id, user_id=annotator.id, role="annotator"))
        s.flush()
        assignment = claims.next_clip(s, annotator)
        assert assignment is not None
        _, annotation = open_assignment(s, annotator, assignment.id)
        return Assigned(annotator.username, assignment.id, annotation.id, project.id,
                        clip.filename)  # fmt: skip


def test_home_lists_work_sent_back_with_the_reason_and_opens_it_at_the_pinned_frame(
    live_server: str,
    page: Page,
    unique: str,
    tmp_path: Path,
    committed: Committed,
    cleanup: dict[str, list[int]],
) -> None:
    work = assigned_clip(committed, cleanup, unique, tmp_path)
    with committed() as s:
        reviewer = create_user(s, Role.reviewer, username=f"home-rev-{unique}")
        cleanup["users"].append(reviewer.id)
        annotation = s.get_one(Annotation, work.annotation_id)
        annotation.status = NodeStatus.rejected
        assignment = s.get_one(Assignment, work.assignment_id)
        assignment.state = AssignmentState.rejected
        rejection = ReviewComment(
            annotation_id=annotation.id, node_type="keypoint_frame", node_id=1, frame_index=7,
            author_id=reviewer.id, reason="wrong_keypoint", body="The left wrist is on the sleeve.",
        )  # fmt: skip
        s.add(rejection)

    sign_in(page, live_server, work.username, PASSWORD)
    page.goto(f"{live_server}/")
    item = page.locator(f"#sent-back li[data-assignment='{work.assignment_id}']")
    expect(item).to_contain_text(work.filename)
    expect(item).to_contain_text("wrong keypoint")
    expect(item).to_contain_text(f"from {reviewer.username}")
    expect(item.get_by_test_id("reviewer-comment")).to_have_text("The left wrist is on the sleeve.")
    expect(item).to_contain_text("at frame 7")

    item.get_by_test_id("fix-link").click()
    page.wait_for_url(f"**/annotate/{work.assignment_id}?frame=7")
    expect(page.locator("#workspace")).to_have_attribute("data-shown", "7")
    expect(page.get_by_test_id("ws-frame")).to_have_value("7")


def test_home_of_an_annotator_with_nothing_sent_back_shows_no_list(
    live_server: str, page: Page, unique: str, committed: Committed, cleanup: dict[str, list[int]]
) -> None:
    with committed() as s:
        annotator = create_user(s, Role.annotator, username=f"home-none-{unique}")
        cleanup["users"].append(annotator.id)
    sign_in(page, live_server, annotator.username, PASSWORD)
    page.goto(f"{live_server}/")
    expect(page.locator("h1")).to_contain_text("Welcome")
    expect(page.locator("#sent-back")).to_have_count(0)
