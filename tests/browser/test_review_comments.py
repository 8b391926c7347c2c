"""In Chromium: a rejection's thread reads as a person expects. Its header used to end in a
literal "null" ("... wrong_keypointnull"), one more "null" for each empty part."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from app.annotations.tree import get_node
from app.review.comments import Pin, reply
from app.review.workflow import reject
from tests.browser.review_world import open_review, submitted_clip

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("factory_clips_without_media")]


def test_thread_headers_name_author_reason_pin_and_time(
    live_server: str,
    page: Page,
    unique: str,
    committed: Callable[[], AbstractContextManager[Session]],
    cleanup: dict[str, list[int]],
) -> None:
    world = submitted_clip(committed, cleanup, unique)
    with committed() as s:
        node, _ = get_node(s, "track", world.nodes["track"])
        rejection = reject(s, world.reviewer, "track", node.id, node.version,
                           "left_right_swap", "The wrists are swapped.",
                           Pin(frame=5))  # fmt: skip
        reply(s, world.annotator, rejection.id, "Swapped them back.")
        reply(s, world.reviewer, rejection.id, "Thanks, looks right now.")

    open_review(page, live_server, world.annotator, world.annotation_id)
    thread = page.get_by_test_id(f"comment-{rejection.id}")
    head = thread.get_by_test_id("comment-head").first
    expect(head).to_contain_text(world.reviewer.username)
    expect(head).to_contain_text("rejected: Left and right swapped")
    expect(head).to_contain_text("keypoints (133) · frame 5")
    expect(head.locator("time")).to_have_attribute("datetime", rejection.created_at.isoformat())
    expect(thread.get_by_test_id("comment-reason")).not_to_contain_text("left_right_swap")
    replies = thread.get_by_test_id("reply")
    expect(replies).to_have_count(2)
    expect(replies.nth(0).get_by_test_id("comment-head")).to_contain_text(
        f"{world.annotator.username} replied"
    )
    expect(replies.nth(0)).to_contain_text("Swapped them back.")
    expect(replies.nth(1).get_by_test_id("comment-head")).to_contain_text(world.reviewer.username)
    expect(page.get_by_test_id("review-comments")).not_to_contain_text("null")
    expect(page.get_by_test_id("review-comments")).not_to_contain_text("undefined")
