"""clip list index: a project's clips in id order, for the keyset-paginated clips list

Revision ID: 0006_clip_list_index
Revises: 0005_export_heartbeat
Create Date: 2026-12-05 19:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006_clip_list_index"
down_revision: str | None = "0005_export_heartbeat"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_clip_project_id", "clip", ["project_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_clip_project_id", table_name="clip")
