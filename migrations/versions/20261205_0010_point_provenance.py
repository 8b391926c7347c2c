"""point provenance: a project's keypoint confidence floor and whether approved model points count

Points gain a third source (accepted) inside the stored byte they already have, so no data
changes: 0 stays model, 1 stays person.

Revision ID: 0010_point_provenance
Revises: 0009_outbox
Create Date: 2026-12-05 22:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_point_provenance"
down_revision: str | None = "0009_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("project") as batch:
        batch.add_column(
            sa.Column(
                "keypoint_confidence_floor", sa.Double(), server_default="0.3", nullable=False
            )
        )
        batch.add_column(
            sa.Column(
                "approved_model_points_count",
                sa.Boolean(),
                server_default=sa.text("false"),
                nullable=False,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("project") as batch:
        batch.drop_column("approved_model_points_count")
        batch.drop_column("keypoint_confidence_floor")
