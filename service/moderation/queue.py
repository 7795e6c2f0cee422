"""The moderators' queue: what needs a human first, labels, and counts.

The queue puts comments the model answered ``unsure`` first, then the rest by
distance of their spam probability from the spam threshold (least certain
first): labelling those teaches the next model the most (active learning).
Every query is limited to the sites the moderator may see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, func, select, true
from sqlalchemy.sql import ColumnElement

from service.errors import NotFound, PermissionDenied, ValidationError
from service.moderation.moderators import Moderator
from service.resources import Resources
from service.store import schema as t
from service.store.db import LABELS

VERDICTS = ("ham", "unsure", "spam")
STATUSES = ("pending", "labelled", "all")
MAX_PAGE = 200
MAX_BULK = 500
MAX_QUERY = 200


@dataclass(frozen=True)
class QueueFilter:
    site_id: int | None = None
    verdict: str = ""
    status: str = "pending"
    since: date | None = None
    until: date | None = None  # inclusive
    q: str = ""
    limit: int = 50
    offset: int = 0

    @classmethod
    def from_args(cls, args: Any) -> QueueFilter:
        """Validate query-string arguments (a mapping of str to str)."""
        return cls(
            site_id=_int(args.get("site"), "site", 1, 2**31) if args.get("site") else None,
            verdict=_choice(args.get("verdict", ""), ("", *VERDICTS), "verdict"),
            status=_choice(args.get("status", "pending") or "pending", STATUSES, "status"),
            since=_date(args.get("from", ""), "from"),
            until=_date(args.get("to", ""), "to"),
            q=_query(args.get("q", "")),
            limit=_int(args.get("limit") or "50", "limit", 1, MAX_PAGE),
            offset=_int(args.get("offset") or "0", "offset", 0, 10**7),
        )

    def as_args(self) -> dict[str, str]:
        out = {
            "site": str(self.site_id or ""),
            "verdict": self.verdict,
            "status": self.status,
            "from": self.since.isoformat() if self.since else "",
            "to": self.until.isoformat() if self.until else "",
            "q": self.q,
        }
        return {k: v for k, v in out.items() if v}


def _int(raw: Any, name: str, low: int, high: int) -> int:
    try:
        value = int(str(raw))
    except ValueError as exc:
        raise ValidationError(f"'{name}' must be a whole number", field=name) from exc
    if not low <= value <= high:
        raise ValidationError(f"'{name}' must be between {low} and {high}", field=name)
    return value


def _choice(raw: Any, allowed: Sequence[str], name: str) -> str:
    if raw not in allowed:
        raise ValidationError(f"'{name}' must be one of {[a for a in allowed if a]}", field=name)
    return str(raw)


def _date(raw: Any, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(str(raw))
    except ValueError as exc:
        raise ValidationError(f"'{name}' must be a date like 2026-11-26", field=name) from exc


def _query(raw: Any) -> str:
    text = str(raw).strip()
    if len(text) > MAX_QUERY:
        raise ValidationError(f"'q' is longer than {MAX_QUERY} characters", field="q")
    return text


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _latest(task: str) -> Any:
    """Subquery: the newest label id per comment for ``task``."""
    return (
        select(t.labels.c.comment_id, func.max(t.labels.c.id).label("label_id"))
        .where(t.labels.c.task == task)
        .group_by(t.labels.c.comment_id)
        .subquery(f"latest_{task}")
    )


def _visible(mod: Moderator) -> ColumnElement[bool]:
    ids = mod.visible_site_ids()
    if ids is None:
        return true()
    return t.comments.c.site_id.in_(sorted(ids)) if ids else t.comments.c.id < 0


def queue(
    res: Resources, mod: Moderator, flt: QueueFilter, threshold: float | None = None
) -> tuple[list[dict[str, Any]], int]:
    """One page of the queue and the number of entries matching the filter.

    An entry is one text on one site: every comment with the same normalised
    text (``content_hash``) is grouped, so 11 copies of a spam text are one
    entry with ``copies`` 11, and a comment checked for spam and for toxicity
    (two requests, two rows) is one entry with both scores. The entry shows its
    newest spam-scored copy (``toxicity`` from its newest toxicity-scored one);
    labelling it labels every copy (:func:`label_comments`).
    """
    if flt.site_id is not None and not mod.can_see(flt.site_id):
        raise PermissionDenied("that site is not assigned to you")
    limit = spam_threshold(res) if threshold is None else threshold
    spam = _latest("spam")
    joined = t.comments.outerjoin(spam, spam.c.comment_id == t.comments.c.id)
    conds = _entry_conditions(mod)
    if flt.site_id is not None:
        conds.append(t.comments.c.site_id == flt.site_id)
    if flt.verdict:
        conds.append(t.comments.c.verdict == flt.verdict)
    if flt.status == "pending":
        conds += [spam.c.label_id.is_(None), t.comments.c.content.is_not(None)]
    elif flt.status == "labelled":
        conds.append(spam.c.label_id.is_not(None))
    if flt.since:
        conds.append(t.comments.c.received_at >= _midnight(flt.since))
    if flt.until and flt.until < date.max:  # the last day has no next midnight: no bound
        conds.append(t.comments.c.received_at < _midnight(flt.until + timedelta(days=1)))
    if flt.q:
        pattern = _like(flt.q)
        conds.append(
            t.comments.c.content.ilike(pattern, escape="\\")
            | t.comments.c.author.ilike(pattern, escape="\\")
            | t.comments.c.author_email.ilike(pattern, escape="\\")
        )
    c = t.comments.c
    groups = (
        select(
            func.coalesce(
                func.max(case((c.verdict.is_not(None), c.id))), func.max(c.id)
            ).label("shown_id"),
            func.count().label("copies"),
        )
        .select_from(joined)
        .where(and_(*conds))
        .group_by(c.site_id, c.content_hash)
        .subquery("groups")
    )
    shown = t.comments.alias("shown")
    shown_spam, shown_tox = _latest("spam"), _latest("toxicity")
    spam_label, tox_label = t.labels.alias("spam_label"), t.labels.alias("tox_label")
    page_from = (
        groups.join(shown, shown.c.id == groups.c.shown_id)
        .outerjoin(shown_spam, shown_spam.c.comment_id == shown.c.id)
        .outerjoin(spam_label, spam_label.c.id == shown_spam.c.label_id)
        .outerjoin(shown_tox, shown_tox.c.comment_id == shown.c.id)
        .outerjoin(tox_label, tox_label.c.id == shown_tox.c.label_id)
        .outerjoin(t.sites, t.sites.c.id == shown.c.site_id)
    )
    rows_q = (
        select(
            shown,
            groups.c.copies,
            t.sites.c.url.label("site_url"),
            spam_label.c.label.label("label"),
            spam_label.c.actor.label("label_actor"),
            spam_label.c.source.label("label_source"),
            tox_label.c.label.label("toxicity_label"),
        )
        .select_from(page_from)
        .order_by(
            case((shown.c.verdict == "unsure", 0), else_=1),
            func.abs(func.coalesce(shown.c.spam_probability, limit) - limit),
            shown.c.id.desc(),
        )
        .limit(flt.limit)
        .offset(flt.offset)
    )
    count_q = select(func.count()).select_from(groups)

    def run(conn: Connection) -> tuple[list[dict[str, Any]], int]:
        rows = [dict(r._mapping) for r in conn.execute(rows_q)]
        _add_toxicity_of_copies(conn, mod, rows)
        return rows, int(conn.execute(count_q).scalar_one())

    return res.store.read(run)


def _entry_conditions(mod: Moderator) -> list[ColumnElement[bool]]:
    return [_visible(mod), t.comments.c.is_test.is_(False)]


def _add_toxicity_of_copies(conn: Connection, mod: Moderator, rows: list[dict[str, Any]]) -> None:
    """Give an entry whose shown copy has no toxicity scores those of its newest copy
    that has them (the same text sent to the Perspective endpoint)."""
    wanted = [r for r in rows if not _has_scores(r.get("toxicity"))]
    if not wanted:
        return
    hashes = sorted({r["content_hash"] for r in wanted})
    found = conn.execute(
        select(t.comments.c.site_id, t.comments.c.content_hash, t.comments.c.toxicity)
        .where(and_(*_entry_conditions(mod)), t.comments.c.content_hash.in_(hashes))
        .order_by(t.comments.c.id.desc())
    )
    newest: dict[tuple[int | None, str], Any] = {}
    for site_id, digest, toxicity in found:
        if _has_scores(toxicity):
            newest.setdefault((site_id, digest), toxicity)
    for r in wanted:
        toxicity = newest.get((r["site_id"], r["content_hash"]))
        if toxicity is not None:
            r["toxicity"] = toxicity


def _has_scores(raw: Any) -> bool:
    return isinstance(raw, dict) and bool(raw.get("scores"))


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def spam_threshold(res: Resources) -> float:
    if not res.models.loaded:
        return 0.5
    return float(res.models.scorer().thresholds.get("spam", 0.5))


def visible_sites(res: Resources, mod: Moderator) -> list[dict[str, Any]]:
    return [s for s in res.store.sites() if mod.can_see(int(s["id"]))]


# --- labelling ----------------------------------------------------------------


@dataclass(frozen=True)
class LabelRequest:
    guid: str
    label: str
    task: str = "spam"
    attribute: str | None = None

    @classmethod
    def parse(cls, guid: Any, label: Any, task: Any = None, attribute: Any = None) -> LabelRequest:
        task = task or ("toxicity" if label in LABELS["toxicity"] else "spam")
        if not isinstance(task, str) or task not in LABELS:  # a list or object is unhashable
            raise ValidationError(f"task must be one of {list(LABELS)}", field="task")
        if label not in LABELS[task]:
            raise ValidationError(f"label must be one of {list(LABELS[task])}", field="label")
        if not isinstance(guid, str) or not 0 < len(guid) <= 36:
            raise ValidationError("guid must be a comment guid", field="guid")
        if attribute is not None and (
            not isinstance(attribute, str) or not attribute.isidentifier() or len(attribute) > 32
        ):
            raise ValidationError("attribute must be a name like TOXICITY", field="attribute")
        if task == "toxicity" and attribute is None:
            attribute = "TOXICITY"
        return cls(guid, label, task, attribute)


@dataclass
class Labelled:
    guid: str
    comment_id: int
    label_id: int
    label: str
    task: str
    actor: str
    copies: list[int] = field(default_factory=list)  # comment ids of the same text, labelled too
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "guid": self.guid,
            "label": self.label,
            "task": self.task,
            "label_id": self.label_id,
            "actor": self.actor,
            "copies": len(self.copies),
        }


def _unlabelled_copies(
    conn: Connection, comment_id: int, site_id: int | None, digest: str, task: str
) -> list[int]:
    """Other comments of the same site with the same text and no ``task`` label yet."""
    labelled = select(t.labels.c.comment_id).where(t.labels.c.task == task)
    same_site = (
        t.comments.c.site_id.is_(None) if site_id is None else t.comments.c.site_id == site_id
    )
    return list(
        conn.execute(
            select(t.comments.c.id)
            .where(
                same_site,
                t.comments.c.content_hash == digest,
                t.comments.c.id != comment_id,
                t.comments.c.is_test.is_(False),
                t.comments.c.id.not_in(labelled),
            )
            .order_by(t.comments.c.id)
        ).scalars()
    )


def label_comments(
    res: Resources, mod: Moderator, wanted: Sequence[LabelRequest], *, copies: bool = True
) -> list[Labelled]:
    """Record labels for several comments in one transaction: all or none.

    Every guid must exist and belong to a site the moderator sees; each label
    is appended to the history (source "moderator", actor = the moderator's
    name) and audited. With ``copies`` (the queue's one action per text) the
    comments of the same site with the same text and no label for that task
    get the same label. The feedback listeners (the verdict cache) are told
    after the commit.
    """
    if not wanted:
        raise ValidationError("no comments given", field="guids")
    if len(wanted) > MAX_BULK:
        raise ValidationError(f"at most {MAX_BULK} labels at once", field="guids")
    guids = sorted({w.guid for w in wanted})
    done: list[Labelled] = []
    with res.store.transaction() as c:
        found = {
            r.guid: r
            for r in c.execute(
                select(
                    t.comments.c.id,
                    t.comments.c.guid,
                    t.comments.c.site_id,
                    t.comments.c.content_hash,
                ).where(t.comments.c.guid.in_(guids))
            )
        }
        for guid in guids:
            row = found.get(guid)
            if row is None or not mod.can_see(row.site_id):
                # The same answer for "absent" and "not yours": guids are not enumerable.
                raise NotFound(f"no comment {guid} in your sites")
        given = {(found[w.guid].id, w.task) for w in wanted}
        for w in wanted:
            row = found[w.guid]

            def add(comment_id: int, w: LabelRequest = w) -> int:
                return res.store.add_label(
                    comment_id, w.label, source="moderator", actor=mod.name,
                    task=w.task, attribute=w.attribute, conn=c,
                )

            label_id = add(row.id)
            same = (
                _unlabelled_copies(c, row.id, row.site_id, row.content_hash, w.task)
                if copies
                else []
            )
            same = [i for i in same if (i, w.task) not in given]
            for copy_id in same:
                add(copy_id)
            done.append(Labelled(w.guid, row.id, label_id, w.label, w.task, mod.name, same))
        action = "label" if len(wanted) == 1 else "label.bulk"
        res.store._audit(
            c,
            mod.audit_actor,
            action,
            wanted[0].guid if len(wanted) == 1 else f"{len(wanted)} comments",
            {
                "labels": [[w.guid, w.task, w.label] for w in wanted][:MAX_BULK],
                "copies": sum(len(d.copies) for d in done),
            },
        )
    for item in done:
        for comment_id in (item.comment_id, *item.copies):
            for listener in res.on_feedback:
                listener(comment_id, None)
    return done


def comment_for(res: Resources, mod: Moderator, guid: str) -> dict[str, Any]:
    row = res.store.find_comment(guid=guid) if guid and len(guid) <= 36 else None
    if row is None or not mod.can_see(row["site_id"]):
        raise NotFound(f"no comment {guid} in your sites")
    return row


# --- stats --------------------------------------------------------------------


def stats(res: Resources, mod: Moderator) -> list[dict[str, Any]]:
    """Per visible site: comments by verdict, latest labels by value, still pending."""
    spam = _latest("spam")
    label = t.labels.alias("label")
    base = t.comments.outerjoin(spam, spam.c.comment_id == t.comments.c.id).outerjoin(
        label, label.c.id == spam.c.label_id
    )
    live = and_(_visible(mod), t.comments.c.is_test.is_(False))
    by_verdict = (
        select(t.comments.c.site_id, t.comments.c.verdict, func.count())
        .where(live)
        .group_by(t.comments.c.site_id, t.comments.c.verdict)
    )
    by_label = (
        select(t.comments.c.site_id, label.c.label, func.count())
        .select_from(base)
        .where(live)
        .group_by(t.comments.c.site_id, label.c.label)
    )

    def run(c: Connection) -> tuple[list[Any], list[Any]]:
        return list(c.execute(by_verdict)), list(c.execute(by_label))

    verdicts, labels = res.store.read(run)
    names = {int(s["id"]): str(s["url"]) for s in res.store.sites()}
    table: dict[int | None, dict[str, Any]] = {}

    def entry(site_id: int | None) -> dict[str, Any]:
        return table.setdefault(
            site_id,
            {
                "site_id": site_id,
                "site": names.get(site_id, "(no site)") if site_id is not None else "(no site)",
                "comments": 0,
                "verdicts": dict.fromkeys(VERDICTS, 0),
                "labels": {"spam": 0, "ham": 0},
                "pending": 0,
            },
        )

    for site_id, verdict, n in verdicts:
        e = entry(site_id)
        e["comments"] += n
        if verdict in VERDICTS:
            e["verdicts"][verdict] += n
    for site_id, value, n in labels:
        e = entry(site_id)
        if value is None:
            e["pending"] += n
        else:
            e["labels"][value] = e["labels"].get(value, 0) + n
    return sorted(table.values(), key=lambda e: (e["site_id"] is None, e["site"]))


# --- toxicity -------------------------------------------------------------------


def toxicity_view(raw: Any, text: str | None) -> dict[str, Any] | None:
    """Attribute scores and the text cut into (segment, score or None) for highlighting.

    ``raw`` is ``{"scores": {...}, "spans": [[begin, end, score], ...]}`` (Python
    string offsets). Malformed, overlapping or out-of-range spans are skipped:
    the template escapes each segment on its own, so no HTML is ever built from
    the comment text.
    """
    if not isinstance(raw, dict):
        return None
    scores = (
        {
            str(k): float(v)
            for k, v in (raw.get("scores") or {}).items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        if isinstance(raw.get("scores"), dict)
        else {}
    )
    segments: list[tuple[str, float | None]] = []
    if text:
        pos = 0
        for span in sorted(_spans(raw.get("spans"), len(text))):
            begin, end, score = span
            if begin < pos:
                continue
            if begin > pos:
                segments.append((text[pos:begin], None))
            segments.append((text[begin:end], score))
            pos = end
        if pos < len(text):
            segments.append((text[pos:], None))
    if not scores and not any(s is not None for _, s in segments):
        return None
    return {"scores": dict(sorted(scores.items(), key=lambda kv: -kv[1])), "segments": segments}


def _spans(raw: Any, length: int) -> list[tuple[int, int, float]]:
    out = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, list | tuple) or len(item) < 2:
            continue
        begin, end = item[0], item[1]
        score = item[2] if len(item) > 2 else 1.0
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (begin, end)):
            continue
        if not isinstance(score, int | float) or isinstance(score, bool):
            continue
        if 0 <= begin < end <= length:
            out.append((begin, end, float(score)))
    return out
