"""free-text tags: a project may let annotators type tag values outside its vocabulary

Revision ID: 0006_free_tags
Revises: 0005_export_heartbeat
Create Date: 2026-12-05 19:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_free_tags"
down_revision: str | None = "0005_export_heartbeat"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "project",
        sa.Column(
            "allow_free_tags", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
    )


def downgrade() -> None:
    op.drop_column("project", "allow_free_tags")
