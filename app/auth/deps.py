"""FastAPI dependencies for who is calling: the principal, CSRF, and roles.

Every route declares its audience with exactly one of :func:`require` or :data:`public`;
``tests/auth/test_route_access.py`` walks all routes and fails on any route without one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from app.auth import service as auth_service
from app.auth.models import Role, User
from app.core.deps import DB
from app.core.errors import Forbidden, Unauthorized
from app.core.security import (
    ANON_COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    anonymous_csrf_token,
    tokens_match,
    unsign,
)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Principal:
    """Who is calling. ``user`` is the request session's row; ``user_id``, ``username`` and
    ``role`` are read once when the caller is identified, so pages (error pages after a failed
    flush or a rollback, which expire every row of the session) never load it again."""

    user: User
    via: str  # "session" | "token"
    csrf_token: str | None = None
    scopes: frozenset[str] = field(default_factory=lambda: frozenset({"read", "write"}))
    user_id: int = field(init=False)
    username: str = field(init=False)
    role: Role = field(init=False)

    def __post_init__(self) -> None:
        self.user_id, self.username, self.role = self.user.id, self.user.username, self.user.role


def _session_key(request: Request) -> str | None:
    signed = request.cookies.get(SESSION_COOKIE)
    return unsign(signed) if signed else None


def optional_principal(request: Request, db: DB) -> Principal | None:
    """The caller from a Bearer token or the session cookie, or None for anonymous."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        found = auth_service.resolve_api_token(db, auth[7:].strip())
        if found is None:
            raise Unauthorized("The API token is invalid, revoked or belongs to a disabled user.")
        user, token = found
        return Principal(user=user, via="token", scopes=frozenset(token.scopes.split(",")))
    key = _session_key(request)
    if key:
        resolved = auth_service.resolve_session(db, key)
        if resolved is not None:
            user, row = resolved
            return Principal(user=user, via="session", csrf_token=row.csrf_token)
    return None


async def _submitted_csrf(request: Request) -> str | None:
    token = request.headers.get(CSRF_HEADER)
    if token:
        return token
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def check_csrf(request: Request, principal: Principal | None) -> None:
    """Cookie-authenticated writes must echo the session's CSRF token (form field or header)."""
    if request.method in SAFE_METHODS or (principal is not None and principal.via == "token"):
        return
    if principal is not None:
        expected = principal.csrf_token or ""
    else:
        anon = request.cookies.get(ANON_COOKIE)
        expected = anonymous_csrf_token(anon) if anon else ""
    if not expected or not tokens_match(expected, await _submitted_csrf(request)):
        raise Forbidden("The form's security token is missing or stale. Reload the page and retry.")


def require(*roles: Role) -> Callable[..., Any]:
    """Dependency admitting signed-in users with one of ``roles`` (all roles when empty)."""
    allowed = frozenset(roles or Role)

    async def dependency(
        request: Request, principal: Annotated[Principal | None, Depends(optional_principal)]
    ) -> Principal:
        if principal is None:
            raise Unauthorized("Please sign in.")
        request.state.principal = principal  # error pages still show who is signed in
        request.state.user_id = principal.user.id
        if principal.role not in allowed:
            raise Forbidden("Your role does not allow this page or action.")
        if request.method not in SAFE_METHODS and "write" not in principal.scopes:
            raise Forbidden("This API token is read-only.")
        await check_csrf(request, principal)
        return principal

    dependency.allowed_roles = allowed  # type: ignore[attr-defined]
    return dependency


async def public(
    request: Request, principal: Annotated[Principal | None, Depends(optional_principal)]
) -> Principal | None:
    """Dependency for routes anyone may call (login, health, static docs)."""
    await check_csrf(request, principal)
    request.state.principal = principal
    request.state.user_id = principal.user.id if principal else None
    return principal


public.allowed_roles = None  # type: ignore[attr-defined]

AnyUser = Annotated[Principal, Depends(require())]
AdminOnly = Annotated[Principal, Depends(require(Role.admin))]
Annotator = Annotated[Principal, Depends(require(Role.annotator))]
Staff = Annotated[Principal, Depends(require(Role.admin, Role.reviewer))]
Public = Annotated[Principal | None, Depends(public)]
