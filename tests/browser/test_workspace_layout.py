"""In Chromium, as an annotator on common laptop screens: the workspace is a player layout.
The frame, the player controls and the timeline always show without scrolling the page; the
side column scrolls on its own; typing a frame number keeps the frame in view."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations.models import Annotation
from app.auth.models import Role
from app.batches.models import Assignment, Batch, BatchClip
from app.clips import service as clips
from app.pipeline.service import run_queued_inline
from app.samples.generator import make_clip
from tests.browser.conftest import sign_in
from tests.factories import PASSWORD, create_model_draft, create_project, create_user

pytestmark = pytest.mark.browser

Session_ = Callable[[], AbstractContextManager[Session]]


def open_workspace(
    page: Page, live_server: str, tmp_path: Path, unique: str, committed: Session_,
    cleanup: dict[str, list[int]],
) -> None:  # fmt: skip
    """A real 16:9 clip (frames extracted) with a model draft, assigned to a new annotator who
    opens it."""
    sample = make_clip(tmp_path, "layout", seed=5, width=384, fps=12, seconds=2,
                       subsets=["pose"], kinds=["humanoid"], talking=False, shots=1)  # fmt: skip
    with committed() as s:
        project = create_project(s, name=f"layout-{unique}", subsets=None)
        cleanup["projects"].append(project.id)
        clip_id = clips.import_file(
            s, project, sample.path, clips.ClipSpec(subsets=["pose"])
        ).clip_id
    run_queued_inline([clip_id])
    with committed() as s:
        clip = clips.get_clip(s, clip_id)
        for old in s.scalars(select(Annotation).where(Annotation.clip_id == clip_id)):
            s.delete(old)
        s.flush()
        create_model_draft(s, clip, frames=clip.frame_count)
        user = create_user(s, Role.annotator, username=f"layout-{unique}")
        cleanup["users"].append(user.id)
        batch = Batch(project_id=project.id, name=f"layout-{unique}")
        s.add(batch)
        s.flush()
        slot = BatchClip(batch_id=batch.id, clip_id=clip_id)
        s.add(slot)
        s.flush()
        assignment = Assignment(batch_clip_id=slot.id, clip_id=clip_id, annotator_id=user.id)
        s.add(assignment)
        s.flush()
        username, assignment_id = user.username, assignment.id
    sign_in(page, live_server, username, PASSWORD)
    page.goto(f"{live_server}/annotate/{assignment_id}")
    expect(page.locator("#workspace")).to_have_attribute("data-shown", "0")


def _in_viewport(page: Page, selector: str) -> bool:
    return bool(
        page.evaluate(
            """(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
            return r.height > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight
                && r.right <= innerWidth; }""",
            selector,
        )
    )


@pytest.mark.parametrize("width,height", [(1280, 720), (1440, 900)])
def test_workspace_fits_the_screen_and_keeps_the_frame_in_view(
    live_server: str, page: Page, unique: str, tmp_path: Path, committed: Session_,
    cleanup: dict[str, list[int]], width: int, height: int,
) -> None:  # fmt: skip
    page.set_viewport_size({"width": width, "height": height})
    open_workspace(page, live_server, tmp_path, unique, committed, cleanup)
    page.screenshot(path=str(Path("/tmp") / f"workspace-{width}x{height}.png"))

    # The page itself does not scroll; the frame, the controls and the timeline all show.
    assert page.evaluate("document.documentElement.scrollHeight <= innerHeight")
    for selector in ("#stage", "#timeline", "[data-testid=ws-frame]", "[data-testid=ws-next]"):
        assert _in_viewport(page, selector), selector
    stage_height = page.evaluate("document.getElementById('stage').getBoundingClientRect().height")
    assert stage_height >= height * 0.45  # the frame gets most of the height

    # Typing a frame number: the frame is still where it was.
    stage_top = page.evaluate("document.getElementById('stage').getBoundingClientRect().top")
    page.fill("[data-testid=ws-frame]", "17")
    page.press("[data-testid=ws-frame]", "Enter")
    expect(page.locator("#workspace")).to_have_attribute("data-shown", "17")
    assert page.evaluate("scrollY") == 0 and _in_viewport(page, "#stage")
    assert (
        page.evaluate("document.getElementById('stage').getBoundingClientRect().top") == stage_top
    )

    # The side column scrolls on its own to the captions; the frame stays.
    page.get_by_role("heading", name="Captions").scroll_into_view_if_needed()
    expect(page.get_by_role("heading", name="Captions")).to_be_in_viewport()
    assert page.evaluate("scrollY") == 0 and _in_viewport(page, "#stage")
    assert _in_viewport(page, "#timeline")
