"""Every datetime column reads back timezone-aware in UTC, on PostgreSQL and on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import sessionmaker

from app.auth.models import Role, User
from app.core.db import UTCDateTime, make_engine
from app.core.migrate import upgrade_database
from app.models import Base


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres_only), "sqlite"])
def any_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "postgresql":
        yield request.getfixturevalue("engine")
        return
    url = f"sqlite:///{tmp_path / 'embedded.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def test_every_model_datetime_column_is_utc_aware() -> None:
    plain = [
        f"{table.name}.{column.name}"
        for table in Base.metadata.tables.values()
        for column in table.columns
        if column.type.python_type is datetime and not isinstance(column.type, UTCDateTime)
    ]
    assert plain == []


def test_datetimes_read_back_aware_utc_and_naive_ones_are_refused(any_engine: Engine) -> None:
    connection = any_engine.connect()
    outer = connection.begin()
    session = sessionmaker(bind=connection, join_transaction_mode="create_savepoint")()
    try:
        paris_noon = datetime(2026, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
        user = User(username="utc-check", password_hash="x", role=Role.annotator)
        user.locked_until = paris_noon
        session.add(user)
        session.flush()
        session.expire_all()
        stored = session.scalar(select(User.locked_until).where(User.id == user.id))
        created = session.scalar(select(User.created_at).where(User.id == user.id))
        assert stored == paris_noon and stored is not None and stored.tzinfo == UTC
        assert stored.hour == 10
        assert created is not None and created.tzinfo == UTC
        assert (datetime.now(UTC) - created) < timedelta(minutes=5)  # subtracting works

        after_half_past_ten = select(User.id).where(
            User.id == user.id, User.locked_until > datetime(2026, 6, 1, 10, 30, tzinfo=UTC)
        )
        assert session.scalar(after_half_past_ten) is None  # UTC instants, not wall clocks

        user.locked_until = datetime(2026, 6, 1, 12, 0)  # naive: which zone?
        with pytest.raises(StatementError, match="naive datetime"):
            session.flush()
    finally:
        session.close()
        outer.rollback()
        connection.close()
