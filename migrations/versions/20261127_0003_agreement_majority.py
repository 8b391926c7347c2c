"""agreement: a per-project switch for 2-of-3 majority vote on categorical labels

Revision ID: 0003_agreement_majority
Revises: 0002_batch_queue
Create Date: 2026-11-27 13:03:10.654715
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_agreement_majority"
down_revision: str | None = "0002_batch_queue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "project",
        sa.Column("majority_vote", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("project", "majority_vote")
