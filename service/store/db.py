"""Durable storage through SQLAlchemy Core: SQLite by default, PostgreSQL by URL.

The :class:`Store` wraps one Engine (injected into the app as a resource) and
offers the operations every feature shares: sites and their keys, checked
comments, labels with full history (the latest wins), the audit log and the
list of forgotten commenters. Each write is one transaction; a write that
cannot be committed raises :class:`~service.errors.StorageError` and is never
acknowledged.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import json
import operator
import os
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from service.errors import Conflict, NotFound, StorageError, ValidationError
from service.store import schema as t
from training.text import dedup_key

KEY_ALPHABET = "0123456789abcdef"  # WordPress strips the rest; host names arrive lower-cased
KEY_LENGTH = 12  # WordPress refuses any other length
LABELS = {"spam": ("spam", "ham"), "toxicity": ("toxic", "ok")}
LABEL_SOURCES = ("moderator", "site", "import")
# A site's label by text that found no comment waits this long for the check it was
# meant for (still in another worker's write-behind journal), and matches a check
# received up to TEXT_LABEL_SLACK_SECONDS after it (clocks of other hosts).
TEXT_LABEL_WAIT_SECONDS = 120
TEXT_LABEL_SLACK_SECONDS = 5
# At most about this many wait at once (each is one indexed lookup per write of
# checks): a site sending labels for comments it never checked cannot slow the writer.
TEXT_LABEL_MAX_WAITING = 200

T = TypeVar("T")


def now() -> datetime:
    return datetime.now(UTC)


def _utc(moment: datetime) -> datetime:
    """A stored time as an aware UTC datetime (SQLite gives it back without its zone)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.strip().lower().encode()).hexdigest()


def content_hash(text: str) -> str:
    return hashlib.sha256(dedup_key(text).encode()).hexdigest()


def value_hash(value: str) -> str:
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()


_HOST_LABEL = re.compile(r"^(?!-)[\w-]{1,63}(?<!-)$")


def _plausible_host(host: str) -> bool:
    """A dotted host name, ``localhost`` or an IP address: what a site can be reached at."""
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.split(".")
    return len(labels) >= 2 and all(_HOST_LABEL.match(label) for label in labels)


@functools.lru_cache(maxsize=4096)
def site_key(url: str) -> str:
    """The one spelling of a site: host (lower case, no ``www.``), port and path, no scheme.

    Every place that takes a site (keys, thresholds, rules, moderators, the
    Akismet ``blog``) goes through here, so ``news.example.org`` and
    ``https://www.news.example.org/`` name the same site. Memoised: every Akismet
    check sends its blog's URL (an error is raised again each time, never kept).
    """
    raw = url.strip()
    if not raw:
        raise ValidationError("a site URL is required", field="blog")
    parts = urlsplit(raw if "://" in raw else f"http://{raw}")
    if parts.scheme.lower() not in ("http", "https"):
        raise ValidationError(
            f"{url!r} is not a site URL: a site is served over http or https", field="blog"
        )
    if not parts.hostname:
        raise ValidationError(f"{url!r} is not a site URL", field="blog")
    host = parts.hostname.lower().removeprefix("www.")
    if not _plausible_host(host):
        raise ValidationError(
            f"{url!r} is not a site URL: give its host name, e.g. https://news.example.org",
            field="blog",
        )
    try:
        port_number = parts.port
    except ValueError as exc:  # "host:xyz" or a port over 65535
        raise ValidationError(f"{url!r} is not a site URL: {exc}", field="blog") from exc
    port = f":{port_number}" if port_number not in (None, 80, 443) else ""
    return f"{host}{port}{parts.path.rstrip('/')}"


def json_dumps(value: Any) -> str:
    """JSON columns' serializer: orjson (a tenth of the standard library's cost per
    stored check), the standard library for what orjson refuses (a lone surrogate
    in a form field, a key that is not a string): the same documents either way."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def engine_for(url: str) -> Engine:
    """An Engine with the settings commentmod needs on each backend."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, json_serializer=json_dumps)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5},
        json_serializer=json_dumps,
    )


@dataclass(frozen=True)
class KeyInfo:
    key_id: int
    site_id: int
    site_url: str


@dataclass(frozen=True)
class CheckRecord:
    """What is stored for one checked comment."""

    guid: str
    site_id: int | None
    source: str
    content: str
    fields: dict[str, str]
    extra: dict[str, Any]
    spam_probability: float | None
    verdict: str | None
    discard: bool
    reasons: list[dict[str, Any]]
    model_version: str
    is_test: bool = False
    toxicity: dict[str, Any] | None = None  # {"scores": {...}, "spans": [[b, e, s]]}
    # When the check was answered; None: when it is written. A check replayed from a
    # journal after a crash keeps the time it was received, not the time of the replay.
    received_at: datetime | None = None


COMMENT_COLUMNS = {
    "author": "author",
    "author_email": "author_email",
    "author_url": "author_url",
    "user_ip": "user_ip",
    "user_agent": "user_agent",
    "referrer": "referrer",
    "permalink": "permalink",
    "type": "comment_type",
    "lang": "lang",
    "created_at": "comment_created_at",
}


CHECK_COLUMNS = (
    "guid", "site_id", "source", "received_at", "content", "content_hash", "extra",
    "spam_probability", "verdict", "discard", "reasons", "model_version", "is_test",
    "toxicity", *COMMENT_COLUMNS.values(),
)


class CheckInsert:
    """The insert-or-ignore of checks, compiled once for a dialect, its rows sent to
    the driver's ``executemany`` with each column's own SQLAlchemy bind processor
    applied (so what is stored is byte for byte what ``Connection.execute`` stores:
    tests/test_store.py compares them)."""

    def __init__(self, dialect: Any, statement: Any) -> None:
        stmt = statement.values({name: bindparam(name) for name in CHECK_COLUMNS})
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        self.positional = bool(compiled.positional)
        order = list(compiled.positiontup or ()) if self.positional else list(CHECK_COLUMNS)
        if sorted(order) != sorted(CHECK_COLUMNS):
            raise StorageError(f"unexpected parameters in the check insert: {order}")
        where = {name: i for i, name in enumerate(CHECK_COLUMNS)}
        self.pick = operator.itemgetter(*[where[name] for name in order])
        self.names = order
        self.processors = [
            (where[name], proc) for name in CHECK_COLUMNS
            if (proc := t.comments.c[name].type.dialect_impl(dialect).bind_processor(dialect))
            is not None
        ]

    def run(self, conn: Connection, rows: list[list[Any]]) -> None:
        for row in rows:
            for i, proc in self.processors:
                row[i] = proc(row[i])
        params: list[Any] = (
            [self.pick(row) for row in rows] if self.positional
            else [dict(zip(self.names, row, strict=True)) for row in rows]
        )
        conn.exec_driver_sql(self.sql, params)


def _new_id(result: Any) -> int:
    """The primary key of the row an INSERT just wrote."""
    return int(result.inserted_primary_key[0])


def new_guid() -> str:
    return str(uuid.uuid4())


GUID_RANDOM_BYTES = 10  # then a 6-byte HMAC tag: 16 bytes, written like a UUID


def _guid_tag(secret: str, raw: bytes) -> bytes:
    tag = _guid_mac(secret).copy()  # keyed once: a new HMAC per guid costs ~20 us
    tag.update(raw)
    return tag.digest()[:6]


@functools.lru_cache(maxsize=8)
def _guid_mac(secret: str) -> hmac.HMAC:
    return hmac.new(secret.encode(), b"commentmod-guid:", hashlib.sha256)


class _RandomBytes:
    """Bytes from ``os.urandom`` read 4 KB at a time (one system call per 400 guids
    instead of one per guid), never shared with a forked child."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._buffer, self._at = b"", 0

    def take(self, n: int) -> bytes:
        with self._lock:
            if self._at + n > len(self._buffer):
                self._buffer, self._at = os.urandom(max(4096, n)), 0
            out = self._buffer[self._at : self._at + n]
            self._at += n
            return out


_random = _RandomBytes()


def signed_guid(secret: str) -> str:
    """A check's guid that proves it was issued here: random bytes and their HMAC tag.

    A label by guid alone may arrive before its check is recorded (the check
    waits in some worker's write-behind queue); the tag tells "issued, not yet
    recorded" (keep the label pending) from "never issued" (404) without a lookup.
    """
    raw = _random.take(GUID_RANDOM_BYTES)
    h = (raw + _guid_tag(secret, raw)).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def guid_issued(guid: str, secret: str) -> bool:
    """True when ``guid`` carries a valid tag made with ``secret``."""
    digits = guid.replace("-", "")
    if len(guid) != 36 or len(digits) != 32:
        return False
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        return False
    tag = _guid_tag(secret, raw[:GUID_RANDOM_BYTES])
    return hmac.compare_digest(tag, raw[GUID_RANDOM_BYTES:])


class Store:
    """Storage operations over one Engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._check_insert: CheckInsert | None = None

    # --- plumbing ----------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One committed transaction; any database failure becomes StorageError."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise StorageError(
                f"the database could not complete the operation: "
                f"{type(getattr(exc, 'orig', None) or exc).__name__}"
            ) from exc

    def read(self, fn: Callable[[Connection], T]) -> T:
        try:
            with self.engine.connect() as conn:
                return fn(conn)
        except SQLAlchemyError as exc:
            raise StorageError(
                f"the database could not be read: "
                f"{type(getattr(exc, 'orig', None) or exc).__name__}"
            ) from exc

    def ping(self) -> None:
        self.read(lambda c: c.execute(select(1)).scalar_one())

    # --- sites and keys ----------------------------------------------------
    def ensure_site(self, url: str, conn: Connection | None = None) -> int:
        key = site_key(url)

        def run(c: Connection) -> int:
            found = c.execute(select(t.sites.c.id).where(t.sites.c.url == key)).scalar()
            if found is not None:
                return int(found)
            return _new_id(
                c.execute(insert(t.sites).values(url=key, name=key, settings={}, created_at=now()))
            )

        if conn is not None:
            return run(conn)
        try:
            with self.transaction() as c:
                return run(c)
        except IntegrityError:  # created concurrently: read it back
            with self.transaction() as c:
                return run(c)

    def site_id(self, url: str, conn: Connection | None = None) -> int:
        """The id of an existing site, in any spelling ``site_key`` accepts.

        An unknown site is a NotFound that lists the known ones, so a typo is
        never silently a new, empty site.
        """
        key = site_key(url)

        def run(c: Connection) -> int:
            found = c.execute(select(t.sites.c.id).where(t.sites.c.url == key)).scalar()
            if found is not None:
                return int(found)
            known = list(c.execute(select(t.sites.c.url).order_by(t.sites.c.url)).scalars())
            listed = ", ".join(known) if known else "none yet"
            raise NotFound(
                f"no site {key!r} (known sites: {listed}); "
                "a site is created with: commentmod keys create --site URL"
            )

        return run(conn) if conn is not None else self.read(run)

    def sites(self) -> list[dict[str, Any]]:
        return self.read(
            lambda c: [dict(r._mapping) for r in c.execute(select(t.sites).order_by(t.sites.c.id))]
        )

    def site(self, site_id: int) -> dict[str, Any]:
        row = self.read(lambda c: c.execute(select(t.sites).where(t.sites.c.id == site_id)).first())
        if row is None:
            raise NotFound(f"no site {site_id}")
        return dict(row._mapping)

    def update_site_settings(self, site_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        with self.transaction() as c:
            row = c.execute(select(t.sites.c.settings).where(t.sites.c.id == site_id)).first()
            if row is None:
                raise NotFound(f"no site {site_id}")
            merged = {**(row[0] or {}), **changes}
            merged = {k: v for k, v in merged.items() if v is not None}
            c.execute(update(t.sites).where(t.sites.c.id == site_id).values(settings=merged))
        return merged

    def create_key(self, site_url: str, actor: str = "cli") -> tuple[str, int]:
        """A new 12-character key for ``site_url``; only its sha256 is stored."""
        key = "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_LENGTH))
        with self.transaction() as c:
            site_id = self.ensure_site(site_url, c)
            c.execute(
                insert(t.api_keys).values(
                    site_id=site_id, key_hash=hash_key(key), key_hint=key[-4:], created_at=now()
                )
            )
            self._audit(c, actor, "key.create", site_key(site_url), {"hint": key[-4:]})
        return key, site_id

    def find_key(self, key: str) -> KeyInfo | None:
        """The live key matching ``key`` (case-insensitive), compared in constant time."""
        if not key or len(key) > 64:
            return None
        wanted = hash_key(key)
        row = self.read(
            lambda c: c.execute(
                select(t.api_keys.c.id, t.api_keys.c.site_id, t.api_keys.c.key_hash, t.sites.c.url)
                .join(t.sites, t.sites.c.id == t.api_keys.c.site_id)
                .where(t.api_keys.c.key_hash == wanted, t.api_keys.c.revoked_at.is_(None))
            ).first()
        )
        if row is None or not hmac.compare_digest(row.key_hash, wanted):
            return None
        return KeyInfo(row.id, row.site_id, row.url)

    def keys(self) -> list[dict[str, Any]]:
        return self.read(
            lambda c: [
                dict(r._mapping)
                for r in c.execute(
                    select(
                        t.api_keys.c.id,
                        t.api_keys.c.key_hint,
                        t.api_keys.c.created_at,
                        t.api_keys.c.revoked_at,
                        t.sites.c.url.label("site"),
                    )
                    .join(t.sites, t.sites.c.id == t.api_keys.c.site_id)
                    .order_by(t.api_keys.c.id)
                )
            ]
        )

    def revoke_key(self, key_or_id: str, actor: str = "cli") -> int:
        """Revoke by the key itself or by its numeric id; returns the key id."""
        cond = (
            (t.api_keys.c.id == int(key_or_id))
            if key_or_id.isdigit() and len(key_or_id) < KEY_LENGTH
            else (t.api_keys.c.key_hash == hash_key(key_or_id))
        )
        with self.transaction() as c:
            row = c.execute(select(t.api_keys.c.id).where(cond)).first()
            if row is None:
                raise NotFound("no such key")
            c.execute(update(t.api_keys).where(t.api_keys.c.id == row.id).values(revoked_at=now()))
            self._audit(c, actor, "key.revoke", str(row.id), {})
        return int(row.id)

    # --- comments ----------------------------------------------------------
    def record_checks(self, records: list[CheckRecord]) -> None:
        """Store checked comments, all in one transaction.

        Idempotent by guid (insert or ignore, on SQLite and PostgreSQL): a check
        replayed from a write-behind journal after a crash is never stored twice.
        Every check is stored, so this runs once per answered request: the rows go
        to the driver's ``executemany`` through :class:`CheckInsert`, not through
        SQLAlchemy's per-row parameter processing (two fifths of the cost).
        """
        if not records:
            return
        insert = self._check_insert
        if insert is None:
            insert = self._check_insert = CheckInsert(self.engine.dialect,
                                                      self._insert_or_ignore(t.comments, "guid"))
        stamp = now()
        rows = []
        for rec in records:
            fields = rec.fields
            row = [
                rec.guid, rec.site_id, rec.source, rec.received_at or stamp, rec.content,
                content_hash(rec.content), rec.extra, rec.spam_probability, rec.verdict,
                rec.discard, rec.reasons, rec.model_version, rec.is_test, rec.toxicity,
            ]
            for key in COMMENT_COLUMNS:
                value = fields.get(key)
                row.append(value[:2000] if value else "")
            rows.append(row)
        with self.transaction() as c:
            insert.run(c, rows)
            self._join_pending(c)

    # --- labels waiting for their check -------------------------------------
    def _join_pending(self, c: Connection) -> int:
        """Turn every pending label whose comment is now recorded into a label.

        Runs in each write of checks and after each pending label, so a label is
        joined by whichever transaction commits last (on PostgreSQL, two that
        commit at once may both miss: the next write of checks joins it).
        A label from a site that does not own the comment is dropped (and audited).
        """
        p, cm = t.pending_labels, t.comments
        joined = self._join_text_labels(c)
        rows = c.execute(
            select(p, cm.c.id.label("comment_id"), cm.c.site_id.label("comment_site"))
            .join(cm, cm.c.guid == p.c.guid)
            .order_by(p.c.id)
        ).all()
        if not rows:
            return joined
        for r in rows:
            if r.site_id is not None and r.comment_site not in (None, r.site_id):
                self._audit(c, r.actor, "label.refused", r.guid, {"why": "another site's comment"})
            else:
                c.execute(
                    insert(t.labels).values(
                        comment_id=r.comment_id, task="spam", label=r.label, source=r.source,
                        actor=r.actor, is_test=r.is_test, created_at=r.created_at,
                    )
                )
                joined += 1
        c.execute(delete(p).where(p.c.id.in_([r.id for r in rows])))
        return joined

    def _join_text_labels(self, c: Connection) -> int:
        """Label the check each pending label by text was meant for, once it is recorded.

        A site's label by text found no comment with that text and was stored on a
        new copy (``copy_id``). The check it was meant for is a comment of the same
        site with the same normalised text, received no later than the label
        (:data:`TEXT_LABEL_SLACK_SECONDS` allows for clocks of other hosts), not a
        copy. Each such label is added to the newest such check, as a label by text
        goes to the site's newest comment with that text;
        one still unmatched after :data:`TEXT_LABEL_WAIT_SECONDS` was for a comment
        never checked here, and stays on its copy alone.
        """
        p, cm = t.pending_labels, t.comments
        waiting = c.execute(
            select(p, cm.c.content_hash, cm.c.received_at.label("copied_at"))
            .outerjoin(cm, cm.c.id == p.c.copy_id)
            .where(p.c.copy_id.is_not(None))
            .order_by(p.c.id)
        ).all()
        done: list[int] = []
        joined = 0
        cutoff = now() - timedelta(seconds=TEXT_LABEL_WAIT_SECONDS)
        for r in waiting:
            if r.content_hash is None:  # the copy was erased meanwhile
                done.append(r.id)
                continue
            site = cm.c.site_id.is_(None) if r.site_id is None else cm.c.site_id == r.site_id
            # Any id: the check may have been written between the label's look-up and
            # its copy (then its id is the smaller), and an older check of the text
            # would have been found by the look-up and labelled without a copy.
            check = c.execute(
                select(cm.c.id)
                .where(
                    cm.c.content_hash == r.content_hash, site, cm.c.source != "feedback",
                    cm.c.received_at
                    <= r.copied_at + timedelta(seconds=TEXT_LABEL_SLACK_SECONDS),
                )
                .order_by(cm.c.id.desc())
                .limit(1)
            ).first()
            if check is not None:
                c.execute(
                    insert(t.labels).values(
                        comment_id=check.id, task="spam", label=r.label, source=r.source,
                        actor=r.actor, is_test=r.is_test, created_at=r.created_at,
                    )
                )
                joined += 1
                done.append(r.id)
            elif _utc(r.created_at) < cutoff:
                done.append(r.id)
        if done:
            c.execute(delete(p).where(p.c.id.in_(done)))
        return joined

    def join_pending(self) -> int:
        """Join what can be joined now (training and tests call it before reading labels)."""
        with self.transaction() as c:
            return self._join_pending(c)

    def pending_count(self) -> int:
        return int(
            self.read(
                lambda c: c.execute(select(func.count()).select_from(t.pending_labels)).scalar()
            )
            or 0
        )

    def _insert_or_ignore(self, table: Any, key: str) -> Any:
        """``INSERT ... ON CONFLICT (key) DO NOTHING`` in this engine's dialect."""
        if self.engine.dialect.name == "postgresql":
            return pg_insert(table).on_conflict_do_nothing(index_elements=[key])
        if self.engine.dialect.name == "sqlite":
            return sqlite_insert(table).on_conflict_do_nothing(index_elements=[key])
        raise StorageError(f"no insert-or-ignore for the {self.engine.dialect.name} dialect")

    def comment(self, comment_id: int) -> dict[str, Any]:
        row = self.read(
            lambda c: c.execute(select(t.comments).where(t.comments.c.id == comment_id)).first()
        )
        if row is None:
            raise NotFound(f"no comment {comment_id}")
        return dict(row._mapping)

    def find_comment(
        self, *, guid: str = "", content: str = "", site_id: int | None = None
    ) -> dict[str, Any] | None:
        """By guid when given, else the newest comment with the same normalised text."""
        if guid:
            q = select(t.comments).where(t.comments.c.guid == guid)
        elif content:
            q = (
                select(t.comments)
                .where(t.comments.c.content_hash == content_hash(content))
                .order_by(t.comments.c.id.desc())
                .limit(1)
            )
            if site_id is not None:
                q = q.where(t.comments.c.site_id == site_id)
        else:
            return None
        row = self.read(lambda c: c.execute(q).first())
        return dict(row._mapping) if row is not None else None

    # --- labels ------------------------------------------------------------
    def add_label(
        self,
        comment_id: int,
        label: str,
        *,
        source: str,
        actor: str = "",
        task: str = "spam",
        score: float | None = None,
        attribute: str | None = None,
        is_test: bool = False,
        conn: Connection | None = None,
    ) -> int:
        """Append a label to a comment's history; the newest label wins."""
        if task not in LABELS or label not in LABELS[task]:
            raise ValidationError(f"label must be one of {LABELS.get(task)}", field="label")
        if source not in LABEL_SOURCES:
            raise ValidationError(f"source must be one of {LABEL_SOURCES}", field="source")
        values = dict(
            comment_id=comment_id,
            task=task,
            label=label,
            score=score,
            attribute=attribute,
            source=source,
            actor=actor[:200],
            is_test=is_test,
            created_at=now(),
        )
        if conn is not None:
            return _new_id(conn.execute(insert(t.labels).values(**values)))
        with self.transaction() as c:
            return _new_id(c.execute(insert(t.labels).values(**values)))

    def label_history(self, comment_id: int, task: str = "spam") -> list[dict[str, Any]]:
        return self.read(
            lambda c: [
                dict(r._mapping)
                for r in c.execute(
                    select(t.labels)
                    .where(t.labels.c.comment_id == comment_id, t.labels.c.task == task)
                    .order_by(t.labels.c.id)
                )
            ]
        )

    def latest_label(self, comment_id: int, task: str = "spam") -> str | None:
        history = self.label_history(comment_id, task)
        return str(history[-1]["label"]) if history else None

    def feedback(
        self,
        *,
        label: str,
        source: str,
        actor: str,
        site_id: int | None,
        guid: str = "",
        content: str = "",
        fields: dict[str, str] | None = None,
        is_test: bool = False,
        issued: bool = False,
    ) -> tuple[int | None, int | None]:
        """Store a label for a comment found by guid, else by content, else newly recorded.

        Never fails because the comment was not seen before. Returns (comment id,
        label id); (None, None) when the label is kept pending: ``issued`` says the
        guid was issued here (:func:`guid_issued`) but its check is not recorded yet.
        """
        found = self.find_comment(guid=guid, site_id=None) if guid else None
        foreign = (
            found is not None and site_id is not None and found["site_id"] not in (None, site_id)
        )
        if foreign:
            found = None  # a site labels its own comments only, whatever guid it sends
        if found is None and content:
            found = self.find_comment(content=content, site_id=site_id)
        if foreign and found is None and not content:
            raise NotFound("no comment with that guid on this site")
        if found is None and not content and guid and issued:
            return self._add_pending(guid, label, source, actor, site_id, is_test)
        copied = False
        with self.transaction() as c:
            if found is None:
                if not content:
                    raise NotFound(
                        "no comment with that guid: it was never issued here, and no "
                        "content was sent to record"
                    )
                values = {
                    COMMENT_COLUMNS[k]: v[:2000]
                    for k, v in (fields or {}).items()
                    if k in COMMENT_COLUMNS
                }
                comment_id = _new_id(
                    c.execute(
                        insert(t.comments).values(
                            guid=new_guid(),
                            site_id=site_id,
                            source="feedback",
                            received_at=now(),
                            content=content,
                            content_hash=content_hash(content),
                            extra={},
                            reasons=[],
                            model_version="",
                            is_test=is_test,
                            **values,
                        )
                    )
                )
                # The check this label was meant for may still be in another worker's
                # write-behind journal: it is labelled too when it lands.
                copied = source == "site"  # a bad label fails in add_label below: all rolls back
                if copied:
                    waiting = _new_id(
                        c.execute(
                            insert(t.pending_labels).values(
                                guid="", copy_id=comment_id, site_id=site_id, label=label,
                                source=source, actor=actor[:200], is_test=is_test,
                                created_at=now(),
                            )
                        )
                    )
                    c.execute(
                        delete(t.pending_labels).where(
                            t.pending_labels.c.copy_id.is_not(None),
                            t.pending_labels.c.id <= waiting - TEXT_LABEL_MAX_WAITING,
                        )
                    )
            else:
                comment_id = int(found["id"])
            label_id = self.add_label(
                comment_id, label, source=source, actor=actor, is_test=is_test, conn=c
            )
        if copied:  # a check committed while this label was written joins it now
            with self.transaction() as c:
                self._join_pending(c)
        return comment_id, label_id

    def _add_pending(
        self, guid: str, label: str, source: str, actor: str, site_id: int | None, is_test: bool
    ) -> tuple[int | None, int | None]:
        if label not in LABELS["spam"]:
            raise ValidationError(f"label must be one of {LABELS['spam']}", field="label")
        with self.transaction() as c:
            # Written first: on SQLite this takes the write lock, so a check committed
            # before it is seen by the join below and one committed after it joins it.
            c.execute(
                insert(t.pending_labels).values(
                    guid=guid, site_id=site_id, label=label, source=source,
                    actor=actor[:200], is_test=is_test, created_at=now(),
                )
            )
        with self.transaction() as c:
            self._join_pending(c)
        found = self.find_comment(guid=guid)
        if found is None:
            return None, None
        latest = self.label_history(int(found["id"]))
        return int(found["id"]), (int(latest[-1]["id"]) if latest else None)

    # --- audit and privacy -------------------------------------------------
    def _audit(
        self, conn: Connection, actor: str, action: str, target: str, detail: dict[str, Any]
    ) -> None:
        conn.execute(
            insert(t.audit_log).values(
                at=now(), actor=actor[:200], action=action, target=target[:200], detail=detail
            )
        )

    def audit(
        self, actor: str, action: str, target: str = "", detail: dict[str, Any] | None = None
    ) -> None:
        with self.transaction() as c:
            self._audit(c, actor, action, target, detail or {})

    def audit_entries(self, limit: int = 100) -> list[dict[str, Any]]:
        return self.read(
            lambda c: [
                dict(r._mapping)
                for r in c.execute(
                    select(t.audit_log).order_by(t.audit_log.c.id.desc()).limit(limit)
                )
            ]
        )

    def is_forgotten(self, email: str = "", ip: str = "") -> bool:
        wanted = [("email", value_hash(email))] if email else []
        wanted += [("ip", value_hash(ip))] if ip else []
        if not wanted:
            return False

        def run(c: Connection) -> bool:
            for kind, h in wanted:
                if c.execute(
                    select(func.count())
                    .select_from(t.forgotten)
                    .where(t.forgotten.c.kind == kind, t.forgotten.c.value_hash == h)
                ).scalar():
                    return True
            return False

        return self.read(run)


def ensure_unique(fn: Callable[[], T], message: str) -> T:
    """Run a write that may hit a unique constraint; turn that into a 409."""
    try:
        return fn()
    except IntegrityError as exc:
        raise Conflict(message) from exc
