"""The API reference works for signed-in users from the app's own files, under the app's CSP,
and shows nothing to anonymous callers."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from app.auth.models import Role
from tests.browser.conftest import sign_in
from tests.factories import PASSWORD, create_user

pytestmark = pytest.mark.browser


def test_signed_in_users_get_the_api_reference_from_the_app_itself(
    page: Page,
    live_server: str,
    committed: Callable[[], AbstractContextManager[Session]],
    cleanup: dict[str, list[int]],
    unique: str,
) -> None:
    assert httpx.get(f"{live_server}/api/openapi.json").status_code == 401
    anonymous = httpx.get(f"{live_server}/api/docs")
    assert anonymous.status_code == 303 and "/login" in anonymous.headers["location"]
    with committed() as s:
        user = create_user(s, Role.annotator, username=f"docs-{unique}")
        cleanup["users"].append(user.id)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on(
        "request", lambda r: problems.append(r.url) if not r.url.startswith(live_server) else None
    )
    page.on("response", lambda r: problems.append(r.url) if r.status >= 400 else None)
    sign_in(page, live_server, user.username, PASSWORD)
    page.goto(f"{live_server}/api/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    assert len(_operations_listed(page)) > 50
    assert problems == [], problems


def _operations_listed(page: Page) -> set[str]:
    """Every operation the reference shows, scrolling through it: a long reference renders
    only the operations near the viewport."""
    seen: set[str] = set()
    previous = -1.0
    for _ in range(400):
        seen.update(
            page.eval_on_selector_all(
                ".opblock-summary",
                "nodes => nodes.map(n => n.textContent.replace(/\\s+/g, ' ').trim())",
            )
        )
        y = page.evaluate("window.scrollY")
        if y == previous:
            break
        previous = y
        page.mouse.wheel(0, 600)
        page.wait_for_timeout(50)
    return seen
