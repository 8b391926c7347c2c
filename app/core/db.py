"""Engine, declarative base and the unit-of-work helpers.

One transaction per request or task: callers open a session with :func:`session_scope` (or
the FastAPI dependency in :mod:`app.core.deps`), services only flush, and the scope commits
or rolls back.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Engine,
    MetaData,
    TypeDecorator,
    create_engine,
    event,
    inspect,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapper, Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from app.core.config import get_settings
from app.core.errors import Conflict

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on PostgreSQL (indexable, compact), plain JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")
# The same for a value that may be absent: Python None is SQL NULL, not JSON null.
NullableJSONType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def is_postgresql(session: Session) -> bool:
    """Whether ``session`` talks to PostgreSQL (else SQLite, the embedded mode and tests)."""
    return session.get_bind().dialect.name == "postgresql"


def utcnow() -> datetime:
    """Now, timezone-aware in UTC: the only clock the app stores or compares with."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A moment in time, written as UTC and read back timezone-aware in UTC on every database.

    PostgreSQL keeps the offset (``timestamptz``) but answers in the session's time zone;
    SQLite keeps a naive string. Both come back here as aware UTC, so code may compare and
    subtract any two datetimes it reads. A naive datetime is refused: its zone is a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give it a time zone (utcnow())")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # SQLite: stored as UTC without an offset
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime()}


class StrEnum(enum.StrEnum):
    """String enums stored by value."""


# Versioned models (``version_id_col``) -> what a lost race on one of their rows is called and
# the current state a client is shown (the same as the version check's Conflict carries).
_LOST_RACE_VIEWS: dict[type, tuple[str, Callable[[Any], Any]]] = {}


def describe_lost_races(model: type, kind: str, view: Callable[[Any], Any]) -> None:
    """Report a lost race on a row of ``model`` as a ``kind`` with ``view(current row)``."""
    _LOST_RACE_VIEWS[model] = (kind, view)


# (model, primary key, version attribute, version the write expects)
_VersionedWrite = tuple[type, tuple[Any, ...], str, Any]


def _version_key(mapper: Mapper[Any]) -> str | None:
    column = mapper.version_id_col
    return None if column is None else mapper.get_property_by_column(column).key


class AppSession(Session):
    """The app's session: a versioned write that lost a race is the domain Conflict, carrying
    the current version and state like any stale save, wherever the flush happens.

    Two saves can both pass a version check and then update the same row; the database lets
    the first through and the second's UPDATE matches no row (SQLAlchemy's StaleDataError,
    which names only the table). The rows written are noted before each flush, so the one
    that moved on can be read back (in a fresh session: this one's transaction is dead)."""

    def flush(self, objects: Sequence[Any] | None = None) -> None:
        writes = self._versioned_writes()
        try:
            super().flush(objects)
        except StaleDataError as exc:
            raise self._lost_race(writes) from exc

    def _versioned_writes(self) -> list[_VersionedWrite]:
        writes = []
        for obj in (*self.dirty, *self.deleted):
            state = inspect(obj)
            key = _version_key(state.mapper)
            if key is not None and state.identity is not None:
                expected = state.committed_state.get(key, state.dict.get(key))
                writes.append((type(obj), state.identity, key, expected))
        return writes

    def _lost_race(self, writes: list[_VersionedWrite]) -> Conflict:
        with Session(self.get_bind()) as fresh:
            for model, identity, key, expected in writes:
                kind, view = _LOST_RACE_VIEWS.get(model, (model.__name__.lower(), lambda _: None))
                current = fresh.get(model, identity)
                if current is None:
                    return Conflict(
                        f"This {kind} was deleted by someone else meanwhile.",
                        detail={"current_version": None, "current": None},
                    )
                version = getattr(current, key)
                if version != expected:
                    return Conflict(
                        f"This {kind} was changed by someone else meanwhile (now version "
                        f"{version}, you edited {expected}).",
                        detail={"current_version": version, "current": view(current)},
                    )
        return Conflict(
            "Someone else saved this item first. Reload to see their version.",
            detail={"current_version": None, "current": None},
        )


# PostgreSQL's deadlock, lock timeout and serialization failure: another transaction held the
# rows this one needed, so nothing was written and the same request may well succeed again.
CONTENTION_STATES = frozenset({"40P01", "55P03", "40001"})


def is_contention(exc: DBAPIError) -> bool:
    """Did the statement fail because another transaction held its rows (PostgreSQL), or the
    database file stayed locked past the busy timeout (SQLite)?"""
    if getattr(exc.orig, "sqlstate", None) in CONTENTION_STATES:
        return True
    return "database is locked" in str(exc.orig)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    settings = get_settings()
    # A stuck transaction or lock errors out instead of holding a request (and its worker
    # thread) for good; migrations lift the statement limit for themselves.
    options = (
        f"-c statement_timeout={int(settings.database_statement_timeout_s * 1000)}"
        f" -c lock_timeout={int(settings.database_lock_timeout_s * 1000)}"
        f" -c idle_in_transaction_session_timeout={int(settings.database_idle_timeout_s * 1000)}"
    )
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        pool_timeout=settings.database_pool_timeout_s,
        connect_args={"options": options},
    )


@lru_cache
def get_engine() -> Engine:
    settings = get_settings()
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return make_engine(url)


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), class_=AppSession, expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits when the block succeeds and rolls back when it raises."""
    session = get_sessionmaker()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
