"""FastAPI dependencies that need no feature: the request's database session and the parsed
form body. Who is calling (roles, CSRF) lives in :mod:`app.auth.deps`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app.core.db import get_sessionmaker


def db_session() -> Iterator[Session]:
    """The request's session: committed when the route returns, rolled back on any error."""
    session = get_sessionmaker()()
    try:
        yield session
        session.commit()
    except BaseException:
        # Detach first: a rollback would expire the caller's User, and the error page that
        # follows still shows who is signed in.
        session.expunge_all()
        session.rollback()
        raise
    finally:
        session.close()


# scope="function": commit before the response is sent, so a failed commit is the response.
DB = Annotated[Session, Depends(db_session, scope="function")]


async def _submitted_form(request: Request) -> FormData:
    """The parsed form body. Parsing is async, so routes that read fields not known in advance
    take this instead of awaiting it themselves and stay plain ``def`` (off the event loop)."""
    return await request.form()


SubmittedForm = Annotated[FormData, Depends(_submitted_form)]
