"""ids never reused on SQLite: project and clip get AUTOINCREMENT

Revision ID: 0013_ids_never_reused
Revises: 0012_character_box
Create Date: 2026-12-05 23:40:00.000000

A clip's id names its media folder (``clips/<project>/<clip>``) and its frames' export ids;
SQLite without AUTOINCREMENT hands the id of the newest deleted row out again. PostgreSQL's
sequences never reuse one, so nothing changes there. The tables are rebuilt with their rows
(migrations/env.py turns foreign keys off for the rebuild, so no referencing row is lost).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013_ids_never_reused"
down_revision: str | None = "0012_character_box"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("project", "clip")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": False}
        ):
            pass
