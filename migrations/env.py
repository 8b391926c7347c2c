"""Alembic environment: the URL comes from CelLabel's settings unless the caller passes one."""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from sqlalchemy import Connection

from app.core.config import get_settings
from app.core.db import UTCDateTime, make_engine
from app.core.migrate import objects_of
from app.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name)

target_metadata = Base.metadata


def _url() -> str:
    return config.attributes.get("url") or get_settings().effective_database_url


def _render_item(kind: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """UTCDateTime is a plain timestamptz in the schema (its UTC handling is Python's), so
    revisions spell it as one and never import app code."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_item=_render_item,
        include_object=objects_of(connection.dialect.name),
        render_as_batch=connection.dialect.name == "sqlite",
    )
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # A batch migration rebuilds a table (copy, drop, rename): with foreign keys enforced,
        # the drop would cascade into every row that references it. SQLite only switches
        # them outside a transaction; they come back on after the migration.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Building an index on a large table may take longer than any request may.
            connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
        context.run_migrations()
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
