"""Retention and the right to be forgotten.

``purge`` empties the bodies of unlabelled comments older than the retention
age (labelled ones are training data and stay). ``forget`` deletes every
comment (and its labels) of one commenter and records the sha256 of the address
in ``forgotten`` so later training runs and imports leave them out. Both are
one transaction with their audit entry; the audit keeps counts and hashes,
never the address itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, func, insert, select, update
from sqlalchemy.sql import ColumnElement

from service.errors import ValidationError
from service.store import schema as t
from service.store.db import Store, now, value_hash


@dataclass(frozen=True)
class PurgeResult:
    purged: int
    cutoff: datetime


def purge(
    store: Store,
    days: int,
    *,
    actor: str = "cli",
    dry_run: bool = False,
    at: datetime | None = None,
) -> PurgeResult:
    """Set content to NULL (and purged_at) on unlabelled comments received before the cutoff."""
    if days <= 0:
        raise ValidationError("retention days must be positive", field="days")
    when = at or now()
    cutoff = when - timedelta(days=days)
    cond = (
        (t.comments.c.received_at < cutoff)
        & t.comments.c.content.is_not(None)
        & ~exists().where(t.labels.c.comment_id == t.comments.c.id)
    )
    with store.transaction() as c:
        if dry_run:
            n = int(
                c.execute(select(func.count()).select_from(t.comments).where(cond)).scalar_one()
            )
        else:
            n = c.execute(
                update(t.comments).where(cond).values(content=None, purged_at=when)
            ).rowcount
            store._audit(
                c,
                actor,
                "privacy.purge",
                f"{n} comments",
                {"days": days, "cutoff": cutoff.isoformat(), "purged": n},
            )
    return PurgeResult(int(n), cutoff)


@dataclass(frozen=True)
class ForgetResult:
    comments: int
    labels: int


def _matches(email: str, ip: str) -> ColumnElement[bool]:
    conds = []
    if email:
        conds.append(func.lower(func.trim(t.comments.c.author_email)) == email.strip().lower())
    if ip:
        conds.append(func.trim(t.comments.c.user_ip) == ip.strip())
    cond = conds[0]
    for extra in conds[1:]:
        cond = cond | extra
    return cond


def forget(store: Store, *, email: str = "", ip: str = "", actor: str = "cli") -> ForgetResult:
    """Delete one commenter's comments and labels and remember them as forgotten."""
    email, ip = (email or "").strip(), (ip or "").strip()
    if not email and not ip:
        raise ValidationError("give an email address or an IP address", field="email")
    if email and ("@" not in email or len(email) > 2000):
        raise ValidationError(f"{email!r} is not an email address", field="email")
    if ip and len(ip) > 64:
        raise ValidationError("an IP address is at most 64 characters", field="ip")
    hashes = [("email", value_hash(email))] if email else []
    hashes += [("ip", value_hash(ip))] if ip else []
    with store.transaction() as c:
        ids = list(c.execute(select(t.comments.c.id).where(_matches(email, ip))).scalars())
        n_labels = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            n_labels += c.execute(delete(t.labels).where(t.labels.c.comment_id.in_(chunk))).rowcount
            c.execute(delete(t.shadow_results).where(t.shadow_results.c.comment_id.in_(chunk)))
            c.execute(delete(t.comments).where(t.comments.c.id.in_(chunk)))
        for kind, h in hashes:
            known = c.execute(
                select(t.forgotten.c.id).where(
                    t.forgotten.c.kind == kind, t.forgotten.c.value_hash == h
                )
            ).first()
            if known is None:
                c.execute(insert(t.forgotten).values(kind=kind, value_hash=h, created_at=now()))
        store._audit(
            c,
            actor,
            "privacy.forget",
            ",".join(k for k, _ in hashes),
            {"hashes": [h for _, h in hashes], "comments": len(ids), "labels": n_labels},
        )
    return ForgetResult(len(ids), n_labels)
