"""`alembic upgrade head` on an empty database gives exactly the models' schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from app.core.migrate import downgrade_database, upgrade_database
from app.models import Base
from tests.conftest import TEST_DB_NAME, recreate_database


@pytest.mark.postgres_only
def test_upgrade_head_matches_models_and_downgrade_base_empties() -> None:
    url = recreate_database(f"{TEST_DB_NAME}_migrations")
    upgrade_database(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
        assert diff == []
        assert set(inspect(engine).get_table_names()) == set(Base.metadata.tables) | {
            "alembic_version"
        }
        downgrade_database(url)
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


def test_sqlite_upgrade_head_matches_models(tmp_path: Path) -> None:
    """The embedded default's schema comes from the same revisions (batch mode on SQLite)."""
    url = f"sqlite:///{tmp_path / 'embedded.db'}"
    upgrade_database(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()
