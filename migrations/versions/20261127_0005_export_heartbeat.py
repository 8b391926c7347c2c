"""export heartbeat: a build's last sign of life, so a dead worker's build is taken over

Revision ID: 0005_export_heartbeat
Revises: 0004_scale_indexes
Create Date: 2026-11-27 16:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_export_heartbeat"
down_revision: str | None = "0004_scale_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "export_snapshot", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("export_snapshot", "heartbeat_at")
