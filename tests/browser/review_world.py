"""A clip an annotator has submitted, ready for a reviewer in the browser (review tests).

Built with the same service calls the pages make (open the assignment, submit), committed so
the live server sees it; the users have the factories' password so they can sign in."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from app.annotations.opening import open_assignment
from app.annotations.payload import annotation_payload
from app.auth.models import Role, User
from app.batches.models import BatchClip
from app.projects.models import Project
from app.review.submission import submit
from tests.browser.conftest import sign_in
from tests.factories import (
    PASSWORD,
    assign_clip,
    create_clip,
    create_model_draft,
    create_project,
    create_user,
)


@dataclass
class Submitted:
    annotation_id: int
    clip_id: int
    annotator: User
    reviewer: User
    nodes: dict[str, int]  # node type -> id of the first such node (caption: the clip's)


@dataclass
class Assigned:
    """A committed clip with a model draft, in a batch, assigned to an annotator (not
    started), and a reviewer."""

    assignment_id: int
    clip_id: int
    batch_id: int
    project_id: int
    annotator: User
    reviewer: User


def assigned_clip(
    committed: Callable[[], AbstractContextManager[Session]],
    cleanup: dict[str, list[int]],
    unique: str,
    frames: int = 24,
) -> Assigned:
    with committed() as s:
        project = create_project(s, name=f"review-{unique}")
        cleanup["projects"].append(project.id)
        clip = create_clip(s, project, subsets=["pose"], frame_count=frames, fps=float(frames),
                           width=320, height=240, state="ready",
                           filename=f"review-{unique}.mp4")  # fmt: skip
        create_model_draft(s, clip, frames=frames)
        annotator = create_user(s, Role.annotator, username=f"ann-{unique}")
        reviewer = create_user(s, Role.reviewer, username=f"rev-{unique}")
        cleanup["users"] += [annotator.id, reviewer.id]
        assignment = assign_clip(s, clip, annotator, f"batch-{unique}")
        batch_id = s.get_one(BatchClip, assignment.batch_clip_id).batch_id
        return Assigned(assignment.id, clip.id, batch_id, project.id, annotator, reviewer)


def submitted_clip(
    committed: Callable[[], AbstractContextManager[Session]],
    cleanup: dict[str, list[int]],
    unique: str,
) -> Submitted:
    work = assigned_clip(committed, cleanup, unique)
    with committed() as s:
        annotator = s.get_one(User, work.annotator.id)
        _, annotation = open_assignment(s, annotator, work.assignment_id)
        payload = annotation_payload(s, annotation)
        character = payload["characters"][0]
        nodes = {
            "annotation": annotation.id,
            "shot": payload["shots"][0]["id"],
            "character": character["id"],
            "track": character["tracks"][0]["id"],
            "caption": next(c["id"] for c in payload["captions"] if c["level"] == "clip"),
        }
        required = s.get_one(Project, work.project_id).required_levels
        submit(s, annotator, annotation.id, required)
        return Submitted(annotation.id, work.clip_id, work.annotator, work.reviewer, nodes)


def open_review(page: Page, base_url: str, user: User, annotation_id: int) -> None:
    """Sign ``user`` in and open the annotation with its review panel ready."""
    sign_in(page, base_url, user.username, PASSWORD)
    page.goto(f"{base_url}/annotations/{annotation_id}")
    expect(page.locator("#review-panel")).to_have_attribute("data-ready", "true")
