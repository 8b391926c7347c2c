"""In Chromium, as an annotator: the timeline marks the frames a person edited, keyframes and
frames whose edits are not saved yet (and names them on hover); hovering a keypoint on the
stage names it and says who set it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.workspace_helpers import (
    LEFT_WRIST,
    NOSE,
    DraftClip,
    annotator_fixture,  # noqa: F401 (a fixture)
    draft_clip_fixture,  # noqa: F401 (a fixture)
    drag,
    go,
    open_next_clip,
    point_on_screen,
)

pytestmark = pytest.mark.browser

EDITED, KEYFRAME, UNSAVED = "63,193,255", "241,196,15", "255,140,26"
# The colour ("r,g,b") the timeline draws in a row at the middle of a frame.
MARK = """([row, frame]) => {
    const c = document.getElementById("timeline");
    const [top, h] = JSON.parse(c.dataset.rows)[row];
    const count = window.CelLabelWorkspace.model.clip.frame_count;
    const x = Math.floor(((frame + 0.5) * c.width) / count);
    const pixel = c.getContext("2d").getImageData(x, top + Math.floor(h / 2), 1, 1).data;
    return Array.from(pixel.slice(0, 3)).join(",");
}"""


def _mark(page: Page, row: str, frame: int) -> str:
    return str(page.evaluate(MARK, [row, frame]))


def _wait_mark(page: Page, row: str, frame: int, colour: str) -> None:
    page.wait_for_function(f"([a, want]) => ({MARK})(a) === want", arg=[[row, frame], colour])


def _hover_timeline(page: Page, frame: int) -> None:
    box = page.locator("#timeline").bounding_box()
    count = page.evaluate("window.CelLabelWorkspace.model.clip.frame_count")
    assert box is not None
    page.mouse.move(box["x"] + (frame + 0.5) * box["width"] / count, box["y"] + box["height"] / 2)


def test_timeline_marks_edited_keyframe_and_unsaved_frames(
    live_server: str, page: Page, draft_clip: DraftClip, annotator: str
) -> None:
    open_next_clip(page, live_server, annotator, draft_clip.clip_id)
    page.uncheck("[data-testid=apply-held]")
    frame = 4
    go(page, frame)
    assert _mark(page, "edited", frame) != EDITED and _mark(page, "unsaved", frame) != UNSAVED
    tip = page.locator(".timeline-wrap .hover-tip")

    # While the save is on its way the frame is marked unsaved.
    held: list[Route] = []
    releasing: list[bool] = []

    def hold(route: Route) -> None:
        """Saves wait here until released (then pass straight through)."""
        if releasing:
            route.continue_()
        else:
            held.append(route)

    page.route("**/api/tracks/*/frames/*", hold)
    drag(page, LEFT_WRIST, 24, 12)
    _wait_mark(page, "unsaved", frame, UNSAVED)
    _hover_timeline(page, frame)
    expect(tip).to_contain_text(f"frame {frame} · ")
    expect(tip).to_contain_text("unsaved edits")

    # Saved: no longer unsaved, now marked as edited by a person.
    releasing.append(True)  # release before unrouting: unroute settles pending routes itself
    for route in held:
        route.continue_()
    page.unroute("**/api/tracks/*/frames/*")
    expect(page.get_by_test_id("save-status")).to_have_text(f"saved frame {frame}")
    _wait_mark(page, "edited", frame, EDITED)
    assert _mark(page, "unsaved", frame) != UNSAVED
    _hover_timeline(page, frame)
    expect(tip).to_contain_text("edited by a person")

    # A keyframe is marked too.
    page.keyboard.press("k")
    expect(page.get_by_test_id("save-status")).to_have_text(f"saved frame {frame}")
    _wait_mark(page, "keyframes", frame, KEYFRAME)
    _hover_timeline(page, frame + 1)
    _hover_timeline(page, frame)
    expect(tip).to_contain_text("edited by a person · keyframe")


def test_hovering_a_point_names_it_and_who_set_it(
    live_server: str, page: Page, draft_clip: DraftClip, annotator: str
) -> None:
    open_next_clip(page, live_server, annotator, draft_clip.clip_id)
    page.uncheck("[data-testid=apply-held]")
    tip = page.locator(".stage-wrap .hover-tip")
    confidence = page.evaluate(f"window.CelLabelWorkspace.stage.points[{NOSE}][3]")
    page.mouse.move(*point_on_screen(page, NOSE))
    expect(tip).to_be_visible()
    expect(tip).to_have_text(f"nose · model guess, {round(confidence * 100)}% sure")

    drag(page, LEFT_WRIST, 24, 12)
    expect(page.get_by_test_id("save-status")).to_have_text("saved frame 0")
    page.mouse.move(*point_on_screen(page, LEFT_WRIST))
    expect(tip).to_have_text("left_wrist · set by a person")
    page.mouse.move(5, 5)
    expect(tip).to_be_hidden()
