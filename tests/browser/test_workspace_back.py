"""In Chromium: Back never shows a stale copy of a signed-in page. Back after submitting shows
the clip as submitted and read-only (also when the browser kept the page in its back-forward
cache); Back after moving a point shows the point where it was saved, not the annotation the
browser fetched before; Back after signing out lands on the sign-in page, not on the queue."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import sign_in, sign_out
from tests.browser.workspace_helpers import (
    LEFT_WRIST,
    DraftClip,
    annotator_fixture,  # noqa: F401 (a fixture)
    draft_clip_fixture,  # noqa: F401 (a fixture)
    drag,
    open_next_clip,
    shown_point,
    wait_ready,
)
from tests.conftest import CHROMIUM_ARGS
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture(params=["http", "bfcache"])
def any_page(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Page]:
    """A page of the usual test browser, and one of a Chromium that keeps pages in its
    back-forward cache as a user's does (Playwright turns that cache off by default)."""
    if request.param == "http":
        context = browser.new_context()
        yield context.new_page()
        context.close()
        return
    own = browser.browser_type.launch(
        executable_path="/usr/bin/chromium",
        args=CHROMIUM_ARGS,
        ignore_default_args=["--disable-back-forward-cache"],
    )
    yield own.new_context().new_page()
    own.close()


def test_back_after_submitting_shows_the_clip_submitted_and_read_only(
    live_server: str, any_page: Page, draft_clip: DraftClip, annotator: str
) -> None:
    page = any_page
    opened = open_next_clip(page, live_server, annotator, draft_clip.clip_id)
    expect(page.get_by_test_id("annotation-status")).to_have_text("draft")
    page.click("[data-testid=submit]")
    page.wait_for_url("**/queue")
    page.go_back()
    page.wait_for_url(opened.url)
    expect(page.get_by_test_id("annotation-status")).to_have_text("submitted")
    expect(page.locator("#workspace")).to_have_attribute("data-editable", "false")
    expect(page.get_by_test_id("submit")).to_have_count(0)


def test_back_after_moving_a_point_shows_it_where_it_was_saved(
    live_server: str, any_page: Page, draft_clip: DraftClip, annotator: str
) -> None:
    page = any_page
    opened = open_next_clip(page, live_server, annotator, draft_clip.clip_id)
    page.uncheck("[data-testid=apply-held]")
    drag(page, LEFT_WRIST, 30, 20)
    dropped = shown_point(page, LEFT_WRIST)
    page.click("nav >> text=My queue")  # waits for the save
    page.wait_for_url("**/queue")
    page.go_back()
    page.wait_for_url(opened.url)
    wait_ready(page)
    assert shown_point(page, LEFT_WRIST)[:2] == pytest.approx(dropped[:2], abs=0.02)


def test_back_after_signing_out_does_not_show_the_queue(
    live_server: str, any_page: Page, annotator: str
) -> None:
    page = any_page
    sign_in(page, live_server, annotator, PASSWORD)
    page.goto(f"{live_server}/queue")
    expect(page.get_by_test_id("username")).to_have_text(annotator)
    sign_out(page)
    page.go_back()
    page.wait_for_url("**/login**")
    expect(page.get_by_test_id("username")).to_have_count(0)
