"""In Chromium: the annotator draws the character's box with the mouse, adjusts a corner,
leaves the page and finds it again; Box from points pads the labelled body points as the
export does, Delete clears a selected box and undo brings it back."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from app.export.formats.boxes import person_box
from tests.browser.conftest import image_to_client
from tests.browser.workspace_helpers import (
    DraftClip,
    Opened,
    annotator_fixture,  # noqa: F401 (a fixture)
    draft_clip_fixture,  # noqa: F401 (a fixture)
    open_next_clip,
    stored_frame,
    wait_ready,
)

pytestmark = pytest.mark.browser


def mouse_drag(page: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press at clip pixel ``start``, move to ``end`` in steps, release."""
    (x0, y0), (x1, y1) = image_to_client(page, *start), image_to_client(page, *end)
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2)
    page.mouse.move(x1, y1)
    page.mouse.up()


def shown_box(page: Page) -> Any:
    return page.evaluate("() => window.CelLabelWorkspace.stage.box")


def open_frame_0(page: Page, live_server: str, draft_clip: DraftClip, annotator: str) -> Opened:
    """The annotator's workspace at frame 0, an edit applying to that frame only."""
    opened = open_next_clip(page, live_server, annotator, draft_clip.clip_id)
    page.uncheck("[data-testid=apply-held]")
    page.locator("#stage").scroll_into_view_if_needed()
    return opened


def saved(page: Page) -> None:
    expect(page.get_by_test_id("save-status")).to_have_text("saved frame 0")
    page.wait_for_function("() => !window.CelLabelWorkspace.saver.busy")


def test_the_annotator_draws_adjusts_and_finds_the_box_again(
    live_server: str, page: Page, draft_clip: DraftClip, annotator: str
) -> None:
    opened = open_frame_0(page, live_server, draft_clip, annotator)
    page.get_by_test_id("box").click()
    expect(page.get_by_test_id("box")).to_have_attribute("aria-pressed", "true")
    mouse_drag(page, (40, 30), (140, 110))
    assert shown_box(page) == pytest.approx([40, 30, 100, 80], abs=1.0)
    expect(page.get_by_test_id("box")).to_have_attribute("aria-pressed", "false")
    saved(page)
    mouse_drag(page, (140, 110), (170, 150))  # the bottom right corner's handle
    drawn = shown_box(page)
    assert drawn == pytest.approx([40, 30, 130, 120], abs=1.5)
    saved(page)

    page.goto(f"{live_server}/queue")
    page.goto(opened.url)
    wait_ready(page)
    assert shown_box(page) == pytest.approx(drawn, abs=0.01)
    _, _, row = stored_frame(opened.track_id, 0)
    assert row.box == pytest.approx(drawn, abs=0.01)
    answer = page.request.get(f"{live_server}/api/annotations/{opened.annotation_id}").json()
    frame = next(f for f in answer["characters"][0]["tracks"][0]["frames"] if f["frame"] == 0)
    assert frame["box"] == pytest.approx(drawn, abs=0.01)


def test_box_from_points_pads_like_the_export_and_delete_clears_it(
    live_server: str, page: Page, draft_clip: DraftClip, annotator: str
) -> None:
    opened = open_frame_0(page, live_server, draft_clip, annotator)
    points = np.array(page.evaluate("() => window.CelLabelWorkspace.stage.points"))
    width, height = page.evaluate(
        "() => [window.CelLabelWorkspace.stage.width, window.CelLabelWorkspace.stage.height]"
    )
    expected = person_box(points.astype(np.float32), width, height)
    assert expected is not None
    page.evaluate("() => document.activeElement.blur()")  # keys go to the editor
    page.keyboard.press("Shift+X")
    box = shown_box(page)
    assert box == pytest.approx(list(expected), abs=0.02)
    saved(page)
    assert stored_frame(opened.track_id, 0)[2].box == pytest.approx(box, abs=0.01)

    x, y, w, _ = box
    mouse_drag(page, (x + w / 2, y), (x + w / 2, y))  # a click on its top edge selects it
    page.keyboard.press("Delete")
    assert shown_box(page) is None
    saved(page)
    assert stored_frame(opened.track_id, 0)[2].box is None
    page.keyboard.press("Control+z")
    expect(page.get_by_test_id("save-status")).to_contain_text("undid clearing the box")
    assert shown_box(page) == pytest.approx(box, abs=0.01)
    page.wait_for_function("() => !window.CelLabelWorkspace.saver.busy")
    assert stored_frame(opened.track_id, 0)[2].box == pytest.approx(box, abs=0.01)
