"""The database schema, shared by the scoring, Akismet, moderation, retraining and
toxicity features. Alembic migrations under ``service/store/migrations`` create it;
a test checks that the migrations and these tables agree.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _ts(name: str, nullable: bool = False, index: bool = False) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable, index=index)


sites = Table(
    "sites",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", String(500), nullable=False, unique=True),  # normalised, see store.site_key
    Column("name", String(200), nullable=False, default=""),
    # Per-site overrides: thresholds, Coral policy... (documented in docs/store.md)
    Column("settings", JSON, nullable=False, default=dict),
    _ts("created_at"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("site_id", ForeignKey("sites.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("key_hash", String(64), nullable=False, unique=True),  # sha256 hex of the key
    Column("key_hint", String(8), nullable=False),  # last 4 characters, for `keys list`
    _ts("created_at"),
    _ts("revoked_at", nullable=True),
    _ts("last_used_at", nullable=True),
)

comments = Table(
    "comments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("guid", String(36), nullable=False, unique=True),
    Column("site_id", ForeignKey("sites.id", ondelete="SET NULL"), nullable=True, index=True),
    Column("source", String(16), nullable=False),  # api, akismet, perspective, coral, import
    _ts("received_at", index=True),
    # The request as received; content is NULL once purged by retention.
    Column("content", Text, nullable=True),
    Column("content_hash", String(64), nullable=False),  # sha256 of dedup_key
    Column("author", String(2000), nullable=False, default=""),
    Column("author_email", String(2000), nullable=False, default="", index=True),
    Column("author_url", String(2000), nullable=False, default=""),
    Column("user_ip", String(64), nullable=False, default="", index=True),
    Column("user_agent", String(2000), nullable=False, default=""),
    Column("referrer", String(2000), nullable=False, default=""),
    Column("permalink", String(2000), nullable=False, default=""),
    Column("comment_type", String(64), nullable=False, default=""),
    Column("lang", String(64), nullable=False, default=""),
    Column("comment_created_at", String(64), nullable=False, default=""),
    Column("extra", JSON, nullable=False, default=dict),  # honeypot, user_role, Akismet extras
    # The verdict as answered.
    Column("spam_probability", Float, nullable=True),
    Column("verdict", String(8), nullable=True),  # ham, unsure, spam
    Column("discard", Boolean, nullable=False, default=False),
    Column("reasons", JSON, nullable=False, default=list),
    Column("model_version", String(80), nullable=False, default=""),
    Column("toxicity", JSON, nullable=True),  # {"TOXICITY": 0.93, ...} when scored
    Column("is_test", Boolean, nullable=False, default=False),
    _ts("purged_at", nullable=True),
    Index("ix_comments_site_received", "site_id", "received_at"),
    # A label by content, its unlabelled copies and the queue's grouping look a text
    # up within a site: with the text's hash alone indexed, SQLite walked every
    # comment of the site instead (33 ms at 316k rows, growing with the table).
    Index("ix_comments_hash_site", "content_hash", "site_id"),
)

labels = Table(
    "labels",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("comment_id", ForeignKey("comments.id", ondelete="CASCADE"), nullable=False),
    Column("task", String(16), nullable=False, default="spam"),  # spam | toxicity
    Column("label", String(16), nullable=False),  # spam/ham; toxic/ok
    Column("score", Float, nullable=True),  # suggested score (Perspective suggestscore)
    Column("attribute", String(32), nullable=True),  # TOXICITY, INSULT... for task=toxicity
    Column("source", String(16), nullable=False),  # moderator, site, import
    Column("actor", String(200), nullable=False, default=""),
    Column("is_test", Boolean, nullable=False, default=False),
    _ts("created_at"),
    Index("ix_labels_comment_task", "comment_id", "task", "id"),
)

# A label for a check not yet recorded (still in some worker's write-behind queue),
# joined to its comment when the check lands (store.join_pending): by guid, or, for
# a label by text, ``copy_id`` names the copy of the comment the label was stored
# on meanwhile and the check of the same text received before it is labelled too.
pending_labels = Table(
    "pending_labels",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("guid", String(36), nullable=False, index=True),  # "" for a label by text
    Column("copy_id", Integer, nullable=True),
    Column("site_id", Integer, nullable=True),  # the labelling site: must own the comment
    Column("label", String(16), nullable=False),
    Column("source", String(16), nullable=False),
    Column("actor", String(200), nullable=False, default=""),
    Column("is_test", Boolean, nullable=False, default=False),
    _ts("created_at"),
)

moderators = Table(
    "moderators",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),  # argon2id
    Column("is_admin", Boolean, nullable=False, default=False),
    _ts("created_at"),
    _ts("disabled_at", nullable=True),
    # A session carries the epoch it was opened at; logout, disabling the account
    # and a new password add one, so every older session stops working.
    Column("session_epoch", Integer, nullable=False, default=0, server_default="0"),
)

moderator_sites = Table(
    "moderator_sites",
    metadata,
    Column("moderator_id", ForeignKey("moderators.id", ondelete="CASCADE"), primary_key=True),
    Column("site_id", ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    _ts("at", index=True),
    Column("actor", String(200), nullable=False),  # cli, moderator:NAME, site:ID
    Column("action", String(64), nullable=False),
    Column("target", String(200), nullable=False, default=""),
    Column("detail", JSON, nullable=False, default=dict),
)

forgotten = Table(
    "forgotten",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(8), nullable=False),  # email | ip
    Column("value_hash", String(64), nullable=False),  # sha256 of the lower-cased value
    _ts("created_at"),
    UniqueConstraint("kind", "value_hash", name="uq_forgotten_kind_value"),
)

site_rules = Table(
    "site_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("site_id", ForeignKey("sites.id", ondelete="CASCADE"), nullable=True),  # NULL: all
    Column("list", String(8), nullable=False),  # allow | block
    Column("kind", String(8), nullable=False),  # email | domain | ip | phrase
    Column("value", String(500), nullable=False),
    _ts("created_at"),
    UniqueConstraint("site_id", "list", "kind", "value", name="uq_site_rules_entry"),
)

model_artifacts = Table(
    "model_artifacts",
    metadata,
    Column("version", String(80), primary_key=True),
    Column("family", String(16), nullable=False),  # spam | toxicity
    Column("sha256", String(64), nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("artifact", LargeBinary, nullable=True),  # the joblib bytes, for a shared registry
    _ts("created_at"),
)

model_events = Table(
    "model_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("family", String(16), nullable=False),
    Column("version", String(80), nullable=False),
    Column("previous", String(80), nullable=True),
    Column("action", String(16), nullable=False),  # promote, rollback, bootstrap, force
    Column("actor", String(200), nullable=False, default=""),
    _ts("at", index=True),
    Column("detail", JSON, nullable=True),  # a forced promotion: the gate's figures
)

shadow_results = Table(
    "shadow_results",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("comment_id", ForeignKey("comments.id", ondelete="CASCADE"), nullable=True),
    Column("serving_version", String(80), nullable=False),
    Column("candidate_version", String(80), nullable=False, index=True),
    Column("serving_probability", Float, nullable=False),
    Column("candidate_probability", Float, nullable=False),
    Column("serving_verdict", String(8), nullable=False),
    Column("candidate_verdict", String(8), nullable=False),
    _ts("at"),
)

integration_secrets = Table(
    "integration_secrets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("site_id", ForeignKey("sites.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # coral
    Column("tenant_id", String(200), nullable=False, default="", index=True),
    # HMAC signing secrets must be read back to verify signatures, so they are
    # stored as given; protect the database accordingly (docs/security.md).
    Column("secret", String(500), nullable=False),
    Column("policy", JSON, nullable=False, default=dict),
    _ts("created_at"),
    _ts("revoked_at", nullable=True),
)
