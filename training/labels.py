"""Training examples from the labels moderators and sites stored.

For every comment, the newest ``spam``-task label wins. Left out, so that a
model never learns from them:

- labels marked ``is_test`` (they do not count at all, not even as "newest"),
  and comments marked ``is_test``;
- comments whose body was purged (``content`` NULL or ``purged_at`` set);
- comments of forgotten commenters: their e-mail address or IP, lower-cased,
  hashes (sha256) to a row of ``forgotten``.

Rows are read in chunks by label id, so a label set larger than memory can be
streamed into out-of-core training.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, false, func, select

from service.store import schema as t
from service.store.db import COMMENT_COLUMNS, Store, value_hash
from training.datasets import Example
from training.features import Comment

NO_SITE = "(no site)"


@dataclass(frozen=True)
class StoredLabel:
    """One stored label as a training example, with what the gate needs to split by."""

    example: Example
    comment_id: int
    label_id: int
    site: str
    labelled_at: datetime | None


def _forgotten(conn: Connection) -> set[tuple[str, str]]:
    rows = conn.execute(select(t.forgotten.c.kind, t.forgotten.c.value_hash))
    return {(str(r.kind), str(r.value_hash)) for r in rows}


def _latest_labels_query(after: int, limit: int) -> Select[Any]:
    lab, com = t.labels, t.comments
    latest = (
        select(func.max(lab.c.id).label("id"))
        .where(lab.c.task == "spam", lab.c.is_test == false())
        .group_by(lab.c.comment_id)
        .subquery()
    )
    columns = [com.c[col] for col in COMMENT_COLUMNS.values()]
    return (
        select(
            lab.c.id.label("label_id"),
            lab.c.label,
            lab.c.source,
            lab.c.created_at,
            com.c.id.label("comment_id"),
            com.c.content,
            t.sites.c.url.label("site"),
            *columns,
        )
        .join(latest, latest.c.id == lab.c.id)
        .join(com, com.c.id == lab.c.comment_id)
        .outerjoin(t.sites, t.sites.c.id == com.c.site_id)
        .where(
            com.c.is_test == false(),
            com.c.content.is_not(None),
            com.c.purged_at.is_(None),
            lab.c.id > after,
        )
        .order_by(lab.c.id)
        .limit(limit)
    )


def iter_label_chunks(store: Store, chunk: int = 5_000) -> Iterator[list[StoredLabel]]:
    """Stored labels usable for training, ``chunk`` rows at a time, oldest label first."""
    forgotten = store.read(_forgotten)
    fields = {col: name for name, col in COMMENT_COLUMNS.items()}
    after = 0
    while True:
        query = _latest_labels_query(after, chunk)

        def run(c: Connection, q: Select[Any] = query) -> list[Any]:
            return list(c.execute(q))

        rows = store.read(run)
        if not rows:
            return
        after = int(rows[-1].label_id)
        out = []
        for r in rows:
            m = r._mapping
            if ("email", value_hash(m["author_email"] or "")) in forgotten and m["author_email"]:
                continue
            if ("ip", value_hash(m["user_ip"] or "")) in forgotten and m["user_ip"]:
                continue
            if not str(m["content"]).strip():
                continue
            values: dict[str, Any] = {fields[col]: str(m[col] or "") for col in fields}
            comment = Comment(content=str(m["content"]), **values)
            site = str(m["site"] or NO_SITE)
            out.append(
                StoredLabel(
                    Example(comment, 1 if m["label"] == "spam" else 0, f"labels:{m['source']}",
                            group=site),
                    int(m["comment_id"]),
                    int(m["label_id"]),
                    site,
                    m["created_at"],
                )
            )
        yield out


def read_labels(store: Store) -> list[StoredLabel]:
    return [s for chunk in iter_label_chunks(store) for s in chunk]


def count_labels(store: Store) -> int:
    """An upper bound of :func:`read_labels`' length, cheap enough to choose a trainer by."""
    q = (
        select(func.count(func.distinct(t.labels.c.comment_id)))
        .where(t.labels.c.task == "spam", t.labels.c.is_test == false())
    )
    return int(store.read(lambda c: c.execute(q).scalar()) or 0)
