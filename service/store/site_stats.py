"""Per-site activity for a month, read from the comments and labels tables.

Akismet's ``/1.2/key-sites`` and ``/1.2/usage-limit`` report from here. A check
counts once, in the month it was received; test traffic (``is_test``) never
counts. Missed spam is a comment answered as ham whose newest site or
moderator label is spam; a false positive is the reverse.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select

from service.store import schema as t
from service.store.db import Store

ORDERS = ("total", "spam", "ham", "missed_spam", "false_positives")


@dataclass
class SiteActivity:
    site: str
    api_calls: int = 0
    spam: int = 0
    ham: int = 0
    missed_spam: int = 0
    false_positives: int = 0
    is_revoked: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[start, end) of a ``YYYY-MM`` month in UTC; ValueError when malformed."""
    if len(month) != 7 or month[4] != "-":
        raise ValueError(f"month must be YYYY-MM, got {month!r}")
    start = datetime(int(month[:4]), int(month[5:]), 1, tzinfo=UTC)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else (
        start.replace(month=start.month + 1)
    )
    return start, end


def current_month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


def _answered_spam(verdict: str, unsure_is_spam: bool) -> bool:
    return verdict == "spam" or (verdict == "unsure" and unsure_is_spam)


def site_activity(
    store: Store,
    month: str,
    *,
    site_ids: list[int] | None = None,
    url_filter: str = "",
    unsure_is_spam: bool = True,
) -> list[SiteActivity]:
    """One row per site with checks in ``month`` (all sites when ``site_ids`` is None)."""
    start, end = month_bounds(month)
    latest = (
        select(t.labels.c.comment_id, func.max(t.labels.c.id).label("label_id"))
        .where(t.labels.c.task == "spam", t.labels.c.is_test.is_(False))
        .group_by(t.labels.c.comment_id)
        .subquery()
    )
    lab = t.labels.alias("lab")
    q = (
        select(t.sites.c.id, t.sites.c.url, t.comments.c.verdict, lab.c.label, func.count())
        .select_from(
            t.comments.join(t.sites, t.sites.c.id == t.comments.c.site_id)
            .outerjoin(latest, latest.c.comment_id == t.comments.c.id)
            .outerjoin(lab, lab.c.id == latest.c.label_id)
        )
        .where(
            t.comments.c.is_test.is_(False),
            t.comments.c.verdict.is_not(None),
            t.comments.c.received_at >= start,
            t.comments.c.received_at < end,
        )
        .group_by(t.sites.c.id, t.sites.c.url, t.comments.c.verdict, lab.c.label)
    )
    if site_ids is not None:
        q = q.where(t.sites.c.id.in_(site_ids))
    if url_filter:
        q = q.where(t.sites.c.url.contains(url_filter.strip().lower(), autoescape=True))

    def run(c: Connection) -> list[SiteActivity]:
        rows: dict[int, SiteActivity] = {}
        for site_id, url, verdict, label, n in c.execute(q):
            row = rows.setdefault(site_id, SiteActivity(url))
            row.api_calls += n
            if _answered_spam(verdict, unsure_is_spam):
                row.spam += n
                row.false_positives += n if label == "ham" else 0
            else:
                row.ham += n
                row.missed_spam += n if label == "spam" else 0
        live = {
            sid
            for (sid,) in c.execute(
                select(t.api_keys.c.site_id).where(
                    and_(t.api_keys.c.revoked_at.is_(None), t.api_keys.c.site_id.in_(list(rows)))
                )
            )
        }
        for site_id, row in rows.items():
            row.is_revoked = site_id not in live
        return list(rows.values())

    return store.read(run)


def sort_activity(rows: list[SiteActivity], order: str) -> list[SiteActivity]:
    """Largest first by ``order`` (``total`` = API calls), then by site name."""
    attr = "api_calls" if order == "total" else order
    return sorted(rows, key=lambda r: (-getattr(r, attr), r.site))


def usage(store: Store, site_id: int, month: str) -> int:
    """Checks (test traffic excluded) recorded for a site in ``month``."""
    start, end = month_bounds(month)
    q = select(func.count()).where(
        t.comments.c.site_id == site_id,
        t.comments.c.is_test.is_(False),
        t.comments.c.verdict.is_not(None),
        t.comments.c.received_at >= start,
        t.comments.c.received_at < end,
    )
    return int(store.read(lambda c: c.execute(q).scalar_one()))
