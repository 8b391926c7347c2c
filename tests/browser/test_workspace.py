"""In Chromium, as an annotator: open the next clip, step frames, drag a wrist, mark a point
occluded, edit a held frame, interpolate between keyframes, edit a shot caption, add a tag,
resolve a version conflict from a second session, and submit."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations.keypoint_edits import save_frame
from app.annotations.models import Annotation, AnnotationKind, Caption, KeypointFrame
from app.annotations.payload import annotation_payload, frame_payload
from app.annotations.points import decode_points
from app.annotations.revisions import revisions_of
from app.auth.models import Role, User
from app.batches.models import Batch, BatchClip, BatchMember
from app.clips import service as clips
from app.pipeline import intake
from app.pipeline.runner import run_queued_inline
from app.samples.generator import make_clip
from tests.browser.conftest import PageChecks, sign_in
from tests.browser.workspace_helpers import drag, go, point_on_screen
from tests.factories import PASSWORD, create_model_draft, create_project, create_user

pytestmark = pytest.mark.browser
LEFT_WRIST, RIGHT_WRIST, NOSE = 9, 10, 0


def _saved(page: Page, what: str = "saved") -> None:
    """Wait for the save that the last action started (the status says which frame)."""
    expect(page.get_by_test_id("save-status")).to_have_text(re.compile(f"^{what}"))


def _pose(s: Session, track_id: int, frame: int) -> np.ndarray:
    row = s.scalar(
        select(KeypointFrame).where(
            KeypointFrame.track_id == track_id, KeypointFrame.frame_index == frame
        )
    )
    assert row is not None
    return decode_points(row.points)[0]


def test_annotator_corrects_a_clip_end_to_end(
    live_server: str,
    page: Page,
    page_checks: PageChecks,
    unique: str,
    tmp_path: Path,
    committed: Callable[[], AbstractContextManager[Session]],
    cleanup: dict[str, list[int]],
) -> None:
    sample = make_clip(
        tmp_path,
        "ws",
        seed=11,
        width=320,
        fps=12,
        seconds=2,
        subsets=["pose"],
        kinds=["humanoid"],
        talking=False,
        timing="twos",
        shots=1,
    )
    with committed() as s:
        project = create_project(s, name=f"ws-{unique}", subsets=None)
        cleanup["projects"].append(project.id)
        outcome = intake.import_file(s, project, sample.path, clips.ClipSpec(subsets=["pose"]))
        clip_id = outcome.clip_id
    run_queued_inline([clip_id])  # probe + frames (+ whatever else is registered)
    with committed() as s:
        clip = clips.get_clip(s, clip_id)
        assert clip.state.value == "ready", clip.error
        clip.held_runs = sample.truth["held_runs"]
        for old in s.scalars(select(Annotation).where(Annotation.clip_id == clip_id)):
            s.delete(old)
        s.flush()
        create_model_draft(s, clip)
        user = create_user(s, Role.annotator, username=f"ws-ann-{unique}")
        cleanup["users"].append(user.id)
        batch = Batch(project_id=project.id, name=f"ws-{unique}")
        s.add(batch)
        s.flush()
        s.add_all(
            [
                BatchClip(batch_id=batch.id, clip_id=clip_id),
                BatchMember(batch_id=batch.id, user_id=user.id, role="annotator"),
            ]
        )
        username = user.username
        held_start, held_end = next((a, b) for a, b in clip.held_runs if b - a >= 2)

    sign_in(page, live_server, username, PASSWORD)
    page.goto(f"{live_server}/queue")
    page.click("text=Next clip")
    page.wait_for_url(re.compile(r"/annotate/\d+$"))
    expect(page.locator("#workspace")).to_have_attribute("data-ready", "true")
    with committed() as s:
        annotation = s.scalar(
            select(Annotation).where(
                Annotation.clip_id == clip_id, Annotation.kind == AnnotationKind.human
            )
        )
        assert annotation is not None
        track_id = annotation_payload(s, annotation)["characters"][0]["tracks"][0]["id"]
        annotation_id = annotation.id

    # Step frames with the keyboard.
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#workspace")).to_have_attribute("data-shown", "2")

    # Drag the left wrist (this frame only): the database follows.
    own = 6
    page.uncheck("[data-testid=apply-held]")
    go(page, own)
    with committed() as s:
        before = _pose(s, track_id, own)[LEFT_WRIST, :2].copy()
    drag(page, LEFT_WRIST, 24, 12)
    _saved(page)
    with committed() as s:
        after = _pose(s, track_id, own)[LEFT_WRIST, :2]
    scale = page.evaluate("window.CelLabelWorkspace.stage.scale") * 1.0
    css = page.evaluate(
        "(() => { const c = window.CelLabelWorkspace.stage.canvas;"
        " return c.getBoundingClientRect().width / c.width; })()"
    )
    moved = (after - before) * scale * css
    assert np.allclose(moved, [24, 12], atol=2.5), (before, after)

    # Mark a point occluded with the keyboard.
    x, y = point_on_screen(page, RIGHT_WRIST)
    page.mouse.click(x, y)
    page.keyboard.press("2")
    _saved(page)
    with committed() as s:
        assert _pose(s, track_id, own)[RIGHT_WRIST, 2] == 1

    # An edit on a held frame changes its whole held run.
    page.check("[data-testid=apply-held]")
    go(page, held_start + 1)
    drag(page, NOSE, -20, 0)
    _saved(page)
    with committed() as s:
        run = [_pose(s, track_id, f)[NOSE, :2] for f in range(held_start, held_end)]
        outside = _pose(s, track_id, held_end)[NOSE, :2]
    assert all(np.allclose(p, run[0]) for p in run) and not np.allclose(outside, run[0])

    # Interpolate between two keyframes.
    page.uncheck("[data-testid=apply-held]")
    a, b = own, own + 4
    go(page, a)
    page.keyboard.press("k")
    _saved(page)
    go(page, b)
    drag(page, LEFT_WRIST, 30, 0)
    _saved(page)
    page.keyboard.press("k")
    _saved(page)
    page.keyboard.press("i")
    expect(page.get_by_test_id("save-status")).to_have_text("interpolate: done")
    with committed() as s:
        start, end, middle = (_pose(s, track_id, f)[LEFT_WRIST, :2] for f in (a, b, a + 2))
    assert np.allclose(middle, (start + end) / 2, atol=0.05)

    # Edit the shot caption, add a tag.
    caption = page.get_by_test_id("caption-shot-narrative").locator("textarea")
    caption.fill("A girl in a red top waves at the camera.")
    expect(page.get_by_test_id("caption-saved")).to_be_visible()
    page.click("label.chip-choice:has(input[name=time_of_day][value=night])")
    expect(page.locator("#tags .saved")).to_be_visible()
    with committed() as s:
        text = s.scalar(
            select(Caption.text).where(
                Caption.annotation_id == annotation_id, Caption.field == "narrative"
            )
        )
        tags = s.get_one(Annotation, annotation_id).tags
    assert text == "A girl in a red top waves at the camera." and tags["time_of_day"] == "night"

    # A second session saves the same frame first: the UI shows both versions, we keep ours.
    with committed() as s:
        frame = frame_payload(
            s.scalar(
                select(KeypointFrame).where(
                    KeypointFrame.track_id == track_id, KeypointFrame.frame_index == own
                )
            )
        )
        other = s.get_one(User, s.get_one(Annotation, annotation_id).annotator_id)
        theirs = [p[:3] for p in frame["points"]]
        theirs[NOSE] = [5.0, 5.0, 2]
        save_frame(s, other, track_id, own, theirs, frame["version"])
    page_checks.expect_http_errors(409, rf"^/api/tracks/{track_id}/frames/{own}$")
    go(page, own)
    drag(page, NOSE, 10, 10)
    expect(page.get_by_test_id("conflict")).to_be_visible()
    page.click("[data-testid=keep-mine]")
    _saved(page)
    with committed() as s:
        nose = _pose(s, track_id, own)[NOSE, :2]
        revisions = revisions_of(s, "keypoint_frame", frame["id"])
    assert not np.allclose(nose, [5.0, 5.0])
    assert any(r.after and r.after.get(str(NOSE), [None])[0] == 5.0 for r in revisions)

    # Submit: every level the pose subset requires is filled.
    page.click("[data-testid=submit]")
    page.wait_for_url(re.compile(r"/queue"))
    with committed() as s:
        assert s.get_one(Annotation, annotation_id).status.value == "submitted"
