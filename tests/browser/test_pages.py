"""In Chromium: what every page owes a user besides its feature. The page checks themselves
catch console errors, the app's HTTP errors and accessibility violations; every admin page
(with its HTMX swaps) loads with none of them, the tab shows the app's icon."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from app.auth.models import Role
from tests.browser.conftest import PageChecks, check_accessibility, sign_in
from tests.factories import (
    PASSWORD,
    create_batch,
    create_project,
    create_ready_clips,
    create_user,
)

pytestmark = pytest.mark.browser


def test_page_checks_catch_console_errors_http_errors_and_violations(
    live_server: str, page: Page, page_checks: PageChecks
) -> None:
    page.goto(f"{live_server}/login")
    with page.expect_console_message(lambda message: message.type == "error"):
        page.evaluate("console.error('something broke')")
    with page.expect_event("pageerror"):
        page.evaluate("() => { setTimeout(() => { throw new Error('uncaught'); }); }")
    with page.expect_response("**/no-such-page"):
        page.evaluate("() => fetch('/no-such-page')")
    assert any("something broke" in e for e in page_checks.console_errors)
    assert any("pageerror: uncaught" in e for e in page_checks.console_errors)
    assert page_checks.http_errors == [f"404 GET {live_server}/no-such-page"]
    check_accessibility(page)  # the sign-in page itself is fine
    page.evaluate(
        """() => {
        const p = document.createElement("p");
        p.textContent = "pale text";
        p.style.color = "#ccc";
        document.querySelector("main").append(p);
    }"""
    )
    with pytest.raises(AssertionError, match="color-contrast"):
        check_accessibility(page)
    # Declared errors pass: a test that provokes a 404 says so.
    page_checks.console_errors.clear()
    page_checks.http_errors.clear()
    page_checks.violations.clear()
    page_checks.expect_http_errors(404, r"^/no-such-page$")
    page.goto(f"{live_server}/login")
    with page.expect_response("**/no-such-page"):
        page.evaluate("() => fetch('/no-such-page')")
    assert page_checks.http_errors == []


def test_every_admin_page_loads_without_errors_or_violations(
    live_server: str,
    page: Page,
    page_checks: PageChecks,
    unique: str,
    committed: Callable[[], AbstractContextManager[Session]],
    cleanup: dict[str, list[int]],
) -> None:
    with committed() as s:
        project = create_project(s, name=f"pages-{unique}")
        cleanup["projects"].append(project.id)
        clips = create_ready_clips(s, project, 3, frame_count=24, fps=24.0, width=320, height=240)
        batch = create_batch(s, project, clips, name=f"pages-{unique}")
        admin = create_user(s, Role.admin, username=f"pages-admin-{unique}")
        cleanup["users"].append(admin.id)
        ids = {"project": project.id, "clip": clips[0].id, "batch": batch.id}

    page_checks.expect_http_errors(404, r"^/media/clips/\d+/thumb.jpg$")  # factory clips
    sign_in(page, live_server, admin.username, PASSWORD)
    icon = page.request.get(f"{live_server}/favicon.ico")
    assert icon.ok and icon.headers["content-type"].startswith("image/")
    expect(page.locator("link[rel=icon]")).to_have_attribute("href", "/static/favicon.svg")
    for path in [
        "/",
        "/projects",
        f"/projects/{ids['project']}",
        f"/clips?project={ids['project']}",
        f"/clips/{ids['clip']}",
        f"/batches/{ids['batch']}",
        "/review",
        "/agreement",
        "/exports",
        "/admin/users",
        "/account/tokens",
    ]:
        page.goto(f"{live_server}{path}")
        page.wait_for_load_state("networkidle")  # HTMX loads and swaps its parts
        page_checks.check_accessibility(page, again=True)
    # An HTMX swap on demand: the batch form's preview follows the chosen project.
    page.goto(f"{live_server}/batches")
    page.select_option("select[name=project_id]", label=f"pages-{unique}")
    expect(page.get_by_test_id("match-count")).to_have_text("3")
    check_accessibility(page)
