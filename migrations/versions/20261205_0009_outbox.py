"""outbox: task sends recorded before commit; heartbeat and fencing for jobs and exports

Revision ID: 0009_outbox
Revises: 0008_login_throttle
Create Date: 2026-12-05 20:25:09.940477
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009_outbox"
down_revision: str | None = "0008_login_throttle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_message",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("task_name", sa.String(length=120), nullable=False),
        sa.Column(
            "args",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("queue", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_message")),
    )
    op.create_index(
        op.f("ix_outbox_message_created_at"), "outbox_message", ["created_at"], unique=False
    )
    with op.batch_alter_table("export_snapshot") as batch:
        batch.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("export_snapshot") as batch:
        batch.alter_column("attempt", server_default=None)
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_column("heartbeat_at")
    with op.batch_alter_table("export_snapshot") as batch:
        batch.drop_column("attempt")
    op.drop_index(op.f("ix_outbox_message_created_at"), table_name="outbox_message")
    op.drop_table("outbox_message")
