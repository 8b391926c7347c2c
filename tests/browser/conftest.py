"""A live CelLabel server and a headless Chromium for browser tests (reusable by any feature).

``live_server`` runs uvicorn with ``app.main:create_app`` in a background thread on a free
127.0.0.1 port against the test PostgreSQL database, so data must be *committed* to be seen:
build it with ``committed`` sessions, give it unique names, and clean it up (``cleanup``).
``sign_in(page, live_server, username, password)`` signs in through the real login form.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
import uvicorn
from playwright.sync_api import Browser, Page
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session, sessionmaker

from app.auth.models import User
from app.core.db import get_engine
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


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


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
    (projects first: their clips, batches and assignments go with them)."""
    created: dict[str, list[int]] = {"projects": [], "users": []}
    yield created
    with committed() as s:
        s.execute(delete(Project).where(Project.id.in_(created["projects"])))
        s.execute(delete(User).where(User.id.in_(created["users"])))


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
