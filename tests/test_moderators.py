"""Moderator accounts: argon2id hashes, verification, disabling, site assignment."""

from __future__ import annotations

import pytest
from moderation_helpers import PASSWORD

from service.config import load_settings
from service.errors import ConfigurationError, Conflict, NotFound, ValidationError
from service.moderation import moderators as mods
from service.store.db import Store

FAST = mods.FAST


def test_create_stores_an_argon2id_hash_and_verifies(store: Store) -> None:
    with pytest.raises(NotFound, match="known sites"):
        mods.create(store, "alice", PASSWORD, sites=["news.example"], hasher=FAST)
    store.ensure_site("news.example")
    mod = mods.create(store, "alice", PASSWORD, sites=["news.example"], hasher=FAST)
    assert not mod.is_admin and len(mod.site_ids) == 1
    with store.engine.connect() as c:
        stored = c.exec_driver_sql("SELECT password_hash FROM moderators").scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert mods.verify(store, "alice", PASSWORD, hasher=FAST) == mod
    assert store.audit_entries()[0]["action"] == "moderator.create"


@pytest.mark.parametrize(
    ("name", "password"),
    [("alice", "wrong password!"), ("nobody", PASSWORD), ("", PASSWORD), ("alice", "x" * 5000)],
)
def test_verify_refuses_wrong_credentials(store: Store, name: str, password: str) -> None:
    mods.create(store, "alice", PASSWORD, hasher=FAST)
    assert mods.verify(store, name, password, hasher=FAST) is None


def test_disabled_moderator_cannot_log_in_and_can_be_enabled(store: Store) -> None:
    mod = mods.create(store, "alice", PASSWORD, hasher=FAST)
    mods.set_disabled(store, "alice")
    assert mods.verify(store, "alice", PASSWORD, hasher=FAST) is None
    assert mods.get(store, mod.id) is None
    mods.set_disabled(store, "alice", False)
    assert mods.get(store, mod.id) is not None
    with pytest.raises(NotFound):
        mods.set_disabled(store, "bob")


def test_duplicate_names_conflict(store: Store) -> None:
    mods.create(store, "alice", PASSWORD, hasher=FAST)
    with pytest.raises(Conflict):
        mods.create(store, "alice", PASSWORD, hasher=FAST)


@pytest.mark.parametrize(
    ("name", "password"),
    [("", PASSWORD), ("-lead", PASSWORD), ("<script>", PASSWORD), ("a" * 101, PASSWORD),
     ("alice", "short"), ("alice", "x" * 2000)],
)
def test_create_refuses_bad_names_and_passwords(store: Store, name: str, password: str) -> None:
    with pytest.raises(ValidationError):
        mods.create(store, name, password, hasher=FAST)
    assert mods.list_all(store) == []


def test_site_assignment_and_admin_scope(store: Store) -> None:
    a = store.ensure_site("a.example")
    b = store.ensure_site("b.example")
    mod = mods.create(store, "alice", PASSWORD, sites=["a.example"], hasher=FAST)
    assert mod.can_see(a) and not mod.can_see(b) and not mod.can_see(None)
    mod = mods.assign(store, "alice", add=["b.example"], remove=["a.example"])
    assert mod.site_ids == {b}
    mod = mods.assign(store, "alice", admin=True)
    assert mod.is_admin and mod.can_see(a) and mod.can_see(None)
    assert mod.visible_site_ids() is None
    listed = mods.list_all(store)
    assert listed[0]["sites"] == ["b.example"] and listed[0]["is_admin"]
    with pytest.raises(NotFound):
        mods.assign(store, "bob", add=["a.example"])


def test_weaker_hash_is_upgraded_on_login(store: Store) -> None:
    mods.create(store, "alice", PASSWORD, hasher=FAST)
    assert mods.verify(store, "alice", PASSWORD, hasher=mods.STANDARD) is not None
    with store.engine.connect() as c:
        stored = c.exec_driver_sql("SELECT password_hash FROM moderators").scalar_one()
    assert not mods.STANDARD.check_needs_rehash(stored)


def test_fast_hashing_is_refused_in_production() -> None:
    with pytest.raises(ConfigurationError, match="PASSWORD_HASH_COST"):
        load_settings(
            {"env": "production", "secret_key": "s", "database_url": "sqlite://",
             "password_hash_cost": "fast"},
            environ={},
        )
