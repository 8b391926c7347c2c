"""A live CelLabel server and a headless Chromium for browser tests (reusable by any feature).

``live_server`` runs uvicorn with ``app.main:create_app`` in a background thread on a free
127.0.0.1 port against the test database (PostgreSQL, or SQLite on the embedded stack: see
tests/conftest.py), so data must be *committed* to be seen: build it with ``committed``
sessions, give it unique names, and clean it up (``cleanup``).
``sign_in(page, live_server, username, password)`` signs in through the real login form.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Response
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session, sessionmaker

from app.auth.models import User
from app.core.db import get_engine
from app.core.storage import delete_after_commit, project_prefix
from app.main import create_app
from app.projects.models import Project


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(engine: Engine) -> Iterator[str]:
    """Base URL of a running app on the test database."""
    port = _free_port()
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the live server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js").read_text()
# Every WCAG 2.0/2.1/2.2 level A and AA rule of axe, at every impact; no rule disabled.
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]},
    "resultTypes": ["violations"],
}
# One run at a time per document (axe refuses overlapping runs): chained on the window.
_RUN_AXE = """async (options) => {
    const run = (window.__pageChecksAxe || Promise.resolve())
        .catch(() => null).then(() => window.axe.run(document, options));
    window.__pageChecksAxe = run;
    const results = await run;
    return results.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(" ")}: ${n.failureSummary}`),
    }));
}"""
Violation = dict[str, Any]


def _origin(url: str) -> str:
    return "/".join(url.split("/", 3)[:3])


class PageChecks:
    """What every browser test checks on the app's pages besides its own assertions: no console
    errors, no unexpected HTTP errors from the app, no WCAG 2 A/AA accessibility violations
    (axe-core, once per distinct URL per test: when its document has loaded, and again on each
    page as shown at the end of the test). Pages join with :meth:`watch`."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.console_errors: list[str] = []
        self.http_errors: list[str] = []
        self.violations: dict[str, list[Violation]] = {}
        self.checked: set[str] = set()
        self._expected: list[tuple[int, re.Pattern[str]]] = []
        self._pages: list[Page] = []

    def expect_http_errors(self, status: int, url: str = "") -> None:
        """Declare responses with ``status`` whose path matches the regex ``url`` part of the
        test (e.g. a 409 conflict); the browser's console line about them is then fine too."""
        self._expected.append((status, re.compile(url)))

    def _is_expected(self, status: int, url: str) -> bool:
        path = url.removeprefix(self.origin)
        return any(s == status and p.search(path) for s, p in self._expected)

    def watch(self, page: Page) -> Page:
        """Record this page's console and HTTP errors and check what it loads."""
        self._pages.append(page)
        _WATCHED[page] = self
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.console_errors.append(f"pageerror: {error}"))
        page.on("response", self._on_response)
        page.on("load", self._on_load)
        return page

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        location = message.location.get("url", "")
        failed = re.match(r"Failed to load resource: .* status of (\d+)", message.text)
        if failed and self._is_expected(int(failed.group(1)), location):
            return
        swap = re.match(r"Response Status Error Code (\d+) from (\S+),", message.text)  # htmx
        if swap and self._is_expected(int(swap.group(1)), swap.group(2)):
            return
        self.console_errors.append(f"{message.text} ({location})")

    def _on_response(self, response: Response) -> None:
        if response.status < 400 or _origin(response.url) != self.origin:
            return
        if not self._is_expected(response.status, response.url):
            self.http_errors.append(f"{response.status} {response.request.method} {response.url}")

    def _on_load(self, page: Page) -> None:
        """Check once the page's own scripts have fetched and drawn what they show (runs
        beside the test, which goes on meanwhile)."""
        with contextlib.suppress(PlaywrightError):  # the test moved on first: checked later
            with contextlib.suppress(PlaywrightTimeoutError):  # a page that keeps polling
                page.wait_for_load_state("networkidle", timeout=5_000)
            self.check_accessibility(page)

    def check_accessibility(self, page: Page, *, again: bool = False) -> list[Violation]:
        """Run axe on the shown document (unless its URL was checked in this test already);
        remember and return the violations."""
        url = page.url.split("#", 1)[0]
        if _origin(url) != self.origin or (url in self.checked and not again):
            return []
        self.checked.add(url)
        if not page.evaluate("() => 'axe' in window"):  # pages from new_page() have it already
            page.evaluate(AXE_SOURCE)
        found: list[Violation] = page.evaluate(_RUN_AXE, AXE_OPTIONS)
        known = self.violations.setdefault(url, [])
        known += [v for v in found if v["id"] not in {k["id"] for k in known}]
        return found

    def finish(self) -> None:
        for page in self._pages:
            if not page.is_closed():
                with contextlib.suppress(PlaywrightError):
                    self.check_accessibility(page, again=True)

    def problems(self) -> list[str]:
        found = [f"console error: {line}" for line in self.console_errors]
        found += [f"unexpected HTTP error: {line}" for line in self.http_errors]
        found += [describe(url, v) for url, vs in self.violations.items() for v in vs]
        return found


_WATCHED: weakref.WeakKeyDictionary[Page, PageChecks] = weakref.WeakKeyDictionary()


def describe(url: str, violation: Violation) -> str:
    nodes = "".join(f"\n      {node}" for node in violation["nodes"])
    return f"axe {violation['id']} ({violation['impact']}) on {url}: {violation['help']}{nodes}"


def check_accessibility(page: Page) -> None:
    """Fail now if the page as shown (after an HTMX swap, with a dialog open...) has WCAG 2 A/AA
    violations. Pages are also checked on load and at the end of every test."""
    checks = _WATCHED.get(page) or PageChecks(_origin(page.url))
    violations = checks.check_accessibility(page, again=True)
    assert not violations, "\n".join(describe(page.url, v) for v in violations)


@pytest.fixture
def page_checks(live_server: str, request: pytest.FixtureRequest) -> PageChecks:
    """This test's checks; ``page_checks.expect_http_errors(409, "/api/frames/")`` or mark the
    test ``@pytest.mark.expect_http_errors(409, ...)`` for errors the test means to cause."""
    checks = PageChecks(live_server)
    marker = request.node.get_closest_marker("expect_http_errors")
    for status in marker.args if marker else ():
        checks.expect_http_errors(status)
    return checks


@pytest.fixture
def factory_clips_without_media(page_checks: PageChecks) -> None:
    """Clips built by tests/factories.py have rows but no media: their frame images and
    thumbnails answer 404 by design (``pytestmark = pytest.mark.usefixtures(...)``)."""
    page_checks.expect_http_errors(404, r"^/media/clips/\d+/(frames/|thumb\.jpg)")


@pytest.fixture
def new_page(
    browser: Browser, page_checks: PageChecks, cleanup: dict[str, list[int]]
) -> Iterator[Callable[[], Page]]:
    """``new_page()``: a checked page in a fresh browser context (another user's browser).
    At teardown the test fails on console errors, unexpected HTTP errors or axe violations.
    Its pages close before ``cleanup`` deletes the test's data (it is set up first, so torn
    down last): a page still prefetching frames would otherwise meet deleted media."""
    contexts: list[BrowserContext] = []

    def open_page() -> Page:
        context = browser.new_context()
        context.set_default_timeout(15_000)
        context.add_init_script(AXE_SOURCE)  # in every document, before its scripts; no CSP
        contexts.append(context)
        return page_checks.watch(context.new_page())

    try:
        yield open_page
        page_checks.finish()
    finally:
        for context in contexts:
            context.close()
    problems = page_checks.problems()
    if problems:
        pytest.fail("page checks failed:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def page(new_page: Callable[[], Page]) -> Page:
    """A checked page in its own browser context (see :class:`PageChecks`)."""
    return new_page()


@pytest.fixture
def unique() -> str:
    """A short random tag for names, so committed data never collides between runs."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def committed(engine: Engine) -> Callable[[], AbstractContextManager[Session]]:
    """``with committed() as s:`` a session on the live server's database that commits."""
    factory = sessionmaker(bind=get_engine(), expire_on_commit=False)

    def open_session() -> AbstractContextManager[Session]:
        return factory.begin()

    return open_session


@pytest.fixture
def cleanup(
    committed: Callable[[], AbstractContextManager[Session]],
) -> Iterator[dict[str, list[int]]]:
    """Register ids in ``cleanup["projects"]`` / ``cleanup["users"]``; deleted after the test
    (projects first: their clips, batches and assignments go with them, and their clips' media
    as the app deletes it: SQLite hands a deleted row's id out again, and a later test's clip
    must not find this one's frames under its key)."""
    created: dict[str, list[int]] = {"projects": [], "users": []}
    yield created
    with committed() as s:
        s.execute(delete(Project).where(Project.id.in_(created["projects"])))
        s.execute(delete(User).where(User.id.in_(created["users"])))
        for project_id in created["projects"]:
            delete_after_commit(s, project_prefix(project_id))


def sign_in(page: Page, base_url: str, username: str, password: str) -> None:
    """Sign in through the real login form and wait until the app has let us in."""
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=username]")


def sign_out(page: Page) -> None:
    page.click("text=Sign out")
    page.wait_for_url("**/login")


def image_to_client(page: Page, x: float, y: float) -> tuple[float, float]:
    """Client coordinates of the clip pixel (x, y) on the workspace stage (through its view)."""
    return tuple(
        page.evaluate(
            """([x, y]) => {
            const st = window.CelLabelWorkspace.stage, r = st.canvas.getBoundingClientRect();
            const k = r.width / st.canvas.width;
            return [r.left + (st.ox + x * st.scale) * k, r.top + (st.oy + y * st.scale) * k];
        }""",
            [x, y],
        )
    )  # type: ignore[return-value]
