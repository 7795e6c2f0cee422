"""pending labels (a label by guid for a check still queued for write-behind);
model_events.detail (a forced promotion records the gate's figures)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 16:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guid", sa.String(length=36), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("is_test", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_labels")),
    )
    with op.batch_alter_table("pending_labels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pending_labels_guid"), ["guid"], unique=False)


    with op.batch_alter_table("model_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("detail", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_events", schema=None) as batch_op:
        batch_op.drop_column("detail")
    with op.batch_alter_table("pending_labels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_labels_guid"))
    op.drop_table("pending_labels")
