"""`alembic upgrade head` on an empty database gives exactly the models' schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, delete, inspect
from sqlalchemy.orm import Session

from app.clips.models import Clip
from app.core.db import make_engine
from app.core.migrate import downgrade_database, objects_of, upgrade_database
from app.models import Base
from app.projects.models import Project
from tests.conftest import TEST_DB_NAME, recreate_database
from tests.factories import create_clip, create_model_draft, create_project


@pytest.mark.postgres_only
def test_upgrade_head_matches_models_and_downgrade_base_empties() -> None:
    url = recreate_database(f"{TEST_DB_NAME}_migrations")
    upgrade_database(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": objects_of(conn.dialect.name)}
            )
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
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": objects_of(conn.dialect.name)}
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_sqlite_never_hands_a_deleted_clips_id_out_again(tmp_path: Path) -> None:
    """A clip's id names its media folder and its frames' export ids: on the embedded default
    a new clip must not take a deleted one's id (SQLite would, without AUTOINCREMENT). The
    revision that makes it so rebuilds the tables and keeps every row that references them."""
    url = f"sqlite:///{tmp_path / 'embedded.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            project = create_project(s)
            clips = [create_clip(s, project) for _ in range(3)]
            for clip in clips:
                create_model_draft(s, clip, frames=3)
            s.commit()
            newest, project_id = clips[-1].id, project.id
        referencing = ("annotation", "track", "keypoint_frame")
        before = {t: _count(engine, t) for t in referencing}
        engine.dispose()
        downgrade_database(url, revision="0012_character_box")  # the tables as they were

        upgrade_database(url)
        assert {t: _count(engine, t) for t in referencing} == before
        with Session(engine) as s:
            s.execute(delete(Clip).where(Clip.id == newest))
            s.commit()
            assert _count(engine, "annotation") == before["annotation"] - 1  # cascades still
            again = create_clip(s, s.get_one(Project, project_id))
            s.commit()
            assert again.id > newest
    finally:
        engine.dispose()


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())
