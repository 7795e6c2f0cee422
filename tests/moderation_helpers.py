"""Helpers shared by the moderation tests: comments inserted straight into the store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update

from service.store import schema
from service.store.db import CheckRecord, Store, new_guid

PASSWORD = "correct horse battery"


def add_comment(
    store: Store,
    content: str,
    *,
    verdict: str = "unsure",
    probability: float | None = 0.5,
    site: str | None = "news.example",
    received_at: datetime | None = None,
    toxicity: dict[str, Any] | None = None,
    is_test: bool = False,
    reasons: list[dict[str, Any]] | None = None,
    **fields: str,
) -> str:
    """Record one checked comment and return its guid."""
    guid = new_guid()
    site_id = store.ensure_site(site) if site else None
    store.record_checks(
        [
            CheckRecord(
                guid=guid, site_id=site_id, source="api", content=content, fields=fields,
                extra={}, spam_probability=probability, verdict=verdict, discard=False,
                reasons=reasons or [],
                model_version="test", is_test=is_test,
            )
        ]
    )
    changes: dict[str, Any] = {}
    if received_at is not None:
        changes["received_at"] = received_at
    if toxicity is not None:
        changes["toxicity"] = toxicity
    if changes:
        with store.transaction() as c:
            q = update(schema.comments).where(schema.comments.c.guid == guid)
            c.execute(q.values(**changes))
    return guid


def comment_id(store: Store, guid: str) -> int:
    found = store.find_comment(guid=guid)
    assert found is not None
    return int(found["id"])
