"""clip list indexes: a project's clips in id order (keyset pages) and file-name trigrams

Revision ID: 0007_clip_list_index
Revises: 0006_reasons_by_kind
Create Date: 2026-12-05 19:40:00.000000

The trigram index (PostgreSQL's pg_trgm, a contrib extension) serves the list's name search,
``ILIKE '%part%'``; where the extension is not installed the search still works, by a scan.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_clip_list_index"
down_revision: str | None = "0006_reasons_by_kind"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGRAMS = sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")


def upgrade() -> None:
    op.create_index("ix_clip_project_id", "clip", ["project_id", "id"], unique=False)
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and bind.scalar(TRIGRAMS) is not None:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index(
            "ix_clip_filename_trgm",
            "clip",
            ["filename"],
            unique=False,
            postgresql_using="gin",
            postgresql_ops={"filename": "gin_trgm_ops"},
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_clip_filename_trgm")
    op.drop_index("ix_clip_project_id", table_name="clip")
