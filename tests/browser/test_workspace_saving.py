"""In Chromium: an edit made just before leaving the workspace is never lost. Leaving through
the app's own links waits for the save; Back and closing the tab send it on the way out; and
while a save has failed, the user is asked before leaving."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Dialog, Page, expect
from sqlalchemy import select

from app.annotations.keypoint_edits import save_frame
from app.annotations.models import Annotation
from app.annotations.payload import annotation_payload, frame_payload
from app.auth.models import User
from tests.browser.workspace_helpers import (
    LEFT_WRIST,
    DraftClip,
    annotator_fixture,  # noqa: F401 (a fixture)
    draft_clip_fixture,  # noqa: F401 (a fixture)
    drag,
    go,
    open_next_clip,
    session,
    shown_point,
    stored_frame,
    wait_ready,
)

pytestmark = pytest.mark.browser


def eventually(check: Callable[[], Any], timeout_s: float = 10) -> None:
    """Wait until ``check()`` is true (a request sent as the page went away lands a little
    after the next page has loaded)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "the condition never became true"
        time.sleep(0.05)


def _drag_wrist(page: Page) -> list[float]:
    page.uncheck("[data-testid=apply-held]")
    before = shown_point(page, LEFT_WRIST)
    drag(page, LEFT_WRIST, 30, 20)
    dropped = shown_point(page, LEFT_WRIST)
    assert dropped[0] > before[0] + 5
    return dropped


def _stored_at(track_id: int, point: list[float]) -> bool:
    pose, human, _ = stored_frame(track_id, 0)
    return bool(np.allclose(pose[LEFT_WRIST, :2], point[:2], atol=0.02) and human[LEFT_WRIST])


def test_a_drag_then_my_queue_at_once_is_saved(
    live_server: str,
    page: Page,
    draft_clip: DraftClip,
    annotator: str,
) -> None:
    opened = open_next_clip(page, live_server, annotator, draft_clip.clip_id)
    dropped = _drag_wrist(page)
    page.click("nav >> text=My queue")
    page.wait_for_url("**/queue")
    assert _stored_at(opened.track_id, dropped)
    page.goto(opened.url)
    wait_ready(page)
    assert shown_point(page, LEFT_WRIST)[:2] == pytest.approx(dropped[:2], abs=0.02)


def test_a_drag_then_back_or_closing_the_tab_is_saved(
    live_server: str,
    page: Page,
    draft_clip: DraftClip,
    annotator: str,
) -> None:
    opened = open_next_clip(page, live_server, annotator, draft_clip.clip_id)
    asked: list[str] = []

    def leave(dialog: Dialog) -> None:
        asked.append(dialog.type)
        dialog.accept()

    page.on("dialog", leave)
    dropped = _drag_wrist(page)
    page.go_back()
    page.wait_for_url("**/queue")
    assert asked == ["beforeunload"]  # the user was told a save was still pending
    eventually(lambda: _stored_at(opened.track_id, dropped))

    page.goto(opened.url)
    wait_ready(page)
    assert shown_point(page, LEFT_WRIST)[:2] == pytest.approx(dropped[:2], abs=0.02)
    again = _drag_wrist(page)
    page.close(run_before_unload=True)
    eventually(lambda: _stored_at(opened.track_id, again))


def test_captions_tags_emotions_and_shots_changed_then_my_queue_at_once_are_saved(
    live_server: str,
    page: Page,
    draft_clip: DraftClip,
    annotator: str,
) -> None:
    opened = open_next_clip(page, live_server, annotator, draft_clip.clip_id)
    page.get_by_test_id("caption-clip-short").locator("textarea").fill("A boy runs, then stops.")
    emotions = page.locator(".emotion-form").first  # typed, Save not pressed
    emotions.locator("input[name=start]").last.fill("0")
    emotions.locator("input[name=end]").last.fill("4")
    emotions.locator("select[name=label]").last.select_option(index=1)
    page.click("label.chip-choice:has(input[name=time_of_day][value=night])")
    go(page, 6)
    page.keyboard.press("s")  # split the shot here
    page.click("nav >> text=My queue")
    page.wait_for_url("**/queue")
    with session() as s:
        annotation = s.get_one(Annotation, opened.annotation_id)
        payload = annotation_payload(s, annotation)
    short = next(c for c in payload["captions"] if (c["level"], c["field"]) == ("clip", "short"))
    assert short["text"] == "A boy runs, then stops."
    assert annotation.tags["time_of_day"] == "night"
    assert [e["start"] for e in payload["characters"][0]["emotions"]] == [0]
    assert [shot["start"] for shot in payload["shots"]] == [0, 6]


@pytest.mark.expect_http_errors(409)  # the conflicting save
def test_leaving_while_a_save_failed_asks_first(
    live_server: str,
    page: Page,
    draft_clip: DraftClip,
    annotator: str,
) -> None:
    opened = open_next_clip(page, live_server, annotator, draft_clip.clip_id)
    with session() as s, s.begin():  # someone else saves frame 0 first
        _, _, row = stored_frame(opened.track_id, 0)
        frame = frame_payload(row)
        user = s.scalar(select(User).where(User.username == annotator))
        assert user is not None
        points = [p[:3] for p in frame["points"]]
        points[LEFT_WRIST] = [5.0, 5.0, 2]
        save_frame(s, user, opened.track_id, 0, points, frame["version"])
    _drag_wrist(page)
    expect(page.get_by_test_id("conflict")).to_be_visible()
    page.keyboard.press("Escape")  # decide later: the edit is not saved
    expect(page.get_by_test_id("conflict")).to_be_hidden()
    # The frame is listed as not saved (the timeline marks it from this list).
    expect(page.locator("#workspace")).to_have_attribute("data-unsaved-frames", "0")

    asked: list[str] = []

    def stay(dialog: Dialog) -> None:
        asked.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", stay)
    page.click("nav >> text=My queue")
    expect(page.get_by_test_id("save-status")).to_contain_text("Frame 0")
    assert asked == ["confirm"] and page.url == opened.url
    with page.expect_event("dialog"):
        page.close(run_before_unload=True)
    assert asked[1] == "beforeunload"
    assert page.get_by_test_id("save-status").is_visible()  # still open: the user stayed
