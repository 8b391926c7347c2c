"""In Chromium: a rejection needs a reason chosen by the reviewer, from reasons that fit the
item. Untouched, the reason used to default to "wrong_keypoint", even on a caption."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.review.models import ReviewComment
from tests.browser.review_world import open_review, submitted_clip

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("factory_clips_without_media")]


def test_a_caption_rejection_needs_a_caption_reason(
    live_server: str,
    page: Page,
    unique: str,
    committed: Callable[[], AbstractContextManager[Session]],
    cleanup: dict[str, list[int]],
) -> None:
    world = submitted_clip(committed, cleanup, unique)
    open_review(page, live_server, world.reviewer, world.annotation_id)

    # A keypoint track is rejected for keypoint reasons.
    page.get_by_test_id(f"node-track-{world.nodes['track']}").get_by_test_id("reject").click()
    reason = page.get_by_test_id("reject-reason")
    expect(reason).to_contain_text("Left and right swapped")
    expect(reason).not_to_contain_text("Wording")
    page.get_by_test_id("reject-dialog").get_by_role("button", name="Cancel").click()

    caption = page.get_by_test_id(f"node-caption-{world.nodes['caption']}")
    caption.get_by_test_id("reject").click()
    dialog = page.get_by_test_id("reject-dialog")
    options = reason.locator("option")
    expect(options.first).to_have_text("Choose a reason…")
    expect(reason).to_have_value("")  # nothing is chosen for the reviewer
    expect(reason).to_contain_text("Wording or spelling")
    expect(reason).to_contain_text("Missing detail")
    expect(reason).not_to_contain_text("wrong keypoint")
    expect(reason).not_to_contain_text("Point in the wrong place")

    # Sent without a reason: refused in the form, which keeps what was typed.
    page.fill("[data-testid=reject-body]", "It says 'waves' but the figure sits still.")
    page.get_by_test_id("reject-submit").click()
    expect(dialog.locator(".error-box")).to_contain_text("Choose a reason")
    expect(dialog).to_be_visible()
    expect(page.get_by_test_id("reject-body")).to_have_value(
        "It says 'waves' but the figure sits still."
    )
    expect(caption).to_have_attribute("data-status", "submitted")

    reason.select_option(label="Content: says what is not there")
    page.get_by_test_id("reject-submit").click()
    expect(dialog).to_be_hidden()
    expect(caption).to_have_attribute("data-status", "rejected")

    with committed() as s:
        [comment] = s.scalars(
            select(ReviewComment).where(ReviewComment.annotation_id == world.annotation_id)
        ).all()
        assert (comment.node_type, comment.reason) == ("caption", "caption_inaccurate")
