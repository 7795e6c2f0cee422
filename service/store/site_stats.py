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

from sqlalchemy import ColumnElement, Connection, and_, func, literal, select

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
    return [row for row, _ in _activity(store, start, end, site_ids=site_ids,
                                        url_filter=url_filter, unsure_is_spam=unsure_is_spam)]


def site_months(
    store: Store, site_id: int, since: datetime | None, *, unsure_is_spam: bool = True
) -> list[tuple[str, SiteActivity]]:
    """A site's activity per ``YYYY-MM`` month from ``since`` (or its first check) to
    now, oldest first; months without checks are zero rows; at least the current month."""
    found = {
        month: row
        for row, month in _activity(store, since, None, site_ids=[site_id], by_month=True,
                                    unsure_is_spam=unsure_is_spam)
    }
    url = next(iter(found.values())).site if found else str(store.site(site_id)["url"])
    month = since.strftime("%Y-%m") if since is not None else min(found, default=current_month())
    months = []
    while month <= current_month():
        months.append((month, found.get(month) or SiteActivity(url)))
        month = _next_month(month)
    return months


def _next_month(month: str) -> str:
    return month_bounds(month)[1].strftime("%Y-%m")


def _month_of(c: Connection, column: Any) -> Any:
    """``YYYY-MM`` of a UTC timestamp column, in the connection's SQL dialect."""
    if c.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")
    return func.strftime("%Y-%m", column)


def _activity(
    store: Store,
    start: datetime | None,
    end: datetime | None,
    *,
    site_ids: list[int] | None = None,
    url_filter: str = "",
    unsure_is_spam: bool = True,
    by_month: bool = False,
) -> list[tuple[SiteActivity, str]]:
    """(row, month) per site, and per month of check when ``by_month`` (else month '')."""
    latest = (
        select(t.labels.c.comment_id, func.max(t.labels.c.id).label("label_id"))
        .where(t.labels.c.task == "spam", t.labels.c.is_test.is_(False))
        .group_by(t.labels.c.comment_id)
        .subquery()
    )
    lab = t.labels.alias("lab")
    conditions: list[ColumnElement[bool]] = [
        t.comments.c.is_test.is_(False), t.comments.c.verdict.is_not(None)
    ]
    if start is not None:
        conditions.append(t.comments.c.received_at >= start)
    if end is not None:
        conditions.append(t.comments.c.received_at < end)
    if site_ids is not None:
        conditions.append(t.sites.c.id.in_(site_ids))
    if url_filter:
        conditions.append(t.sites.c.url.contains(url_filter.strip().lower(), autoescape=True))

    def run(c: Connection) -> list[tuple[SiteActivity, str]]:
        month = _month_of(c, t.comments.c.received_at) if by_month else literal("")
        grouped = [t.sites.c.id, t.sites.c.url, t.comments.c.verdict, lab.c.label]
        q = (
            select(t.sites.c.id, t.sites.c.url, month.label("month"), t.comments.c.verdict,
                   lab.c.label, func.count())
            .select_from(
                t.comments.join(t.sites, t.sites.c.id == t.comments.c.site_id)
                .outerjoin(latest, latest.c.comment_id == t.comments.c.id)
                .outerjoin(lab, lab.c.id == latest.c.label_id)
            )
            .where(*conditions)
            .group_by(*grouped, *([month] if by_month else []))
        )
        rows: dict[tuple[int, str], SiteActivity] = {}
        for site_id, url, period, verdict, label, n in c.execute(q):
            row = rows.setdefault((site_id, period), SiteActivity(url))
            row.api_calls += n
            if _answered_spam(verdict, unsure_is_spam):
                row.spam += n
                row.false_positives += n if label == "ham" else 0
            else:
                row.ham += n
                row.missed_spam += n if label == "spam" else 0
        site_list = list({site_id for site_id, _ in rows})
        live = {
            sid
            for (sid,) in c.execute(
                select(t.api_keys.c.site_id).where(
                    and_(t.api_keys.c.revoked_at.is_(None), t.api_keys.c.site_id.in_(site_list))
                )
            )
        }
        for (site_id, _), row in rows.items():
            row.is_revoked = site_id not in live
        return [(row, period) for (_, period), row in rows.items()]

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
