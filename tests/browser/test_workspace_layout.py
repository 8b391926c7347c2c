"""In Chromium, as an annotator on common laptop screens: the workspace is a player layout.
The frame, the player controls and the timeline always show without scrolling the page; the
side column scrolls on its own; typing a frame number keeps the frame in view."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.workspace_helpers import (
    DraftClip,
    annotator_fixture,  # noqa: F401 (a fixture)
    draft_clip_fixture,  # noqa: F401 (a fixture)
    go,
    open_next_clip,
)

pytestmark = pytest.mark.browser


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
    live_server: str, page: Page, draft_clip: DraftClip, annotator: str, width: int, height: int
) -> None:
    page.set_viewport_size({"width": width, "height": height})
    open_next_clip(page, live_server, annotator, draft_clip.clip_id)

    # The page itself does not scroll; the frame, the controls and the timeline all show.
    assert page.evaluate("document.documentElement.scrollHeight <= innerHeight")
    for selector in ("#stage", "#timeline", "[data-testid=ws-frame]", "[data-testid=ws-next]"):
        assert _in_viewport(page, selector), selector
    stage_height = page.evaluate("document.getElementById('stage').getBoundingClientRect().height")
    assert stage_height >= height * 0.45  # the frame gets most of the height

    # Typing a frame number: the frame is still where it was.
    stage_top = page.evaluate("document.getElementById('stage').getBoundingClientRect().top")
    go(page, 17)
    assert page.evaluate("scrollY") == 0 and _in_viewport(page, "#stage")
    assert (
        page.evaluate("document.getElementById('stage').getBoundingClientRect().top") == stage_top
    )

    # The side column scrolls on its own to the captions; the frame stays.
    page.get_by_role("heading", name="Captions").scroll_into_view_if_needed()
    expect(page.get_by_role("heading", name="Captions")).to_be_in_viewport()
    assert page.evaluate("scrollY") == 0 and _in_viewport(page, "#stage")
    assert _in_viewport(page, "#timeline")
