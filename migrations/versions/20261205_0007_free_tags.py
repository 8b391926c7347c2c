"""free-text tags: a project may let annotators type tag values outside its vocabulary

Revision ID: 0007_free_tags
Revises: 0007_clip_list_index
Create Date: 2026-12-05 19:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_free_tags"
down_revision: str | None = "0007_clip_list_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "project",
        sa.Column("allow_free_tags", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("project", "allow_free_tags")
