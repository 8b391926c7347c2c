"""clip external ids: a partial index, without the rows that have none

Bucket listings and manifests without external ids create clips whose external_id is NULL:
the filter looks up given ids only, so those rows need no entry (one index insert fewer per
bulk record).

Revision ID: 0018_external_id_partial
Revises: 0017_bucket_sources
Create Date: 2026-12-06 07:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_external_id_partial"
down_revision: str | None = "0017_bucket_sources"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HAS_ID = sa.text("external_id IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_clip_external_id", table_name="clip")
    op.create_index(
        "ix_clip_external_id",
        "clip",
        ["external_id"],
        postgresql_where=HAS_ID,
        sqlite_where=HAS_ID,
    )


def downgrade() -> None:
    op.drop_index("ix_clip_external_id", table_name="clip")
    op.create_index("ix_clip_external_id", "clip", ["external_id"])
