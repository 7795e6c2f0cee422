"""Retention purge and the right to be forgotten, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from moderation_helpers import add_comment, comment_id

from service.errors import ValidationError
from service.store import retention
from service.store.db import Store, now


def test_purge_empties_old_unlabelled_bodies_only(store: Store) -> None:
    old = now() - timedelta(days=100)
    stale = add_comment(store, "old and unlabelled", received_at=old)
    kept = add_comment(store, "old but labelled", received_at=old)
    fresh = add_comment(store, "recent")
    store.add_label(comment_id(store, kept), "spam", source="moderator", actor="alice")
    assert retention.purge(store, 90, dry_run=True).purged == 1
    assert store.find_comment(guid=stale)["content"] == "old and unlabelled"  # type: ignore[index]
    result = retention.purge(store, 90)
    assert result.purged == 1
    row = store.find_comment(guid=stale)
    assert row is not None and row["content"] is None and row["purged_at"] is not None
    assert row["verdict"] == "unsure"  # the verdict and metadata stay for the stats
    assert store.find_comment(guid=kept)["content"] == "old but labelled"  # type: ignore[index]
    assert store.find_comment(guid=fresh)["content"] == "recent"  # type: ignore[index]
    assert retention.purge(store, 90).purged == 0  # idempotent
    audit = store.audit_entries()
    assert audit[1]["action"] == "privacy.purge" and audit[1]["detail"]["purged"] == 1


def test_purge_refuses_nonsense_age(store: Store) -> None:
    with pytest.raises(ValidationError):
        retention.purge(store, 0)


def test_forget_by_email_deletes_comments_labels_and_remembers(store: Store) -> None:
    gone = add_comment(store, "mine", author_email="Ann@Example.org ")
    also = add_comment(store, "mine too", author_email="ann@example.org")
    other = add_comment(store, "someone else", author_email="bob@example.org")
    store.add_label(comment_id(store, gone), "spam", source="moderator")
    result = retention.forget(store, email="ANN@example.org")
    assert (result.comments, result.labels) == (2, 1)
    assert store.find_comment(guid=gone) is None and store.find_comment(guid=also) is None
    assert store.find_comment(guid=other) is not None
    assert store.is_forgotten(email="ann@example.org")
    entry = store.audit_entries()[0]
    assert entry["action"] == "privacy.forget" and "ann@" not in str(entry).lower()
    again = retention.forget(store, email="ann@example.org")  # no duplicate row, no error
    assert again.comments == 0


def test_forget_by_ip(store: Store) -> None:
    gone = add_comment(store, "from the ip", user_ip="203.0.113.9")
    kept = add_comment(store, "other ip", user_ip="203.0.113.10")
    assert retention.forget(store, ip="203.0.113.9").comments == 1
    assert store.find_comment(guid=gone) is None and store.find_comment(guid=kept) is not None
    assert store.is_forgotten(ip="203.0.113.9") and not store.is_forgotten(ip="203.0.113.10")


@pytest.mark.parametrize(("email", "ip"), [("", ""), ("not-an-address", ""), ("", "1" * 80)])
def test_forget_refuses_bad_input_and_deletes_nothing(store: Store, email: str, ip: str) -> None:
    guid = add_comment(store, "stays", author_email="not-an-address")
    with pytest.raises(ValidationError):
        retention.forget(store, email=email, ip=ip)
    assert store.find_comment(guid=guid) is not None
