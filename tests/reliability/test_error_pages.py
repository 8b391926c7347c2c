"""Error pages after the database refused a write, on a live server (the real request session:
a failed flush rolls it back, which expires every row it holds, the signed-in user's too)."""

from __future__ import annotations

import uuid

import httpx

from app.auth import service as auth_service
from app.auth.models import Role
from app.core.db import session_scope
from app.core.security import SESSION_COOKIE, sign
from tests.factories import create_project, create_user


def test_a_page_refused_by_the_database_still_shows_who_is_signed_in(live_api: str) -> None:
    with session_scope() as s:
        admin = create_user(s, Role.admin, username=f"nul-{uuid.uuid4().hex[:8]}")
        project = create_project(s, name=f"nul-{uuid.uuid4().hex[:8]}")
        new = auth_service.start_session(s, admin)
        name, project_id = admin.username, project.id
    with httpx.Client(base_url=live_api, cookies={SESSION_COOKIE: sign(new.key)}) as client:
        response = client.post(
            f"/projects/{project_id}",
            data={
                "description": "nul \0 byte",
                "subsets": "i2v",
                "emotion_labels": "joy",
                "tag_vocabulary": "venue: indoor",
                "csrf_token": new.csrf_token,
            },
        )
    assert response.status_code == 422, response.text
    assert name in response.text and "cannot be stored" in response.text
