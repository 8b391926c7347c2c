"""In Chromium: opening a link to a clip changes nothing until the annotator presses Start,
and a character with the project's own skeleton is added, named and drawn."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.annotations.keypoint_edits import save_frame
from app.annotations.models import Character, Track
from app.auth.models import User
from app.batches import claims
from app.batches.models import Assignment, Batch
from app.projects import service as projects
from app.projects.models import SkeletonTemplate
from tests.browser.conftest import image_to_client, sign_in
from tests.browser.workspace_helpers import (
    DraftClip,
    annotator_fixture,  # noqa: F401 (a fixture)
    draft_clip_fixture,  # noqa: F401 (a fixture)
    open_next_clip,
    session,
    wait_ready,
)
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def _state(assignment_id: int) -> tuple[str, int | None]:
    with session() as s:
        assignment = s.get_one(Assignment, assignment_id)
        return assignment.state.value, assignment.annotation_id


def test_a_link_to_an_unstarted_clip_changes_nothing_until_start_is_pressed(
    live_server: str, page: Page, draft_clip: DraftClip, annotator: str, unique: str
) -> None:
    with session() as s, s.begin():
        user = s.scalars(select(User).where(User.username == annotator)).one()
        batch_id = s.scalars(select(Batch.id).where(Batch.name == f"ws-save-{unique}")).one()
        assignment_id = claims.assign_clips(s, batch_id, user, 1)[0].id
    sign_in(page, live_server, annotator, PASSWORD)
    page.goto(f"{live_server}/queue")
    row = page.locator(f"tr[data-assignment='{assignment_id}']")
    expect(row.get_by_role("button", name="Start")).to_be_visible()
    page.goto(f"{live_server}/annotate/{assignment_id}")  # a bookmark, a prefetch, a shared link
    expect(page.get_by_test_id("start")).to_be_visible()
    expect(page.locator("#workspace")).to_have_count(0)
    assert _state(assignment_id) == ("assigned", None)
    page.get_by_test_id("start").click()
    page.wait_for_url(f"**/annotate/{assignment_id}")
    wait_ready(page)
    state, annotation_id = _state(assignment_id)
    assert state == "in_progress" and annotation_id is not None
    page.goto(f"{live_server}/queue")
    expect(row.get_by_role("link").first).to_have_attribute("href", f"/annotate/{assignment_id}")


MAGENTA = "#ff00ff"


def _edge_is_drawn(page: Page, x: float, y: float) -> bool:
    """Whether the stage shows a magenta line through clip pixel (x, y) (a few pixels around
    it, as a 2-pixel line falls on whole pixels)."""
    return bool(
        page.evaluate(
            """([x, y]) => {
            const st = window.CelLabelWorkspace.stage;
            const cx = Math.round(st.ox + x * st.scale), cy = Math.round(st.oy + y * st.scale);
            const data = st.ctx.getImageData(cx, cy - 3, 1, 7).data;
            for (let i = 0; i < data.length; i += 4) {
                if (data[i] > 180 && data[i + 1] < 90 && data[i + 2] > 180) return true;
            }
            return false;
        }""",
            [x, y],
        )
    )


def test_a_character_with_the_projects_own_skeleton_is_added_and_drawn(
    live_server: str, page: Page, draft_clip: DraftClip, annotator: str, unique: str
) -> None:
    name = f"fish-{unique}"
    fish = {
        "name": name,
        "keypoints": ["head", "fin", "tail"],
        "edges": [["head", "fin"], ["fin", "tail"]],
        "parts": {"front": ["head"], "back": ["fin", "tail"]},
        "part_colors": {"front": MAGENTA, "back": MAGENTA},
    }
    with session() as s, s.begin():
        skeleton_id = projects.save_skeleton(s, draft_clip.project_id, fish).id
    try:
        opened = open_next_clip(page, live_server, annotator, draft_clip.clip_id)
        page.locator("summary", has_text="Add a character").click()
        form = page.locator("#add-character")
        form.get_by_label("Name").fill("Nemo")
        form.get_by_label("Kind").select_option("animal")
        form.get_by_label("Skeleton").select_option(name)
        form.get_by_role("button", name="Add").click()
        expect(page.locator("#track-select option:checked")).to_have_text(f"Nemo (animal, {name})")
        expect(page.locator("#parts label")).to_have_count(2)
        parts = {text.strip() for text in page.locator("#parts label").all_inner_texts()}
        assert parts == {"front", "back"}

        with session() as s, s.begin():
            track = s.scalars(
                select(Track).join(Character).where(
                    Character.annotation_id == opened.annotation_id, Character.name == "Nemo"
                )
            ).one()  # fmt: skip
            assert track.num_points == 3
            owner = s.scalars(select(User).where(User.username == annotator)).one()
            points = [[60.0, 60.0, 2], [200.0, 60.0, 2], [200.0, 150.0, 1]]
            save_frame(s, owner, track.id, 0, points, 1)
        page.evaluate("window.CelLabelWorkspace.reload()")
        page.wait_for_function(
            "() => window.CelLabelWorkspace.stage.points?.length === 3"
            " && window.CelLabelWorkspace.stage.points[1][2] === 2"
        )
        assert _edge_is_drawn(page, 130, 60)  # head-fin
        assert not _edge_is_drawn(page, 130, 150)  # no edge joins head and tail
        page.mouse.move(*image_to_client(page, 200, 60))
        expect(page.locator(".stage-wrap .hover-tip")).to_have_text("fin · set by a person")
    finally:
        with session() as s, s.begin():
            s.delete(s.get_one(SkeletonTemplate, skeleton_id))
