"""scale indexes: the review queue in submission order, assignments by annotation

Revision ID: 0004_scale_indexes
Revises: 0003_agreement_majority
Create Date: 2026-11-27 13:45:47.603817
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_scale_indexes"
down_revision: str | None = "0003_agreement_majority"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUBMITTED = sa.text("status = 'submitted'")


def upgrade() -> None:
    op.create_index(
        "ix_annotation_submitted_queue",
        "annotation",
        ["submitted_at", "id"],
        unique=False,
        postgresql_where=SUBMITTED,
        sqlite_where=SUBMITTED,
    )
    op.create_index(
        op.f("ix_assignment_annotation_id"), "assignment", ["annotation_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_assignment_annotation_id"), table_name="assignment")
    op.drop_index("ix_annotation_submitted_queue", table_name="annotation")
