"""bucket sources: registered bucket prefixes whose objects become clips in place

Revision ID: 0017_bucket_sources
Revises: 0016_export_target
Create Date: 2026-12-06 04:01:28.748223
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_bucket_sources"
down_revision: str | None = "0016_export_target"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bucket_source",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=1100), nullable=False),
        sa.Column("endpoint_url", sa.String(length=500), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("access_key_id", sa.String(length=200), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "new",
                "queued",
                "syncing",
                "synced",
                "failed",
                name="syncstate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("object_count", sa.Integer(), nullable=False),
        sa.Column("last_key", sa.String(length=1024), nullable=False),
        sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
            name=op.f("fk_bucket_source_created_by_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_bucket_source_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bucket_source")),
        sa.UniqueConstraint(
            "project_id",
            "url",
            "endpoint_url",
            name=op.f("uq_bucket_source_project_id_url_endpoint_url"),
        ),
    )
    # SQLite rebuilds the table: keep its AUTOINCREMENT (ids never reused, revision 0013).
    with op.batch_alter_table("clip", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("source_id", sa.Integer(), nullable=True))
        batch.alter_column(
            "storage_key",
            existing_type=sa.VARCHAR(length=500),
            type_=sa.String(length=1024),
            existing_nullable=False,
        )
        batch.create_index(
            "ix_clip_source_id",
            ["source_id"],
            unique=False,
            postgresql_where=sa.text("source_id IS NOT NULL"),
            sqlite_where=sa.text("source_id IS NOT NULL"),
        )
        batch.create_foreign_key(
            batch.f("fk_clip_source_id_bucket_source"),
            "bucket_source",
            ["source_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    # SQLite rebuilds the table: keep its AUTOINCREMENT (ids never reused, revision 0013).
    with op.batch_alter_table("clip", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_constraint(batch.f("fk_clip_source_id_bucket_source"), type_="foreignkey")
        batch.drop_index("ix_clip_source_id")
        batch.alter_column(
            "storage_key",
            existing_type=sa.String(length=1024),
            type_=sa.VARCHAR(length=500),
            existing_nullable=False,
        )
        batch.drop_column("source_id")
    op.drop_table("bucket_source")
