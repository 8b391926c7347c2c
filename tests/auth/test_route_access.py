"""Walk every registered route with every role and with no session.

A route must declare its audience (`require(...)` or `public`); callers outside it must get
401/403 (or, for anonymous page views, a redirect to the sign-in page). New routes are picked
up automatically, so this test grows with the app.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.auth.models import Role
from tests.factories import create_user, login

FRAMEWORK_ROUTES = {"/static"}


def declared_roles(route: APIRoute) -> tuple[bool, frozenset[Role] | None]:
    """(declared?, allowed roles or None for public) from the route's dependency tree."""
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if dep.call is not None and hasattr(dep.call, "allowed_roles"):
            return True, dep.call.allowed_roles
        stack.extend(dep.dependencies)
    return False, None


def all_routes(routes: list[Any], prefix: str = "") -> list[tuple[str, Any]]:
    """(full path, route) for every route, looking inside included routers."""
    found: list[tuple[str, Any]] = []
    for route in routes:
        if hasattr(route, "original_router"):
            found += all_routes(route.original_router.routes, prefix + route.include_context.prefix)
        else:
            found.append((prefix + route.path, route))
    return found


def api_routes(app: Any) -> list[tuple[str, APIRoute]]:
    return [(path, r) for path, r in all_routes(app.routes) if isinstance(r, APIRoute)]


def test_every_route_declares_who_may_call_it(app: Any) -> None:
    routes = api_routes(app)
    assert len(routes) >= 10
    undeclared = [f"{sorted(r.methods)} {path}" for path, r in routes if not declared_roles(r)[0]]
    assert undeclared == []
    others = [p for p, r in all_routes(app.routes) if not isinstance(r, APIRoute)]
    assert set(others) <= FRAMEWORK_ROUTES


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}:]+(:path)?\}", lambda m: "x/y" if m.group(1) else "1", path)


@pytest.mark.parametrize("role", [None, Role.annotator, Role.reviewer, Role.admin])
def test_routes_refuse_callers_outside_their_audience(
    app: Any, client: TestClient, db: Session, role: Role | None
) -> None:
    # Anonymous callers get a CSRF token from the sign-in page, so refusals below are about roles.
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    headers: dict[str, str] = {"X-CSRF-Token": token.group(1) if token else ""}
    if role is not None:
        user = create_user(db, role)
        headers["X-CSRF-Token"] = login(client, db, user)
    checked = 0
    # Sign-out goes last: it ends the session the other requests ride on.
    for path, route in sorted(api_routes(app), key=lambda pr: pr[0] == "/logout"):
        _, allowed = declared_roles(route)
        for method in sorted(route.methods - {"HEAD"}):
            response = client.request(method, _concrete(path), headers=headers)
            status = response.status_code
            where = f"{method} {path} as {role}"
            if allowed is None:
                assert status not in (401, 403), where
            elif role is None:
                redirect_to_login = status == 303 and "/login" in response.headers["location"]
                assert status == 401 or redirect_to_login, f"{where}: {status}"
            elif role not in allowed:
                assert status == 403, f"{where}: {status}"
            else:
                assert status not in (401, 403) and status < 500, f"{where}: {status}"
            checked += 1
    assert checked >= 10
