"""Stored labels as training examples: newest wins, test traffic, purged bodies
and forgotten commenters left out (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, update

from service.store import schema as t
from service.store.db import Store, value_hash
from training.labels import count_labels, iter_label_chunks, read_labels


def label(store: Store, text: str, value: str, **kw: object) -> int:
    fields = kw.pop("fields", None)
    comment_id, _ = store.feedback(
        label=value, source=str(kw.pop("source", "moderator")), actor="t",
        site_id=kw.pop("site_id", None), content=text, fields=fields,  # type: ignore[arg-type]
        is_test=bool(kw.pop("is_test", False)),
    )
    return comment_id


def test_newest_label_wins_and_exclusions_apply(store: Store) -> None:
    site = store.ensure_site("https://news.example.org")
    relabelled = label(store, "buy my stuff", "ham", site_id=site)
    label(store, "buy my stuff", "spam", site_id=site, source="site")  # same comment, newer
    label(store, "a fine comment", "ham", site_id=site)
    label(store, "test traffic", "spam", is_test=True)
    purged = label(store, "purged body", "spam")
    with store.transaction() as c:
        c.execute(update(t.comments).where(t.comments.c.id == purged)
                  .values(content=None, purged_at=datetime.now(UTC)))
    label(store, "from a forgotten person", "spam", fields={"author_email": "Gone@Example.com"})
    label(store, "from a forgotten ip", "spam", fields={"user_ip": "10.0.0.9"})
    with store.transaction() as c:
        c.execute(insert(t.forgotten), [
            {"kind": "email", "value_hash": value_hash("gone@example.com"),
             "created_at": datetime.now(UTC)},
            {"kind": "ip", "value_hash": value_hash("10.0.0.9"), "created_at": datetime.now(UTC)},
        ])

    got = {s.example.comment.content: s for s in read_labels(store)}
    assert set(got) == {"buy my stuff", "a fine comment"}
    newest = got["buy my stuff"]
    assert newest.comment_id == relabelled
    assert newest.example.label == 1 and newest.example.source == "labels:site"
    assert newest.site == "news.example.org" and newest.example.group == "news.example.org"
    assert got["a fine comment"].example.label == 0


def test_a_test_label_never_counts_as_newest(store: Store) -> None:
    cid = label(store, "real comment", "spam")
    store.add_label(cid, "ham", source="moderator", is_test=True)
    [only] = read_labels(store)
    assert only.example.label == 1


def test_fields_travel_with_the_example(store: Store) -> None:
    label(store, "hello", "ham", fields={"author": "Ann", "author_url": "http://ann.example",
                                         "type": "reply"})
    [s] = read_labels(store)
    c = s.example.comment
    assert (c.author, c.author_url, c.type) == ("Ann", "http://ann.example", "reply")


def test_chunks_cover_every_label_once(store: Store) -> None:
    for i in range(7):
        label(store, f"comment number {i}", "spam" if i % 2 else "ham")
    chunks = list(iter_label_chunks(store, chunk=3))
    assert [len(c) for c in chunks] == [3, 3, 1]
    flat = [s.example.comment.content for c in chunks for s in c]
    assert flat == [s.example.comment.content for s in read_labels(store)]
    assert count_labels(store) == 7


def test_no_labels(store: Store) -> None:
    assert read_labels(store) == [] and count_labels(store) == 0
