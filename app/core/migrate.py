"""Bring a database to the newest schema with Alembic (used by the CLI, demo and tests)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

from app.core.config import get_settings

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(url: str | None = None) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["url"] = url or get_settings().effective_database_url
    config.attributes["configure_logging"] = False
    return config


def upgrade_database(url: str | None = None, revision: str = "head") -> None:
    if url is None and get_settings().effective_database_url.startswith("sqlite"):
        get_settings().data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


def downgrade_database(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def objects_of(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """Alembic's ``include_object`` for ``dialect``: leave out schema objects the models build
    only on another database (``Index(...).ddl_if(dialect="postgresql")``)."""

    def include(obj: Any, _name: str | None, _type: str, _reflected: bool, _other: Any) -> bool:
        only_on = getattr(getattr(obj, "_ddl_if", None), "dialect", None)
        return only_on is None or only_on == dialect

    return include
