"""Sign-in, sign-out and error behaviour as a browser or script sees it."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import service
from app.auth.models import Role, User, UserSession
from app.core.db import utcnow
from app.core.security import SESSION_COOKIE
from tests.factories import PASSWORD, create_user, login


def _form_csrf(client: TestClient, path: str = "/login") -> str:
    page = client.get(path)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def _sign_in(client: TestClient, username: str, password: str) -> object:
    token = _form_csrf(client)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": "/"},
    )


def test_each_role_signs_in_and_sees_its_own_navigation(client: TestClient, db: Session) -> None:
    expectations = {
        Role.admin: (["/admin/users", "/batches", "/exports"], ["/queue"]),
        Role.reviewer: (["/review"], ["/admin/users", "/queue"]),
        Role.annotator: (["/queue"], ["/admin/users", "/review"]),
    }
    for role, (shown, hidden) in expectations.items():
        client.cookies.clear()
        user = create_user(db, role)
        response = _sign_in(client, user.username, PASSWORD)
        assert response.status_code == 303
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie
        home = client.get("/")
        assert home.status_code == 200 and user.username in home.text
        for link in shown:
            assert f'href="{link}"' in home.text, (role, link)
        for link in hidden:
            assert f'href="{link}"' not in home.text, (role, link)


def test_wrong_password_shows_a_clear_error_not_a_500(client: TestClient, db: Session) -> None:
    user = create_user(db)
    response = _sign_in(client, user.username, "not the password")
    assert response.status_code == 401
    box = re.search(r'<div class="error-box"[^>]*>(.*?)</div>', response.text, re.S)
    assert box and box.group(1).startswith("Wrong username or password")  # no "None" first
    assert SESSION_COOKIE not in response.cookies


def test_login_without_csrf_token_is_refused(client: TestClient, db: Session) -> None:
    user = create_user(db)
    client.get("/login")
    response = client.post("/login", data={"username": user.username, "password": PASSWORD})
    assert response.status_code == 403
    assert "security token" in response.text


def test_state_change_without_csrf_is_refused_and_changes_nothing(
    client: TestClient, db: Session
) -> None:
    admin = create_user(db, Role.admin)
    login(client, db, admin)
    response = client.post(
        "/admin/users", data={"username": "sneaky", "password": PASSWORD, "role": "admin"}
    )
    assert response.status_code == 403
    assert db.scalar(select(User).where(User.username == "sneaky")) is None


def test_htmx_errors_come_back_as_a_visible_fragment(client: TestClient, db: Session) -> None:
    admin = create_user(db, Role.admin)
    csrf = login(client, db, admin)
    response = client.post(
        "/admin/users",
        data={"username": admin.username, "password": PASSWORD, "role": "admin"},
        headers={"HX-Request": "true", "X-CSRF-Token": csrf},
    )
    assert response.status_code == 409
    assert 'class="error-box"' in response.text and "already exists" in response.text
    assert "<html" not in response.text


def test_logout_kills_the_session_server_side(client: TestClient, db: Session) -> None:
    user = create_user(db)
    csrf = login(client, db, user)
    old_cookie = client.cookies.get(SESSION_COOKIE)
    assert client.post("/logout", headers={"X-CSRF-Token": csrf}).status_code == 303
    client.cookies.set(SESSION_COOKIE, old_cookie or "")
    assert client.get("/api/me").status_code == 401


def test_login_rotates_the_session(client: TestClient, db: Session) -> None:
    user = create_user(db)
    login(client, db, user)
    before = set(db.scalars(select(UserSession.key_hash).where(UserSession.user_id == user.id)))
    client.cookies.clear()
    _sign_in(client, user.username, PASSWORD)
    after = set(db.scalars(select(UserSession.key_hash).where(UserSession.user_id == user.id)))
    assert after - before


def test_expired_session_sends_the_browser_to_sign_in(client: TestClient, db: Session) -> None:
    user = create_user(db, Role.admin)
    login(client, db, user)
    for row in db.scalars(select(UserSession).where(UserSession.user_id == user.id)):
        row.expires_at = utcnow() - timedelta(minutes=1)
    db.flush()
    page = client.get("/admin/users")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert client.get("/api/me").status_code == 401
    assert client.get("/api/me").json()["error"] == "unauthorized"


def test_disabled_user_is_locked_out_at_once(client: TestClient, db: Session) -> None:
    user = create_user(db)
    login(client, db, user)
    assert client.get("/api/me").status_code == 200
    service.update_user(db, user.id, is_active=False)
    assert client.get("/api/me").status_code == 401
    client.cookies.clear()
    response = _sign_in(client, user.username, PASSWORD)
    assert response.status_code == 401 and "Wrong username or password" in response.text


def test_annotator_on_an_admin_page_gets_a_403_page(client: TestClient, db: Session) -> None:
    login(client, db, create_user(db, Role.annotator))
    page = client.get("/admin/users")
    assert page.status_code == 403 and "Not allowed" in page.text
    assert client.get("/api/users").json()["error"] == "forbidden"


def test_admin_creates_and_disables_users_through_the_page(client: TestClient, db: Session) -> None:
    admin = create_user(db, Role.admin)
    csrf = login(client, db, admin)
    created = client.post(
        "/admin/users",
        data={"username": "newcomer", "password": PASSWORD, "role": "reviewer", "csrf_token": csrf},
        headers={"HX-Request": "true"},
    )
    assert created.status_code == 200 and 'data-user="newcomer"' in created.text
    newcomer = db.scalar(select(User).where(User.username == "newcomer"))
    assert newcomer is not None and newcomer.role == Role.reviewer
    client.post(
        f"/admin/users/{newcomer.id}", data={"is_active": "false"}, headers={"X-CSRF-Token": csrf}
    )
    db.refresh(newcomer)
    assert newcomer.is_active is False


def test_bearer_tokens_work_for_scripts_and_respect_scope(client: TestClient, db: Session) -> None:
    admin = create_user(db, Role.admin)
    _, read_only = service.create_api_token(db, admin, "reader", ["read"])
    _, writer = service.create_api_token(db, admin, "writer")
    me = client.get("/api/me", headers={"Authorization": f"Bearer {read_only}"})
    assert me.status_code == 200 and me.json()["username"] == admin.username
    body = {"username": "scripted", "password": PASSWORD, "role": "annotator"}
    denied = client.post("/api/users", json=body, headers={"Authorization": f"Bearer {read_only}"})
    assert denied.status_code == 403
    made = client.post("/api/users", json=body, headers={"Authorization": f"Bearer {writer}"})
    assert made.status_code == 201 and made.json()["role"] == "annotator"
    assert client.get("/api/me", headers={"Authorization": "Bearer clb_forged"}).status_code == 401


def test_malformed_json_gets_a_422_explaining_the_field(client: TestClient, db: Session) -> None:
    admin = create_user(db, Role.admin)
    _, writer = service.create_api_token(db, admin, "writer")
    auth = {"Authorization": f"Bearer {writer}"}
    bad = client.post("/api/users", json={"username": "x y", "role": "king"}, headers=auth)
    assert bad.status_code == 422
    assert "password" in bad.json()["message"] and "role" in bad.json()["message"]
    broken = client.post(
        "/api/users", content=b"{not json", headers={**auth, "content-type": "application/json"}
    )
    assert broken.status_code == 422


def test_security_headers_and_health(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
