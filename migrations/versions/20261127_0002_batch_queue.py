"""batch queue: open-slot and open-lease partial indexes, queue position, sampling seed

Revision ID: 0002_batch_queue
Revises: 0001
Create Date: 2026-11-27 12:42:12.508655
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_batch_queue"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_LEASE = sa.text("state IN ('assigned', 'in_progress')")
OPEN_SLOT = sa.text("handed_out < required_annotators")


def upgrade() -> None:
    op.add_column("batch", sa.Column("seed", sa.Integer(), server_default="0", nullable=False))
    op.add_column(
        "batch_clip", sa.Column("position", sa.Integer(), server_default="0", nullable=False)
    )
    op.execute("UPDATE batch_clip SET position = clip_id")
    op.create_index(
        "ix_assignment_open_lease",
        "assignment",
        ["leased_until"],
        unique=False,
        postgresql_where=OPEN_LEASE,
        sqlite_where=OPEN_LEASE,
    )
    op.create_index(
        "ix_batch_clip_open_slots",
        "batch_clip",
        ["batch_id", "position", "id"],
        unique=False,
        postgresql_where=OPEN_SLOT,
        sqlite_where=OPEN_SLOT,
    )
    op.create_index("ix_batch_member_user_role", "batch_member", ["user_id", "role"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_batch_member_user_role", table_name="batch_member")
    op.drop_index("ix_batch_clip_open_slots", table_name="batch_clip")
    op.drop_index("ix_assignment_open_lease", table_name="assignment")
    op.drop_column("batch_clip", "position")
    op.drop_column("batch", "seed")
