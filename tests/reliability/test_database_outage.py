"""PostgreSQL stopped and started under a running web process (uvicorn in a subprocess).

While the database is down every request that needs it fails fast with a 503 and a clear
message (JSON for the API, a page for browsers), never a hang or a traceback; once it is back
the same process serves again, without a restart.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from app.auth import service as auth_service
from app.auth.models import Role
from app.core.migrate import upgrade_database
from app.core.security import SESSION_COOKIE, sign
from app.projects.models import Project
from tests.conftest import TEST_REDIS_URL
from tests.factories import PASSWORD
from tests.reliability.conftest import ROOT, PrivatePostgres, free_port, subprocess_env, wait_for

pytestmark = pytest.mark.slow

FAST_S = 5.0  # a refusal must come back quickly, not after a connect timeout


@pytest.fixture
def web_on_private_db(private_postgres: PrivatePostgres) -> Iterator[tuple[str, str, str]]:
    """(base URL, admin Bearer token, admin session cookie) of uvicorn on the private cluster."""
    admin = create_engine(private_postgres.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text('DROP DATABASE IF EXISTS "outage" WITH (FORCE)'))
        conn.execute(text('CREATE DATABASE "outage"'))
    admin.dispose()
    url = private_postgres.url("outage")
    upgrade_database(url)
    engine = create_engine(url)
    with Session(engine) as session, session.begin():
        user = auth_service.create_user(session, "outage-admin", PASSWORD, Role.admin)
        _, token = auth_service.create_api_token(session, user, "outage")
        cookie = sign(auth_service.start_session(session, user).key)
    engine.dispose()
    port = free_port()
    env = subprocess_env(DATABASE_URL=url, REDIS_URL=TEST_REDIS_URL)
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(up, 30, "uvicorn to serve /healthz", interval_s=0.2)
        yield base, token, cookie
    finally:
        process.terminate()
        process.wait(timeout=20)


def timed(client: httpx.Client, method: str, path: str, **kwargs: object) -> httpx.Response:
    started = time.monotonic()
    response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert time.monotonic() - started < FAST_S, f"{method} {path} took too long"
    return response


def test_database_restart_gives_clean_503s_then_recovers_without_restarting_the_app(
    private_postgres: PrivatePostgres, web_on_private_db: tuple[str, str, str]
) -> None:
    base, token, cookie = web_on_private_db
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    browser = httpx.Client(base_url=base, cookies={SESSION_COOKIE: cookie}, timeout=30)
    assert api.get("/api/me").status_code == 200
    assert browser.get("/admin/users").status_code == 200

    private_postgres.stop()
    try:
        me = timed(api, "GET", "/api/me")
        assert me.status_code == 503, me.text
        assert me.json() == {
            "error": "unavailable",
            "message": "The database is unavailable right now. Try again shortly.",
        }
        write = timed(api, "POST", "/api/projects", json={"name": "during-outage"})
        assert write.status_code == 503
        page = timed(browser, "GET", "/admin/users")
        assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
        assert "database is unavailable" in page.text and "Traceback" not in page.text
        health = timed(httpx.Client(base_url=base), "GET", "/healthz")  # what monitors read
        assert health.status_code == 503 and health.json()["database"].startswith("error")
    finally:
        private_postgres.start()

    wait_for(lambda: api.get("/api/me").status_code == 200, 20, "the app to reconnect")
    assert browser.get("/admin/users").status_code == 200
    made = api.post("/api/projects", json={"name": "after-outage"})
    assert made.status_code == 201
    engine = create_engine(private_postgres.url("outage"))
    with Session(engine) as session:
        names = set(session.scalars(select(Project.name)))
    engine.dispose()
    assert "after-outage" in names and "during-outage" not in names
