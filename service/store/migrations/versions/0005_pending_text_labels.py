"""pending_labels: a label by text waits for the check it was meant for

A site labels a comment by its text (Akismet's submit-spam/submit-ham, or
/api/v1/feedback without a guid) right after checking it. When the check is
still in another worker's write-behind journal, no comment with that text is
recorded yet: the label is stored on a new copy of the comment (so it is never
lost), and ``copy_id`` here names that copy until the check lands; the check is
then labelled too (``Store._join_pending``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 11:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pending_labels", schema=None) as batch_op:
        batch_op.add_column(sa.Column("copy_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pending_labels", schema=None) as batch_op:
        batch_op.drop_column("copy_id")
