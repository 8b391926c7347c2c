"""In Chromium: a reviewer's workspace is read-only (it used to show every edit control and
answer each edit with a 403), and Fix and accept lets the reviewer correct a caption typo or a
point and approve the item in one step, as their own revision, which the annotator sees.
Agreement keeps scoring what the annotator submitted."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from playwright.sync_api import Page, Request, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.agreement.versions import annotation_view
from app.annotations.models import Annotation, Caption, KeypointFrame, Revision, Source
from app.annotations.points import decode_points
from tests.browser.conftest import image_to_client
from tests.browser.review_world import open_review, submitted_clip

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("factory_clips_without_media")]

WRIST = 9  # COCO left wrist: a body point, clear of the face's crowd of points


def _points(page: Page, track_id: int, frame: int) -> list[list[float]]:
    return list(page.evaluate(
        "([t, n]) => CelLabelWorkspace.model.frame(t, n).points.map((p) => p.slice(0, 3))",
        [track_id, frame],
    ))  # fmt: skip


def _drag(page: Page, x: float, y: float, dx: float, dy: float) -> None:
    page.locator("#stage").scroll_into_view_if_needed()
    page.mouse.move(*image_to_client(page, x, y))
    page.mouse.down()
    page.mouse.move(*image_to_client(page, x + dx / 2, y + dy / 2))
    page.mouse.move(*image_to_client(page, x + dx, y + dy))
    page.mouse.up()


def test_read_only_review_workspace_and_fix_and_accept(
    live_server: str,
    page: Page,
    unique: str,
    committed: Callable[[], AbstractContextManager[Session]],
    cleanup: dict[str, list[int]],
) -> None:
    world = submitted_clip(committed, cleanup, unique)
    track, caption_id = world.nodes["track"], world.nodes["caption"]
    with committed() as s:
        submitted_text = s.get_one(Caption, caption_id).text
    writes: list[str] = []

    def note_write(request: Request) -> None:
        if request.method != "GET" and "/api/" in request.url:
            writes.append(f"{request.method} {request.url}")

    page.on("request", note_write)
    open_review(page, live_server, world.reviewer, world.annotation_id)

    # 1. Read-only: said so, no edit controls, forms disabled, edit keys and drags inert.
    expect(page.get_by_test_id("read-only")).to_contain_text("Read-only: reviewing")
    for control in ("submit", "keyframe", "interpolate", "occlude"):
        expect(page.get_by_test_id(control)).to_be_hidden()
    expect(page.get_by_test_id("tags").locator("input[type=radio]").first).to_be_disabled()
    expect(page.locator(f"#caption-text-{caption_id}")).to_be_disabled()
    before = _points(page, track, 0)
    x, y = before[WRIST][0], before[WRIST][1]
    _drag(page, x, y, 25, 15)
    for key in ("2", "k", "s"):
        page.keyboard.press(key)
    expect(page.get_by_test_id("save-status")).to_contain_text("Read-only")
    assert _points(page, track, 0) == before
    assert writes == []

    # 2. Fix and accept a caption: the dialog holds its text; the fix approves it.
    page.get_by_test_id(f"node-caption-{caption_id}").get_by_test_id("fix-accept").click()
    expect(page.get_by_test_id("fix-text")).to_have_value(submitted_text)
    fixed_text = submitted_text + " Fixed by the reviewer."
    page.fill("[data-testid=fix-text]", fixed_text)
    page.get_by_test_id("fix-submit").click()
    expect(page.get_by_test_id("fix-dialog")).to_be_hidden()
    caption_row = page.get_by_test_id(f"node-caption-{caption_id}")
    expect(caption_row).to_have_attribute("data-status", "approved")
    expect(caption_row.get_by_test_id("fixed-by")).to_contain_text(world.reviewer.username)
    expect(page.locator(f"#caption-text-{caption_id}")).to_have_value(fixed_text)

    # 3. Fix and accept the track: drag the wrist (unsaved until asked), then save.
    page.get_by_test_id(f"node-track-{track}").get_by_test_id("fix-accept").click()
    expect(page.get_by_test_id("review-fix")).to_be_visible()
    expect(page.get_by_test_id("fix-count")).to_have_text("No change yet.")
    _drag(page, x, y, 25, 15)
    expect(page.get_by_test_id("fix-count")).to_contain_text("1 frame(s) changed: 0")
    moved = _points(page, track, 0)[WRIST]
    assert abs(moved[0] - (x + 25)) < 2 and abs(moved[1] - (y + 15)) < 2
    assert not any("/frames/" in w for w in writes)  # no autosave while fixing
    page.get_by_test_id("fix-save").click()
    expect(page.get_by_test_id(f"node-track-{track}")).to_have_attribute("data-status", "approved")
    expect(page.get_by_test_id("review-fix")).to_be_hidden()
    assert [w.split("/api/")[1] for w in writes] == [
        f"review/caption/{caption_id}/fix-accept",
        f"review/track/{track}/fix-accept",
    ]

    with committed() as s:
        assert s.get_one(Caption, caption_id).text == fixed_text
        row = s.scalars(
            select(KeypointFrame).where(KeypointFrame.track_id == track,
                                        KeypointFrame.frame_index == 0)
        ).one()  # fmt: skip
        pose, human = decode_points(row.points)
        assert abs(pose[WRIST, 0] - (x + 25)) < 2 and human[WRIST]
        fixes = s.scalars(
            select(Revision).where(Revision.annotation_id == world.annotation_id,
                                   Revision.source == Source.review)
        ).all()  # fmt: skip
        assert {(r.node_type, r.user_id) for r in fixes} == {
            ("caption", world.reviewer.id), ("keypoint_frame", world.reviewer.id)
        }  # fmt: skip
        # Agreement scores the annotator's submitted version, not the reviewer's fixes.
        submitted = annotation_view(s, s.get_one(Annotation, world.annotation_id),
                                    as_submitted=True)  # fmt: skip
        assert submitted.captions["clip:short"] == submitted_text
        character = submitted.characters[0]
        assert list(character.frames[0][WRIST, :2]) == pytest.approx([x, y], abs=0.01)

    # 4. The annotator sees who corrected what, and the history names it.
    annotator_page = page.context.browser.new_context().new_page()  # type: ignore[union-attr]
    open_review(annotator_page, live_server, world.annotator, world.annotation_id)
    expect(annotator_page.get_by_test_id("review-notice")).to_contain_text(
        f"{world.reviewer.username} corrected"
    )
    expect(annotator_page.get_by_test_id("read-only")).to_contain_text("Read-only")
    annotator_page.get_by_test_id(f"node-caption-{caption_id}").get_by_test_id("history").click()
    fix_row = annotator_page.get_by_test_id("history-rows").get_by_test_id("revision-review_fix")
    expect(fix_row).to_contain_text("fixed in review")
    expect(fix_row).to_contain_text(world.reviewer.username)
    annotator_page.context.close()
