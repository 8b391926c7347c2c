"""export target: a bucket prefix a snapshot is also written to, and how that went

Revision ID: 0016_export_target
Revises: 0015_direct_uploads
Create Date: 2026-12-06 04:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_export_target"
down_revision: str | None = "0015_direct_uploads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("export_snapshot") as batch:
        batch.add_column(sa.Column("target_url", sa.String(length=1024), nullable=True))
        batch.add_column(sa.Column("target_object", sa.String(length=2048), nullable=True))
        batch.add_column(sa.Column("target_error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("export_snapshot") as batch:
        batch.drop_column("target_error")
        batch.drop_column("target_object")
        batch.drop_column("target_url")
