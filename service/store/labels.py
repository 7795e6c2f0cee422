"""Labels import and export (CSV and JSONL), for moving training data in and out.

An import is validated in full before anything is written, then applied in
one transaction: a file with one bad row changes nothing. Re-importing is
idempotent: a label already in a comment's history with the same task, value
and source is not added again. Rows from forgotten commenters are skipped.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Connection, func, insert, select

from service.errors import ValidationError
from service.store import schema as t
from service.store.db import (
    COMMENT_COLUMNS,
    LABEL_SOURCES,
    LABELS,
    Store,
    _new_id,
    content_hash,
    new_guid,
    now,
    site_key,
    value_hash,
)

FORMATS = ("csv", "jsonl")
MAX_ERRORS_SHOWN = 20
EXPORT_COLUMNS = (
    "guid",
    "site",
    "task",
    "label",
    "attribute",
    "score",
    "source",
    "actor",
    "labelled_at",
    "content",
    "author",
    "author_email",
    "author_url",
    "user_ip",
    "permalink",
    "received_at",
)


@dataclass(frozen=True)
class Row:
    line: int
    label: str
    task: str
    source: str
    actor: str
    guid: str = ""
    content: str = ""
    site: str = ""
    attribute: str | None = None
    score: float | None = None
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class ImportResult:
    added: int = 0
    duplicates: int = 0
    comments_created: int = 0
    forgotten: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def detect_format(path: Path, explicit: str | None = None) -> str:
    if explicit:
        return explicit
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in {".jsonl", ".ndjson", ".json"}:
        return "jsonl"
    raise ValidationError(f"cannot tell the format of {path.name}: use --format csv|jsonl")


def read_records(stream: TextIO, fmt: str) -> Iterator[tuple[int, Any]]:
    """(line number, record) pairs; a record is a dict, or an error string."""
    if fmt == "csv":
        reader = csv.DictReader(stream)
        for rec in reader:
            yield reader.line_num, rec
        return
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"not valid JSON: {exc.msg}"


def _text(rec: dict[str, Any], name: str, limit: int = 2000) -> str:
    value = rec.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"'{name}' must be a string")
    if len(value) > limit:
        raise ValueError(f"'{name}' is longer than {limit} characters")
    return value.strip() if name != "content" else value


def parse_row(line: int, rec: Any, *, default_actor: str, max_content: int) -> Row:
    if isinstance(rec, str):
        raise ValueError(rec)
    if not isinstance(rec, dict):
        raise ValueError("each record must be an object")
    label = _text(rec, "label").lower()
    task = _text(rec, "task").lower() or ("toxicity" if label in LABELS["toxicity"] else "spam")
    if task not in LABELS or label not in LABELS[task]:
        raise ValueError(f"label {label!r} is not one of {LABELS.get(task, LABELS['spam'])}")
    source = _text(rec, "source").lower() or "import"
    if source not in LABEL_SOURCES:
        raise ValueError(f"source {source!r} is not one of {LABEL_SOURCES}")
    guid, content = _text(rec, "guid", 36), _text(rec, "content", max_content)
    if not guid and not content.strip():
        raise ValueError("a row needs a guid or the comment's content")
    site = _text(rec, "site", 500)
    if site:
        site = site_key(site)
    score_raw = rec.get("score")
    score: float | None = None
    if score_raw not in (None, ""):
        try:
            score = float(score_raw)
        except (TypeError, ValueError) as exc:
            raise ValueError("'score' must be a number") from exc
    fields = {k: _text(rec, k) for k in COMMENT_COLUMNS if _text(rec, k)}
    return Row(
        line=line,
        label=label,
        task=task,
        source=source,
        actor=_text(rec, "actor", 200) or default_actor,
        guid=guid,
        content=content,
        site=site,
        attribute=_text(rec, "attribute", 32) or None,
        score=score,
        fields=fields,
    )


def parse_file(stream: TextIO, fmt: str, *, default_actor: str, max_content: int) -> list[Row]:
    """Every row, or a ValidationError naming the bad lines (nothing is written)."""
    rows, errors = [], []
    try:
        for line, rec in read_records(stream, fmt):
            try:
                rows.append(
                    parse_row(line, rec, default_actor=default_actor, max_content=max_content)
                )
            except (ValueError, ValidationError) as exc:
                errors.append(f"line {line}: {getattr(exc, 'message', exc)}")
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read the file: {exc}") from exc
    if errors:
        shown = "; ".join(errors[:MAX_ERRORS_SHOWN])
        more = (
            f" (and {len(errors) - MAX_ERRORS_SHOWN} more)"
            if len(errors) > MAX_ERRORS_SHOWN
            else ""
        )
        raise ValidationError(f"{len(errors)} bad rows, nothing imported: {shown}{more}")
    return rows


def _forgotten(c: Connection, row: Row) -> bool:
    wanted = []
    if row.fields.get("author_email"):
        wanted.append(("email", value_hash(row.fields["author_email"])))
    if row.fields.get("user_ip"):
        wanted.append(("ip", value_hash(row.fields["user_ip"])))
    return any(
        c.execute(
            select(t.forgotten.c.id).where(t.forgotten.c.kind == k, t.forgotten.c.value_hash == h)
        ).first()
        for k, h in wanted
    )


def _find_or_create(
    c: Connection, store: Store, row: Row, result: ImportResult
) -> tuple[int, bool] | None:
    """(comment id, was it created) or None when a guid names no comment and no text is given."""
    if row.guid:
        found = c.execute(select(t.comments.c.id).where(t.comments.c.guid == row.guid)).scalar()
        if found is not None:
            return int(found), False
    if not row.content.strip():
        return None
    site_id = store.ensure_site(row.site, c) if row.site else None
    q = select(t.comments.c.id).where(t.comments.c.content_hash == content_hash(row.content))
    if site_id is not None:
        q = q.where(t.comments.c.site_id == site_id)
    found = c.execute(q.order_by(t.comments.c.id.desc()).limit(1)).scalar()
    if found is not None:
        return int(found), False
    values = {COMMENT_COLUMNS[k]: v for k, v in row.fields.items()}
    new_id = _new_id(
        c.execute(
            insert(t.comments).values(
                guid=row.guid or new_guid(),
                site_id=site_id,
                source="import",
                received_at=now(),
                content=row.content,
                content_hash=content_hash(row.content),
                extra={},
                reasons=[],
                model_version="",
                **values,
            )
        )
    )
    result.comments_created += 1
    return new_id, True


def import_rows(
    store: Store, rows: Iterable[Row], *, actor: str = "cli", name: str = ""
) -> ImportResult:
    """Apply parsed rows in one transaction; see the module doc for idempotency."""
    result = ImportResult()
    missing: list[str] = []
    with store.transaction() as c:
        for row in rows:
            if _forgotten(c, row):
                result.forgotten += 1
                continue
            found = _find_or_create(c, store, row, result)
            if found is None:
                missing.append(f"line {row.line}: no comment {row.guid} and no content")
                continue
            comment_id, _ = found
            dup = c.execute(
                select(func.count())
                .select_from(t.labels)
                .where(
                    t.labels.c.comment_id == comment_id,
                    t.labels.c.task == row.task,
                    t.labels.c.label == row.label,
                    t.labels.c.source == row.source,
                )
            ).scalar_one()
            if dup:
                result.duplicates += 1
                continue
            store.add_label(
                comment_id,
                row.label,
                source=row.source,
                actor=row.actor,
                task=row.task,
                score=row.score,
                attribute=row.attribute,
                conn=c,
            )
            result.added += 1
        if missing:
            # Raising rolls the whole transaction back: nothing from this file is kept.
            raise ValidationError(
                f"{len(missing)} rows name unknown comments, nothing imported: "
                + "; ".join(missing[:MAX_ERRORS_SHOWN])
            )
        store._audit(c, actor, "labels.import", name[:200], result.to_dict())
    return result


def export_rows(
    store: Store, *, history: bool = False, include_test: bool = False
) -> list[dict[str, Any]]:
    """The newest label per comment and task (or every label with ``history``), oldest first."""
    latest = (
        select(func.max(t.labels.c.id))
        .group_by(t.labels.c.comment_id, t.labels.c.task)
        .scalar_subquery()
    )
    q = (
        select(
            t.comments.c.guid,
            t.sites.c.url.label("site"),
            t.labels.c.task,
            t.labels.c.label,
            t.labels.c.attribute,
            t.labels.c.score,
            t.labels.c.source,
            t.labels.c.actor,
            t.labels.c.created_at.label("labelled_at"),
            t.comments.c.content,
            t.comments.c.author,
            t.comments.c.author_email,
            t.comments.c.author_url,
            t.comments.c.user_ip,
            t.comments.c.permalink,
            t.comments.c.received_at,
        )
        .select_from(
            t.labels.join(t.comments, t.comments.c.id == t.labels.c.comment_id).outerjoin(
                t.sites, t.sites.c.id == t.comments.c.site_id
            )
        )
        .order_by(t.labels.c.id)
    )
    if not history:
        q = q.where(t.labels.c.id.in_(latest))
    if not include_test:
        q = q.where(t.labels.c.is_test.is_(False), t.comments.c.is_test.is_(False))
    rows, forgotten = store.read(
        lambda c: (
            [dict(r._mapping) for r in c.execute(q)],
            {(k, h) for k, h in c.execute(select(t.forgotten.c.kind, t.forgotten.c.value_hash))},
        )
    )
    if forgotten:  # commenters who asked to be forgotten after commenting again
        rows = [
            r
            for r in rows
            if ("email", value_hash(r["author_email"] or "")) not in forgotten
            and ("ip", value_hash(r["user_ip"] or "")) not in forgotten
        ]
    for r in rows:
        for key in ("labelled_at", "received_at"):
            r[key] = r[key].isoformat() if r[key] is not None else None
    return rows


def write_export(rows: list[dict[str, Any]], out: TextIO, fmt: str) -> None:
    if fmt == "jsonl":
        for r in rows:
            out.write(json.dumps({k: r[k] for k in EXPORT_COLUMNS}, ensure_ascii=False) + "\n")
        return
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if r[k] is None else r[k] for k in EXPORT_COLUMNS})


def export_text(rows: list[dict[str, Any]], fmt: str) -> str:
    buf = io.StringIO()
    write_export(rows, buf, fmt)
    return buf.getvalue()
