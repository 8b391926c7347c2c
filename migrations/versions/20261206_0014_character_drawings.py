"""character drawings: per-character held drawing runs and drawing timing

Revision ID: 0014_character_drawings
Revises: 0013_ids_never_reused
Create Date: 2026-12-06 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014_character_drawings"
down_revision: str | None = "0013_ids_never_reused"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("character") as batch:
        batch.add_column(
            sa.Column(
                "drawing_runs",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                server_default=sa.text("'[]'"),
                nullable=False,
            )
        )
        batch.add_column(sa.Column("timing", sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("character") as batch:
        batch.drop_column("timing")
        batch.drop_column("drawing_runs")
