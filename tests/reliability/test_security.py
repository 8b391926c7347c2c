"""What must not get in: forged writes (CSRF), stale sessions, over-scoped or revoked tokens,
path traversal to files, uploaded files run as pages, unescaped text, missing headers.

Route walks reuse tests/auth/test_route_access.py, so new routes are covered automatically.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.annotations.node_edits import update_caption
from app.annotations.opening import open_annotation
from app.annotations.payload import annotation_payload
from app.auth import service as auth_service
from app.auth.models import Role
from app.cli import cli
from app.clips.models import ClipState
from app.core.config import get_settings
from app.core.security import ANON_COOKIE, SESSION_COOKIE
from app.export.models import ExportSnapshot
from tests.auth.test_route_access import _concrete, api_routes, declared_roles
from tests.factories import (
    PASSWORD,
    clip_media_dir,
    create_clip,
    create_model_draft,
    create_project,
    create_user,
    login,
)

ROOT = Path(__file__).resolve().parents[2]
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def unsafe_routes(app: object) -> list[tuple[str, str, frozenset[Role] | None]]:
    """(method, concrete path, roles allowed or None for public) of every state change."""
    found = [
        (method, _concrete(path), declared_roles(route)[1])
        for path, route in api_routes(app)
        for method in sorted(route.methods & UNSAFE)
    ]
    assert len(found) >= 30
    return found


def test_every_state_changing_route_refuses_a_session_without_its_csrf_token(
    app: object, db: Session
) -> None:
    clients = {role: TestClient(app, follow_redirects=False) for role in Role}
    for role, role_client in clients.items():
        login(role_client, db, create_user(db, role))
    refused = 0
    for method, path, allowed in unsafe_routes(app):
        role = Role.admin if allowed is None or Role.admin in allowed else next(iter(allowed))
        client = clients[role]
        for attempt in ({"headers": {"X-CSRF-Token": "forged"}}, {"data": {"csrf_token": ""}}, {}):
            response = client.request(method, path, **attempt)  # type: ignore[arg-type]
            where = f"{method} {path} as {role.value} with {attempt}"
            assert response.status_code == 403 and "security token" in response.text, where
            refused += 1
    assert clients[Role.admin].get("/api/me").status_code == 200  # even /logout was refused
    assert refused >= 90


def test_read_only_tokens_cannot_write_anywhere(
    app: object, client: TestClient, db: Session
) -> None:
    admin = create_user(db, Role.admin)
    _, reader = auth_service.create_api_token(db, admin, "reader", ["read"])
    auth = {"Authorization": f"Bearer {reader}"}
    assert client.get("/api/users", headers=auth).status_code == 200
    for method, path, allowed in unsafe_routes(app):
        if allowed is None or Role.admin not in allowed:
            continue  # public routes (sign-in) and routes refused to the role anyway
        response = client.request(method, path, headers={**auth, "Accept": "application/json"})
        assert response.status_code == 403, f"{method} {path}: {response.status_code}"
        assert "read-only" in response.json()["message"], f"{method} {path}"


def test_revoked_tokens_and_other_peoples_tokens(client: TestClient, db: Session) -> None:
    owner, stranger = create_user(db), create_user(db)
    token, plain = auth_service.create_api_token(db, owner, "script")
    _, other_plain = auth_service.create_api_token(db, stranger, "theirs")
    auth = {"Authorization": f"Bearer {plain}"}
    # A stranger cannot revoke someone else's token; an annotator's token has an annotator's rights.
    denied = client.delete(
        f"/api/tokens/{token.id}", headers={"Authorization": f"Bearer {other_plain}"}
    )
    assert denied.status_code in (403, 404)
    assert client.get("/api/users", headers=auth).status_code == 403
    assert client.delete(f"/api/tokens/{token.id}", headers=auth).status_code == 200
    gone = client.get("/api/me", headers=auth)
    assert gone.status_code == 401 and gone.json()["error"] == "unauthorized"
    # A bad token on a page answers 401 instead of sending a script round the sign-in page.
    page = client.get("/clips", headers={"Authorization": "Bearer clb_nope"})
    assert page.status_code == 401


def _sign_in(client: TestClient, username: str, csrf: str) -> object:
    return client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": csrf}
    )


def test_signing_in_again_ends_the_previous_session(client: TestClient, db: Session) -> None:
    user = create_user(db)
    csrf = login(client, db, user)
    old = client.cookies.get(SESSION_COOKIE)
    response = client.post(
        "/login", data={"username": user.username, "password": PASSWORD, "csrf_token": csrf}
    )
    assert response.status_code == 303
    new = response.cookies.get(SESSION_COOKIE)
    assert new and new != old
    for cookie, status in ((new, 200), (old, 401)):  # the cookie from before sign-in is dead
        client.cookies.clear()
        client.cookies.set(SESSION_COOKIE, cookie or "")
        assert client.get("/api/me").status_code == status


def test_disabling_a_user_on_the_admin_page_kills_their_session_and_tokens(
    app: object, db: Session
) -> None:
    victim = create_user(db)
    _, plain = auth_service.create_api_token(db, victim, "script")
    with TestClient(app, follow_redirects=False) as admin_client, TestClient(
        app, follow_redirects=False
    ) as victim_client:  # fmt: skip
        login(victim_client, db, victim)
        assert victim_client.get("/api/me").status_code == 200
        csrf = login(admin_client, db, create_user(db, Role.admin))
        done = admin_client.post(
            f"/admin/users/{victim.id}", data={"is_active": "false", "csrf_token": csrf}
        )
        assert done.status_code == 200
        assert victim_client.get("/api/me").status_code == 401
        assert (
            victim_client.get("/api/me", headers={"Authorization": f"Bearer {plain}"}).status_code
            == 401
        )


TRAVERSALS = [
    "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..%252F..%252Fetc%252Fpasswd",
    "%2E%2E%5C%2E%2E%5Cetc%5Cpasswd",
    "....%2F%2F....%2F%2Fetc%2Fpasswd",
    "%00thumb.jpg",
    "thumb.jpg%00.html",
    "source.mp4",
    "frames%2F..%2F..%2Fsource.mp4",
]


def test_media_and_exports_check_permission_and_cannot_traverse(
    client: TestClient, db: Session
) -> None:
    clip = create_clip(db, state=ClipState.ready, frame_count=6, width=320, height=240)
    folder = clip_media_dir(clip)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "thumb.jpg").write_bytes(b"\xff\xd8\xff\xe0 a jpeg")
    (folder / "source.mp4").write_text("<html><script>alert(1)</script></html>")
    admin, annotator = create_user(db, Role.admin), create_user(db)
    login(client, db, annotator)
    assert client.get(f"/media/clips/{clip.id}/thumb.jpg").status_code == 404  # not assigned
    login(client, db, admin)
    thumb = client.get(f"/media/clips/{clip.id}/thumb.jpg")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.headers["x-content-type-options"] == "nosniff"
    for attempt in TRAVERSALS:
        for url in (
            f"/media/clips/{clip.id}/{attempt}",
            f"/media/clips/{clip.id}/frames/{attempt}",
        ):
            response = client.get(url)
            assert response.status_code in (403, 404, 422), (url, response.status_code)
            assert "root:" not in response.text and "<script>" not in response.text, url
    # An export whose stored key points outside the media root is refused, not served.
    snapshot = ExportSnapshot(
        project_id=clip.project_id, name="evil", state="done", storage_key="../../../etc/passwd"
    )
    db.add(snapshot)
    db.flush()
    for url in (f"/exports/{snapshot.id}/download", f"/api/exports/{snapshot.id}/download"):
        response = client.get(url)
        assert response.status_code == 403 and "root:" not in response.text, url
    login(client, db, annotator)
    assert client.get(f"/api/exports/{snapshot.id}/download").status_code == 403


@pytest.mark.parametrize(
    ("name", "content"),
    [("page.html", b"<html><script>alert(1)</script></html>"),
     ("image.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
     ("run.php", b"<?php system($_GET['c']); ?>"), ("clip.mp4.html", b"<script>x</script>")],
)  # fmt: skip
def test_uploads_that_could_run_in_a_browser_are_refused(
    client: TestClient, db: Session, media_root: Path, name: str, content: bytes
) -> None:
    project = create_project(db)
    _, token = auth_service.create_api_token(db, create_user(db, Role.admin), "t")
    before = {p for p in media_root.rglob("*") if p.is_file()}
    response = client.post(
        f"/api/projects/{project.id}/clips",
        files={"file": (name, content, "text/html")},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 422 and "Not a video file type" in response.json()["message"]
    assert {p for p in media_root.rglob("*") if p.is_file()} == before
    static = (ROOT / "static").resolve()
    assert static not in get_settings().effective_media_root.parents  # never under /static


def test_a_script_in_a_caption_shows_as_text_in_the_workspace(
    client: TestClient, db: Session
) -> None:
    clip = create_clip(db, state=ClipState.ready, frame_count=6, width=320, height=240)
    create_model_draft(db, clip)
    owner = create_user(db)
    annotation = open_annotation(db, clip, owner)
    caption = annotation_payload(db, annotation)["captions"][0]
    evil = '<script>alert("owned")</script><img src=x onerror=alert(2)>'
    update_caption(db, owner, caption["id"], evil, caption["version"])
    login(client, db, owner)
    page = client.get(f"/annotations/{annotation.id}")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(" in page.text
    assert '<script>alert("owned")' not in page.text and "<img src=x" not in page.text


def test_every_response_carries_the_security_headers(client: TestClient, db: Session) -> None:
    login(client, db, create_user(db, Role.admin))
    for path in ("/", "/login", "/api/me", "/no-such-page", "/static/css/app.css", "/api/clips/0"):
        response = client.get(path, headers={"Accept": "text/html"})
        headers = response.headers
        csp = dict(
            part.strip().split(" ", 1) for part in headers["content-security-policy"].split(";")
        )
        assert csp["script-src"] == "'self'", path  # no inline scripts, no eval
        assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'", path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["x-frame-options"] == "DENY", path


def test_over_https_every_cookie_is_secure_and_hsts_is_sent(
    client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """COOKIE_SECURE (on in docker-compose.yml): the anonymous CSRF cookie, the session cookie
    and its removal at sign-out are all `Secure`, and every response asks for HTTPS only."""
    assert "strict-transport-security" not in client.get("/login").headers  # plain HTTP: off
    monkeypatch.setattr(get_settings(), "cookie_secure", True)
    shown = CliRunner().invoke(cli, ["config", "--json"])
    assert '"cookie_secure": true' in shown.output, shown.output
    user = create_user(db)
    client.cookies.clear()
    client.base_url = client.base_url.copy_with(scheme="https")  # Secure cookies go back
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    signed_in = client.post(
        "/login",
        data={"username": user.username, "password": PASSWORD, "csrf_token": csrf.group(1)},
    )
    assert signed_in.status_code == 303
    session_csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text)
    assert session_csrf
    signed_out = client.post("/logout", data={"csrf_token": session_csrf.group(1)})
    assert signed_out.status_code == 303
    set_cookies = {
        name: response.headers.get_list("set-cookie")
        for name, response in (
            ("login page", page),
            ("sign-in", signed_in),
            ("sign-out", signed_out),
        )
    }
    assert ANON_COOKIE in set_cookies["login page"][0]
    assert (
        SESSION_COOKIE in set_cookies["sign-in"][0] and SESSION_COOKIE in set_cookies["sign-out"][0]
    )
    for what, cookies in set_cookies.items():
        for cookie in cookies:
            assert "secure" in [p.strip().lower() for p in cookie.split(";")], (what, cookie)
    for response in (page, signed_in, signed_out, client.get("/static/css/app.css")):
        assert response.headers["strict-transport-security"] == "max-age=31536000"


def test_templates_have_no_inline_scripts_or_event_handlers() -> None:
    """The CSP forbids inline code, so any that crept into a template would silently break."""
    offenders = []
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag and 'type="application/json"' not in tag:
                offenders.append(f"{template.name}: {tag}")
        offenders += [f"{template.name}: {m}" for m in re.findall(r"\son[a-z]+\s*=", text)]
        offenders += [f"{template.name}: javascript:" for _ in re.findall("javascript:", text)]
    assert offenders == []


def test_templates_show_clip_file_names_only_through_the_bidi_filter() -> None:
    """A clip's file name is the uploader's text: direction controls in it could make it read
    as another name. Every template shows it through `clip_name` (or `bidi_visible`), which
    turns them into visible codes (tests/agreement/test_routes.py checks the pages)."""
    offenders = [
        f"{template.relative_to(ROOT)}: {expression}"
        for template in (ROOT / "templates").rglob("*.html")
        for expression in re.findall(r"{{[^}]*\bfilename\b[^}]*}}", template.read_text())
        if "bidi_visible" not in expression
    ]
    assert offenders == []
