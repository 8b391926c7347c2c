"""Small builders: `create_x(session, **overrides)` instead of giant fixtures."""

from __future__ import annotations

import itertools
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.auth import service as auth_service
from app.auth.models import Role, User
from app.clips.models import Clip
from app.core.security import SESSION_COOKIE, sign
from app.projects import service as project_service
from app.projects.models import Project

_seq = itertools.count(1)
PASSWORD = "correct horse battery"


def create_user(session: Session, role: Role = Role.annotator, **over: Any) -> User:
    name = over.pop("username", f"{role.value}{next(_seq)}")
    user = auth_service.create_user(session, name, over.pop("password", PASSWORD), role)
    for key, value in over.items():
        setattr(user, key, value)
    session.flush()
    return user


def create_project(session: Session, **over: Any) -> Project:
    return project_service.create_project(session, over.pop("name", f"project{next(_seq)}"), **over)


def create_clip(session: Session, project: Project | None = None, **over: Any) -> Clip:
    project = project or create_project(session)
    n = next(_seq)
    values: dict[str, Any] = {
        "project_id": project.id,
        "filename": f"clip{n}.mp4",
        "storage_key": f"clips/{project.id}/x{n}/source.mp4",
        "content_hash": f"{n:064x}",
        "subsets": ["pose"],
    }
    values.update(over)
    clip = Clip(**values)
    session.add(clip)
    session.flush()
    return clip


def login(client: TestClient, session: Session, user: User) -> str:
    """Sign `user` in on `client` (a real server-side session); returns the CSRF token."""
    new = auth_service.start_session(session, user)
    client.cookies.set(SESSION_COOKIE, sign(new.key))
    return new.csrf_token
