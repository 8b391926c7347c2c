"""Nothing that waits on the database runs on the event loop: one lock wait there would stop
every request of the process (the freeze of issue 19)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from app.core import deps
from tests.auth.test_route_access import api_routes


def _takes_the_session(dependant: Dependant) -> bool:
    return any(sub.call is deps.db_session for sub in dependant.dependencies)


def _async_users_of_the_session(dependant: Dependant, where: str) -> list[str]:
    found = []
    if inspect.iscoroutinefunction(dependant.call) and _takes_the_session(dependant):
        found.append(f"{where}: {getattr(dependant.call, '__qualname__', dependant.call)}")
    for sub in dependant.dependencies:
        found += _async_users_of_the_session(sub, where)
    return found


def test_no_route_or_dependency_that_takes_the_session_is_async(app: Any) -> None:
    offenders: list[str] = []
    for path, route in api_routes(app):
        offenders += _async_users_of_the_session(route.dependant, f"{sorted(route.methods)} {path}")
    assert offenders == []


def test_the_walk_sees_an_async_route_that_takes_the_session() -> None:
    """The check itself: an ``async def`` taking ``DB`` is reported."""
    from fastapi import FastAPI

    probe = FastAPI()

    @probe.get("/probe")
    async def probe_route(db: deps.DB) -> None:  # pragma: no cover - never called
        return None

    route = next(r for _, r in api_routes(probe) if r.path == "/probe")
    assert _async_users_of_the_session(route.dependant, "probe") != []


def test_a_lock_held_elsewhere_ends_in_an_error_not_a_wait_for_good(engine: Engine) -> None:
    """A transaction that holds a row (a stuck request, a console left open) makes others
    fail after the lock timeout (the app answers 503) instead of hanging them."""
    with engine.connect() as holder, engine.connect() as waiter:
        assert waiter.exec_driver_sql("SHOW statement_timeout").scalar() == "1min"
        holder.exec_driver_sql("SELECT pg_advisory_xact_lock(4242)")
        with pytest.raises(OperationalError, match="lock timeout"):
            waiter.exec_driver_sql("SELECT pg_advisory_xact_lock(4242)")
        holder.rollback()
