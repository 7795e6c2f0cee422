"""comments: one index on (content_hash, site_id) instead of content_hash alone

A label by content looks the newest comment with the same text up within its
site. With only ``content_hash`` and ``site_id`` indexed apart, SQLite's planner
took the site's index and walked every comment of the site (33 ms at 316k rows
in a soak, and growing); the pair is one index lookup on both databases.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 21:50:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_comments_hash_site", "comments", ["content_hash", "site_id"])
    op.drop_index("ix_comments_content_hash", table_name="comments")


def downgrade() -> None:
    op.create_index("ix_comments_content_hash", "comments", ["content_hash"])
    op.drop_index("ix_comments_hash_site", table_name="comments")
