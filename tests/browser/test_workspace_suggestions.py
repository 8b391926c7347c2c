"""In Chromium: a model point stored as a suggestion (not labelled, v=0, with the model's place
and confidence) is drawn faded; the annotator selects it and presses Enter, and the saved
point is labelled: accepted, visible, with the model's confidence, counted by the export."""

from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.annotations.models import KeypointFrame
from app.annotations.points import (
    SRC_ACCEPTED,
    SRC_MODEL,
    decode_with_sources,
    encode_points,
)
from app.export.labels import LabelRule, labelled_points
from app.projects.skeletons import CONF, V
from tests.browser.workspace_helpers import (
    LEFT_WRIST,
    DraftClip,
    annotator_fixture,  # noqa: F401 (a fixture)
    draft_clip_fixture,  # noqa: F401 (a fixture)
    open_next_clip,
    point_on_screen,
    session,
    stored_frame,
    wait_ready,
)

pytestmark = pytest.mark.browser
GUESS = 0.2  # below the default confidence floor


def _make_suggestion(track_id: int) -> None:
    """Frame 0's left wrist becomes the model's suggestion, as the mapping stores one."""
    with session() as s, s.begin():
        row = s.scalar(
            select(KeypointFrame).where(
                KeypointFrame.track_id == track_id, KeypointFrame.frame_index == 0
            )
        )
        assert row is not None
        pose, sources = decode_with_sources(row.points)
        pose[LEFT_WRIST, V], pose[LEFT_WRIST, CONF] = 0, GUESS
        sources[LEFT_WRIST] = SRC_MODEL
        row.points = encode_points(pose, sources)


def _stored(track_id: int) -> tuple[np.ndarray, np.ndarray]:
    return decode_with_sources(stored_frame(track_id, 0)[2].points)


def test_a_faded_suggestion_is_accepted_with_enter_and_saved_as_labelled(
    live_server: str, page: Page, draft_clip: DraftClip, annotator: str
) -> None:
    opened = open_next_clip(page, live_server, annotator, draft_clip.clip_id)
    _make_suggestion(opened.track_id)
    page.reload()
    wait_ready(page)
    stage = "window.CelLabelWorkspace.stage"
    assert page.evaluate(f"{stage}.shownSuggestion({LEFT_WRIST})")
    assert "model suggestion" in page.evaluate(f"{stage}.describePoint({LEFT_WRIST})")
    pose, sources = _stored(opened.track_id)
    assert not labelled_points(pose, sources, LabelRule(), track_status="approved")[LEFT_WRIST]

    page.locator("#stage").scroll_into_view_if_needed()
    page.mouse.click(*point_on_screen(page, LEFT_WRIST))
    assert page.evaluate(f"[...{stage}.selected]") == [LEFT_WRIST]
    page.keyboard.press("Enter")
    expect(page.locator("#save-status")).to_contain_text("saved frame 0")
    assert page.evaluate("window.CelLabelWorkspace.saver.settled()")

    after, after_sources = _stored(opened.track_id)
    assert after[LEFT_WRIST, V] == 2 and after_sources[LEFT_WRIST] == SRC_ACCEPTED
    assert after[LEFT_WRIST, CONF] == pytest.approx(GUESS, abs=1e-3)  # the model's, kept
    assert np.allclose(after[LEFT_WRIST, :2], pose[LEFT_WRIST, :2], atol=0.01)  # not moved
    labelled = labelled_points(after, after_sources, LabelRule(), track_status="approved")
    assert labelled.tolist() == [i == LEFT_WRIST for i in range(len(after))]
