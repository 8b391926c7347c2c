"""Login throttling that holds when guesses arrive in parallel.

An attempt is counted *before* its password is checked, by one atomic upsert per key
(``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``) that the caller commits before the check,
so parallel guesses cannot all read "not locked yet": at most the limit of them are ever
checked. A successful login gives its attempt back.

Three keys, each a fixed window of ``login_lockout_seconds``, checked in this order:

* ``pair:NAME@ADDR``: one client's guesses at one name (``login_max_failures``);
* ``user:NAME``: everyone's guesses at one name, a ceiling against guessing spread over many
  addresses (``login_max_failures_per_user``);
* ``client:ADDR``: one address's guesses over all names (``login_max_failures_per_client``).

A refused attempt is not counted on the later keys, so one client that keeps knocking cannot
push a name's ceiling and lock its owner out everywhere. Keys use the typed name, never the
user id: an unknown name locks exactly like a real one and reveals nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.auth.models import LoginThrottle
from app.core.config import get_settings
from app.core.db import is_postgresql, utcnow


@dataclass(frozen=True)
class LoginKeys:
    """The throttle keys of one login attempt."""

    pair: str
    user: str
    client: str

    @classmethod
    def of(cls, username: str, client: str) -> LoginKeys:
        name = username.strip().lower()[:80]
        return cls(pair=f"pair:{name}@{client}", user=f"user:{name}", client=f"client:{client}")


def _count(session: Session, key: str, now: datetime, window: timedelta) -> tuple[int, datetime]:
    """Add one attempt to ``key`` (a new window when the old one has passed); the new count."""
    dialect = postgresql if is_postgresql(session) else sqlite
    row = LoginThrottle
    expired = row.window_start <= now - window
    statement = (
        dialect.insert(row)
        .values(key=key, attempts=1, window_start=now)
        .on_conflict_do_update(
            index_elements=[row.key],
            set_={
                "attempts": case((expired, 1), else_=row.attempts + 1),
                "window_start": case((expired, now), else_=row.window_start),
            },
        )
        .returning(row.attempts, row.window_start)
    )
    attempts, started = session.execute(statement).one()
    return int(attempts), started


def count_attempt(session: Session, keys: LoginKeys) -> datetime | None:
    """Count one attempt; when a key is over its limit, the time its window ends (the attempt
    must then be refused without checking the password), else None."""
    settings = get_settings()
    window = timedelta(seconds=settings.login_lockout_seconds)
    now = utcnow()
    limits = (
        (keys.pair, settings.login_max_failures),
        (keys.user, settings.login_max_failures_per_user),
        (keys.client, settings.login_max_failures_per_client),
    )
    for key, limit in limits:
        attempts, started = _count(session, key, now, window)
        if attempts > limit:
            return started + window
    return None


def give_back(session: Session, keys: LoginKeys) -> None:
    """A successful login: its own client's count starts over, the others lose this attempt."""
    session.execute(update(LoginThrottle).where(LoginThrottle.key == keys.pair).values(attempts=0))
    session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.key.in_((keys.user, keys.client)), LoginThrottle.attempts > 0)
        .values(attempts=LoginThrottle.attempts - 1)
    )
