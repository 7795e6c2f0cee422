"""The storage layer on SQLite and PostgreSQL: sites, keys, checks, labels, audit, schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from moderation_helpers import add_comment, comment_id
from procs import app_process_modules

from service.errors import NotFound, ValidationError
from service.store import migrate, schema
from service.store.db import Store, engine_for, site_key


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.News.example/", "news.example"),
        ("news.example/blog/", "news.example/blog"),
        ("http://news.example:8080/x", "news.example:8080/x"),
        ("https://news.example:443", "news.example"),
        ("news.example.org", "news.example.org"),
        ("https://news.example.org/", "news.example.org"),
        ("http://localhost:8000", "localhost:8000"),
        ("http://127.0.0.1/", "127.0.0.1"),
    ],
)
def test_site_key_normalises(url: str, expected: str) -> None:
    assert site_key(url) == expected


@pytest.mark.parametrize(
    "bad", ["", "   ", "http://", "notaurl", "https://notaurl/", "a..b", "-x.example"]
)
def test_site_key_refuses_non_urls(bad: str) -> None:
    with pytest.raises(ValidationError):
        site_key(bad)


def test_ensure_site_is_idempotent(store: Store) -> None:
    a = store.ensure_site("https://news.example/")
    b = store.ensure_site("news.example")
    assert a == b
    assert [s["url"] for s in store.sites()] == ["news.example"]
    assert store.site(a)["url"] == "news.example"
    with pytest.raises(NotFound):
        store.site(a + 100)


def test_site_id_takes_every_spelling_and_lists_known_sites(store: Store) -> None:
    site = store.ensure_site("https://news.example.org")
    for spelling in ("news.example.org", "https://news.example.org/", "http://WWW.news.example.org"):
        assert store.site_id(spelling) == site
    with pytest.raises(NotFound, match=r"no site 'other.example' \(known sites: news.exa"):
        store.site_id("https://other.example/")
    with pytest.raises(ValidationError):
        store.site_id("notaurl")


def test_site_settings_merge_and_drop_nulls(store: Store) -> None:
    site = store.ensure_site("news.example")
    store.update_site_settings(site, {"spam": 0.9, "unsure": 0.4})
    assert store.update_site_settings(site, {"unsure": None}) == {"spam": 0.9}


def test_keys_are_hashed_found_case_insensitively_and_revoked(store: Store) -> None:
    key, site = store.create_key("news.example")
    assert len(key) == 12 and key == key.lower()
    info = store.find_key(key.upper())
    assert info is not None and info.site_id == site and info.site_url == "news.example"
    assert store.find_key("") is None and store.find_key("x" * 100) is None
    listed = store.keys()
    assert listed[0]["key_hint"] == key[-4:] and key not in str(listed)
    store.revoke_key(key)
    assert store.find_key(key) is None
    with pytest.raises(NotFound):
        store.revoke_key("nosuchkey123")
    actions = [e["action"] for e in store.audit_entries()]
    assert actions[:2] == ["key.revoke", "key.create"]


def test_record_checks_keeps_every_field(store: Store) -> None:
    reason = {"kind": "word", "description": "word 'hello'", "direction": "spam", "weight": 1.0}
    guid = add_comment(store, "hello <b>world</b>", author="Ann", author_email="a@x.org",
                       user_ip="10.0.0.1", verdict="spam", probability=0.91, reasons=[reason])
    row = store.find_comment(guid=guid)
    assert row is not None
    assert row["content"] == "hello <b>world</b>"
    assert (row["author"], row["author_email"], row["user_ip"]) == ("Ann", "a@x.org", "10.0.0.1")
    assert row["verdict"] == "spam" and row["spam_probability"] == pytest.approx(0.91)
    assert row["reasons"][0]["direction"] == "spam"
    assert store.comment(row["id"])["guid"] == guid
    with pytest.raises(NotFound):
        store.comment(row["id"] + 1000)


def test_find_comment_by_normalised_content(store: Store) -> None:
    add_comment(store, "Buy   CHEAP pills")
    found = store.find_comment(content="buy cheap pills")
    assert found is not None and found["content"] == "Buy   CHEAP pills"
    assert store.find_comment() is None


def test_feedback_by_guid_by_content_and_new(store: Store) -> None:
    guid = add_comment(store, "first comment")
    cid, _ = store.feedback(label="spam", source="site", actor="site:1", site_id=None, guid=guid)
    assert cid == comment_id(store, guid)
    cid2, _ = store.feedback(label="ham", source="site", actor="site:1", site_id=None,
                             content="first comment")
    assert cid2 == cid
    cid3, _ = store.feedback(label="spam", source="site", actor="s", site_id=None,
                             content="never seen", fields={"author": "Bo"})
    assert cid3 != cid and store.comment(cid3)["author"] == "Bo"
    with pytest.raises(NotFound):
        store.feedback(label="spam", source="site", actor="s", site_id=None, guid="missing")


def test_label_history_keeps_everything_and_latest_wins(store: Store) -> None:
    cid = comment_id(store, add_comment(store, "text"))
    for label, source in [("spam", "site"), ("ham", "moderator"), ("spam", "import")]:
        store.add_label(cid, label, source=source, actor="who")
    history = store.label_history(cid)
    assert [(h["label"], h["source"]) for h in history] == [
        ("spam", "site"), ("ham", "moderator"), ("spam", "import")
    ]
    assert store.latest_label(cid) == "spam"
    assert store.latest_label(cid, task="toxicity") is None
    store.add_label(cid, "toxic", source="moderator", task="toxicity", attribute="INSULT")
    assert store.latest_label(cid, task="toxicity") == "toxic"


@pytest.mark.parametrize(
    ("label", "source", "task"),
    [("maybe", "site", "spam"), ("spam", "robot", "spam"), ("spam", "site", "toxicity")],
)
def test_add_label_refuses_unknown_values(store: Store, label: str, source: str, task: str) -> None:
    cid = comment_id(store, add_comment(store, "text"))
    with pytest.raises(ValidationError):
        store.add_label(cid, label, source=source, task=task)
    assert store.label_history(cid, task) == []


def test_audit_log_newest_first(store: Store) -> None:
    store.audit("cli", "one", "a", {"n": 1})
    store.audit("cli", "two")
    entries = store.audit_entries(limit=5)
    assert [(e["action"], e["detail"]) for e in entries] == [("two", {}), ("one", {"n": 1})]


def test_is_forgotten_without_values_is_false(store: Store) -> None:
    assert store.is_forgotten() is False
    assert store.is_forgotten(email="nobody@example.org") is False


def test_migrations_and_schema_agree(store: Store) -> None:
    """Alembic's autogenerate finds nothing to change between head and schema.py."""
    assert migrate.current_revision(store.engine) == migrate.head_revision()
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, schema.metadata)
    assert diff == []


def test_head_constant_is_alembics_head(store: Store) -> None:
    assert migrate.head_revision() == migrate.HEAD
    assert migrate.stored_revision(store.engine) == migrate.HEAD
    migrate.upgrade(store.engine)  # current: recognised without Alembic, nothing changes
    assert migrate.current_revision(store.engine) == migrate.HEAD


def test_a_new_database_has_no_stored_revision(tmp_path: Path) -> None:
    engine = engine_for(f"sqlite:///{tmp_path / 'new.sqlite3'}")
    assert migrate.stored_revision(engine) is None
    engine.dispose()


def test_a_serving_process_does_not_import_alembic(tmp_path: Path, model_dir: Path) -> None:
    """The memory a worker carries: with the schema current, Alembic is never loaded."""
    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    engine = engine_for(url)
    migrate.upgrade(engine)
    engine.dispose()
    loaded = app_process_modules(model_dir, tmp_path / "var", url)
    assert "service" in loaded and "alembic" not in loaded


def test_a_text_is_found_within_its_site_by_one_index(tmp_path: Path) -> None:
    """A label by content (find_comment), the queue's copies and the label import
    look a text up within a site: one index on both columns serves it. With the two
    indexed apart, SQLite walked every comment of the site (33 ms at 316k rows)."""
    engine = engine_for(f"sqlite:///{tmp_path / 'plan.sqlite3'}")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT id FROM comments WHERE content_hash = ? AND site_id = ? "
            "ORDER BY id DESC LIMIT 1", ("x", 1),
        ).all()
    assert any("ix_comments_hash_site" in str(row) for row in plan), plan
    engine.dispose()


def test_checks_are_stored_byte_for_byte_as_sqlalchemy_stores_them(store: Store) -> None:
    """record_checks sends its rows to the driver with the columns' own bind
    processors: the database holds exactly what Connection.execute would store."""
    from datetime import UTC, datetime

    from sqlalchemy import String, Text, cast, insert, select, type_coerce

    from service.store.db import CHECK_COLUMNS, CheckRecord, content_hash
    from service.store.schema import comments

    received = datetime(2026, 11, 27, 21, 0, 1, 123456, tzinfo=UTC)
    fields = {"author": "Zoë " + "x" * 2100, "author_email": "z@example.org",
              "user_ip": "203.0.113.9", "type": "comment", "created_at": "2026-11-27T20:59:00Z"}
    rec = CheckRecord(
        guid="g-fast", site_id=None, source="akismet", content="Grüße \u2028 <b>hi</b> \U0001f600",
        fields=fields, extra={"honeypot": "", "blog_lang": "de", "n": 3, "nested": {"a": [1.5]}},
        spam_probability=0.25, verdict="unsure", discard=False,
        reasons=[{"kind": "word", "description": "the word 'hi'", "direction": "ham",
                  "weight": -0.125}],
        model_version="spam-x", is_test=True, toxicity=None, received_at=received,
    )
    store.record_checks([rec])
    values = {
        "guid": "g-core", "site_id": None, "source": rec.source, "received_at": received,
        "content": rec.content, "content_hash": content_hash(rec.content), "extra": rec.extra,
        "spam_probability": rec.spam_probability, "verdict": rec.verdict,
        "discard": rec.discard, "reasons": rec.reasons, "model_version": rec.model_version,
        "is_test": rec.is_test, "toxicity": rec.toxicity,
        "author": fields["author"][:2000], "author_email": fields["author_email"],
        "author_url": "", "user_ip": fields["user_ip"], "user_agent": "", "referrer": "",
        "permalink": "", "comment_type": "comment", "lang": "",
        "comment_created_at": fields["created_at"],
    }
    assert set(values) == set(CHECK_COLUMNS)
    with store.transaction() as c:
        c.execute(insert(comments).values(**values))
        # As stored: SQLite's values unconverted, PostgreSQL's as text.
        pg = store.engine.dialect.name == "postgresql"
        raw = c.execute(select(*[
            cast(col, Text) if pg else type_coerce(col, String)
            for col in comments.columns if col.name not in ("id", "guid")
        ]).order_by(comments.c.id)).all()
    fast, core = raw
    assert fast == core


def test_a_forked_worker_never_issues_its_parents_guids() -> None:
    """Guids take their random bytes from a buffer of os.urandom; a forked child
    (a gunicorn worker) starts with none of the parent's buffer."""
    import os

    from service.store.db import guid_issued, signed_guid

    signed_guid("s")  # the parent's buffer is filled
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next guid, to the parent, then out
        os.write(write, signed_guid("s").encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    os.close(read)
    os.close(write)
    parents = {signed_guid("s") for _ in range(500)}
    assert child not in parents and len(parents) == 500
    assert guid_issued(child, "s")


def test_a_guid_tag_is_the_plain_hmac_of_its_random_bytes() -> None:
    """The keyed HMAC is reused (copied) per guid; the tag stays HMAC-SHA256 of
    "commentmod-guid:" + the random bytes, so guids issued before still verify."""
    import hashlib
    import hmac

    from service.store.db import _guid_tag

    for secret, raw in (("s", b"0123456789"), ("another secret", bytes(range(10)))):
        expected = hmac.new(secret.encode(), b"commentmod-guid:" + raw, hashlib.sha256).digest()
        assert _guid_tag(secret, raw) == expected[:6]


def test_json_columns_take_what_orjson_refuses(store: Store) -> None:
    """JSON columns are serialised by orjson; what it refuses (a lone surrogate from
    a form field, a key that is not a string) goes through the standard library."""
    import json

    from service.store.db import CheckRecord, json_dumps

    odd = {"field": "broken \ud800 half", 3: "int key"}
    assert json.loads(json_dumps(odd)) == json.loads(json.dumps(odd))
    assert json_dumps({"a": [1, 2.5, "é"]}) == '{"a":[1,2.5,"é"]}'
    store.record_checks([CheckRecord(
        guid="g-odd", site_id=None, source="akismet", content="hello",
        fields={}, extra={"field": "broken \ud800 half"}, spam_probability=0.1,
        verdict="ham", discard=False, reasons=[], model_version="v")])
    assert store.find_comment(guid="g-odd")["extra"] == {"field": "broken \ud800 half"}
