"""In Chromium: Copy previous carries the previous drawing forward as it is. Model guesses stay
model guesses with their confidence (still listed among the least confident points, not
labelled by a person) until the annotator touches them."""

from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from tests.browser.workspace_helpers import (
    LEFT_WRIST,
    DraftClip,
    annotator_fixture,  # noqa: F401 (a fixture)
    draft_clip_fixture,  # noqa: F401 (a fixture)
    drag,
    go,
    open_next_clip,
    stored_frame,
)

pytestmark = pytest.mark.browser


def test_copied_model_points_keep_their_confidence_and_source(
    live_server: str, page: Page, draft_clip: DraftClip, annotator: str
) -> None:
    opened = open_next_clip(page, live_server, annotator, draft_clip.clip_id)
    start, end = next((a, b) for a, b in draft_clip.held_runs if a > 0 and b - a >= 2)
    page.uncheck("[data-testid=apply-held]")
    go(page, start - 1)
    drag(page, LEFT_WRIST, 20, 0)  # one point of the previous drawing is the annotator's
    go(page, start)
    low_confidence = page.locator("#low-conf li")
    expect(low_confidence).to_have_count(12)

    page.keyboard.press("c")
    expect(page.get_by_test_id("save-status")).to_have_text("copy previous drawing: done")
    expect(low_confidence).to_have_count(12)  # the model's guesses are still guesses
    previous, previous_human, _ = stored_frame(opened.track_id, start - 1)
    assert previous_human.sum() == 1 and previous_human[LEFT_WRIST]
    for frame in range(start, end):
        pose, human, _ = stored_frame(opened.track_id, frame)
        assert np.array_equal(human, previous_human), frame
        assert np.allclose(pose, previous, atol=1e-3), frame  # x, y, v and confidence
