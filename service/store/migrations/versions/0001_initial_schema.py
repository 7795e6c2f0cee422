"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 05:55:33.147305
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)

    op.create_table(
        "forgotten",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("value_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forgotten")),
        sa.UniqueConstraint("kind", "value_hash", name="uq_forgotten_kind_value"),
    )
    op.create_table(
        "model_artifacts",
        sa.Column("version", sa.String(length=80), nullable=False),
        sa.Column("family", sa.String(length=16), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("artifact", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_model_artifacts")),
    )
    op.create_table(
        "model_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("family", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=80), nullable=False),
        sa.Column("previous", sa.String(length=80), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_events")),
    )
    with op.batch_alter_table("model_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_model_events_at"), ["at"], unique=False)

    op.create_table(
        "moderators",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderators")),
        sa.UniqueConstraint("name", name=op.f("uq_moderators_name")),
    )
    op.create_table(
        "sites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
        sa.UniqueConstraint("url", name=op.f("uq_sites_url")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("key_hint", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_api_keys_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_site_id"), ["site_id"], unique=False)

    op.create_table(
        "comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guid", sa.String(length=36), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("author", sa.String(length=2000), nullable=False),
        sa.Column("author_email", sa.String(length=2000), nullable=False),
        sa.Column("author_url", sa.String(length=2000), nullable=False),
        sa.Column("user_ip", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=2000), nullable=False),
        sa.Column("referrer", sa.String(length=2000), nullable=False),
        sa.Column("permalink", sa.String(length=2000), nullable=False),
        sa.Column("comment_type", sa.String(length=64), nullable=False),
        sa.Column("lang", sa.String(length=64), nullable=False),
        sa.Column("comment_created_at", sa.String(length=64), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("spam_probability", sa.Float(), nullable=True),
        sa.Column("verdict", sa.String(length=8), nullable=True),
        sa.Column("discard", sa.Boolean(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(length=80), nullable=False),
        sa.Column("toxicity", sa.JSON(), nullable=True),
        sa.Column("is_test", sa.Boolean(), nullable=False),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_comments_site_id_sites"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
        sa.UniqueConstraint("guid", name=op.f("uq_comments_guid")),
    )
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_comments_author_email"), ["author_email"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_comments_content_hash"), ["content_hash"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_comments_received_at"), ["received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_comments_site_id"), ["site_id"], unique=False)
        batch_op.create_index("ix_comments_site_received", ["site_id", "received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_comments_user_ip"), ["user_ip"], unique=False)

    op.create_table(
        "integration_secrets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("tenant_id", sa.String(length=200), nullable=False),
        sa.Column("secret", sa.String(length=500), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_integration_secrets_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_secrets")),
    )
    with op.batch_alter_table("integration_secrets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_integration_secrets_site_id"), ["site_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_integration_secrets_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "moderator_sites",
        sa.Column("moderator_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["moderator_id"],
            ["moderators.id"],
            name=op.f("fk_moderator_sites_moderator_id_moderators"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_moderator_sites_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("moderator_id", "site_id", name=op.f("pk_moderator_sites")),
    )
    op.create_table(
        "site_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("list", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_site_rules_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_rules")),
        sa.UniqueConstraint("site_id", "list", "kind", "value", name="uq_site_rules_entry"),
    )
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("comment_id", sa.Integer(), nullable=False),
        sa.Column("task", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("attribute", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("is_test", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["comment_id"],
            ["comments.id"],
            name=op.f("fk_labels_comment_id_comments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
    )
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.create_index("ix_labels_comment_task", ["comment_id", "task", "id"], unique=False)

    op.create_table(
        "shadow_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("comment_id", sa.Integer(), nullable=True),
        sa.Column("serving_version", sa.String(length=80), nullable=False),
        sa.Column("candidate_version", sa.String(length=80), nullable=False),
        sa.Column("serving_probability", sa.Float(), nullable=False),
        sa.Column("candidate_probability", sa.Float(), nullable=False),
        sa.Column("serving_verdict", sa.String(length=8), nullable=False),
        sa.Column("candidate_verdict", sa.String(length=8), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["comment_id"],
            ["comments.id"],
            name=op.f("fk_shadow_results_comment_id_comments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shadow_results")),
    )
    with op.batch_alter_table("shadow_results", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_shadow_results_candidate_version"), ["candidate_version"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("shadow_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shadow_results_candidate_version"))

    op.drop_table("shadow_results")
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.drop_index("ix_labels_comment_task")

    op.drop_table("labels")
    op.drop_table("site_rules")
    op.drop_table("moderator_sites")
    with op.batch_alter_table("integration_secrets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_integration_secrets_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_integration_secrets_site_id"))

    op.drop_table("integration_secrets")
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_comments_user_ip"))
        batch_op.drop_index("ix_comments_site_received")
        batch_op.drop_index(batch_op.f("ix_comments_site_id"))
        batch_op.drop_index(batch_op.f("ix_comments_received_at"))
        batch_op.drop_index(batch_op.f("ix_comments_content_hash"))
        batch_op.drop_index(batch_op.f("ix_comments_author_email"))

    op.drop_table("comments")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_site_id"))

    op.drop_table("api_keys")
    op.drop_table("sites")
    op.drop_table("moderators")
    with op.batch_alter_table("model_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_events_at"))

    op.drop_table("model_events")
    op.drop_table("model_artifacts")
    op.drop_table("forgotten")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_at"))

    op.drop_table("audit_log")
