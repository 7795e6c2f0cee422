"""Per-site allow and block lists, applied before the model and named in the reasons.

A rule is (site or all sites, ``allow`` | ``block``, kind, value):

- ``email``: the author's e-mail address, exactly (case-insensitive);
- ``domain``: the author's e-mail domain, the author's URL or any link in the
  text is on that domain or one of its subdomains;
- ``ip``: the commenter's IP address, or a network in CIDR form;
- ``phrase``: the words appear in the text (after the model's normalisation,
  so spaced-out letters and look-alike characters do not dodge it).

An allow entry beats a block entry (a trusted author is never hidden by a
phrase), and the site's own entries are checked with the all-sites ones. Each
worker keeps every rule in memory and reloads them at most every
``site_rules_ttl_seconds``: the hot path makes no database query.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select

from service.errors import Conflict, NotFound, ValidationError
from service.resources import Resources
from service.scoring.verdicts import RuleHit
from service.store import schema as t
from service.store.db import Store, ensure_unique, now, site_key
from training.text import Comment, normalise_text, url_domains

LISTS = ("allow", "block")
KINDS = ("email", "domain", "ip", "phrase")
MAX_VALUE = 500
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
_WORD = re.compile(r"\w+")
KIND_WORDS = {"email": "e-mail", "domain": "domain", "ip": "IP address", "phrase": "phrase"}


def normalise_value(kind: str, value: Any) -> str:
    """The stored form of a rule value, or a ValidationError that says what is wrong."""
    if kind not in KINDS:
        raise ValidationError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}", field="kind")
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("value must be a non-empty string", field="value")
    if len(value) > MAX_VALUE:
        raise ValidationError(f"value is over {MAX_VALUE} characters", field="value")
    raw = value.strip()
    if kind == "email":
        email = raw.lower()
        if not _EMAIL.match(email):
            raise ValidationError(f"{raw!r} is not an e-mail address", field="value")
        return email
    if kind == "domain":
        host = re.sub(r"^[a-z]+://", "", raw.lower()).split("/")[0].split(":")[0]
        host = host.removeprefix("www.").strip(".")
        if not _DOMAIN.match(host):
            raise ValidationError(f"{raw!r} is not a domain name", field="value")
        return host
    if kind == "ip":
        try:
            return str(ipaddress.ip_network(raw, strict=False))
        except ValueError as exc:
            message = f"{raw!r} is not an IP address or network"
            raise ValidationError(message, field="value") from exc
    phrase = normalise_text(raw)
    if not phrase:
        raise ValidationError(f"{raw!r} has no words left after normalisation", field="value")
    return phrase


def _check_list(name: str) -> str:
    if name not in LISTS:
        raise ValidationError(f"list must be allow or block, got {name!r}", field="list")
    return name


# --- storage -------------------------------------------------------------------


def add_rule(
    store: Store, site_url: str | None, list_name: str, kind: str, value: Any, actor: str
) -> dict[str, Any]:
    """Add one entry (site_url None: all sites); a duplicate is a 409 Conflict."""
    list_name = _check_list(list_name)
    stored = normalise_value(kind, value)
    where = f"site {site_url}" if site_url else "all sites"
    duplicate = f"{kind} {stored!r} is already on the {list_name} list of {where}"

    def write() -> dict[str, Any]:
        with store.transaction() as c:
            site_id = store.site_id(site_url, c) if site_url else None
            scope = (
                t.site_rules.c.site_id.is_(None)
                if site_id is None
                else t.site_rules.c.site_id == site_id
            )
            exists = c.execute(
                select(t.site_rules.c.id).where(
                    scope,
                    t.site_rules.c.list == list_name,
                    t.site_rules.c.kind == kind,
                    t.site_rules.c.value == stored,
                )
            ).first()
            if exists is not None:  # the unique constraint cannot see NULL site ids
                raise Conflict(duplicate)
            result = c.execute(
                insert(t.site_rules).values(
                    site_id=site_id, list=list_name, kind=kind, value=stored, created_at=now()
                )
            )
            rule_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            target = site_key(site_url) if site_url else "*"
            store._audit(c, actor, "rule.add", target, {"list": list_name, "kind": kind})
        return {"id": rule_id, "site_id": site_id, "list": list_name, "kind": kind, "value": stored}

    return ensure_unique(write, duplicate)


def list_rules(
    store: Store, site_url: str | None = None, *, with_global: bool = True
) -> list[dict[str, Any]]:
    """Entries for ``site_url`` and for all sites (every entry when site_url is None).

    ``with_global=False``: only the site's own entries. A site key reads that way:
    the global lists hold other sites' spammers' e-mails and addresses.
    """
    if not with_global and not site_url:
        return []

    def run(c: Connection) -> list[dict[str, Any]]:
        query = select(
            t.site_rules.c.id,
            t.site_rules.c.site_id,
            t.sites.c.url.label("site"),
            t.site_rules.c.list,
            t.site_rules.c.kind,
            t.site_rules.c.value,
            t.site_rules.c.created_at,
        ).outerjoin(t.sites, t.sites.c.id == t.site_rules.c.site_id)
        if site_url:
            site_id = store.site_id(site_url, c)
            own = t.site_rules.c.site_id == site_id
            query = query.where(or_(t.site_rules.c.site_id.is_(None), own) if with_global else own)
        rows = c.execute(query.order_by(t.site_rules.c.id))
        return [dict(r._mapping) for r in rows]

    return store.read(run)


def remove_rule(store: Store, rule_id: int, actor: str, site_url: str | None = None) -> None:
    """Delete one entry; with ``site_url``, only an entry of that site may go."""
    with store.transaction() as c:
        query = delete(t.site_rules).where(t.site_rules.c.id == rule_id)
        if site_url:
            query = query.where(t.site_rules.c.site_id == store.site_id(site_url, c))
        if c.execute(query).rowcount == 0:
            raise NotFound(f"no rule {rule_id}" + (f" for site {site_url}" if site_url else ""))
        store._audit(c, actor, "rule.remove", site_url or "*", {"id": rule_id})


# --- matching ----------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    list: str
    kind: str
    value: str
    site_id: int | None

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
        return _network(self.value) if self.kind == "ip" else None

    def describe(self) -> str:
        scope = "site's" if self.site_id is not None else "global"
        return f"{KIND_WORDS[self.kind]} '{self.value}' is on the {scope} {self.list} list"


@functools.lru_cache(maxsize=4096)
def _network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def _on_domain(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def matches(entry: Entry, comment: Comment, text: str | None) -> bool:
    """Whether ``entry`` applies to ``comment`` (``text``: its normalised content)."""
    if entry.kind == "email":
        return comment.author_email.strip().lower() == entry.value
    if entry.kind == "ip":
        try:
            address = ipaddress.ip_address(comment.user_ip.strip())
        except ValueError:
            return False
        return entry.network is not None and address in entry.network
    if entry.kind == "domain":
        hosts = [comment.author_email.rsplit("@", 1)[-1].lower()] if comment.author_email else []
        hosts += url_domains(comment.author_url) + url_domains(comment.content)
        return any(_on_domain(h, entry.value) for h in hosts)
    return text is not None and _words(entry.value) in text


@functools.lru_cache(maxsize=4096)
def _words(phrase: str) -> str:
    """A phrase as space-delimited words: punctuation never hides or fakes a match."""
    return " " + " ".join(_WORD.findall(phrase)) + " "


class RuleSet:
    """The entries that apply to one site, as a scoring rule."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        # allow entries first: the first match decides
        self.entries = sorted(entries, key=lambda e: (e.list != "allow", e.site_id is None))
        self.has_phrases = any(e.kind == "phrase" for e in self.entries)
        # Names the entries: a verdict cache keys on it, so a list change is never served stale.
        self.fingerprint = (
            hashlib.sha256(repr(self.entries).encode()).hexdigest()[:16] if self.entries else ""
        )

    def __call__(self, comment: Comment) -> RuleHit | None:
        if not self.entries:
            return None
        text = _words(normalise_text(comment.content)) if self.has_phrases else None
        for entry in self.entries:
            if matches(entry, comment, text):
                block = entry.list == "block"
                return RuleHit(f"{entry.list}_list", entry.describe(), 1.0 if block else 0.0)
        return None


class RuleCache:
    """Every rule of the database, reloaded at most every ``ttl`` seconds per worker."""

    def __init__(self, store: Store, ttl: float) -> None:
        self.store = store
        self.ttl = ttl
        self._entries: list[Entry] = []
        self._by_site: dict[int | None, RuleSet] = {}
        self._expires = 0.0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        self._expires = 0.0

    def ruleset(self, site_id: int | None) -> RuleSet:
        if time.monotonic() >= self._expires:
            self._reload()
        found = self._by_site.get(site_id)
        if found is None:
            found = RuleSet([e for e in self._entries if e.site_id in (None, site_id)])
            self._by_site[site_id] = found
        return found

    def _reload(self) -> None:
        with self._lock:
            if time.monotonic() < self._expires:
                return
            rows = self.store.read(
                lambda c: c.execute(
                    select(t.site_rules.c.list, t.site_rules.c.kind, t.site_rules.c.value,
                           t.site_rules.c.site_id)
                ).all()
            )
            self._entries = [Entry(r.list, r.kind, r.value, r.site_id) for r in rows]
            self._by_site = {}
            self._expires = time.monotonic() + self.ttl


def site_ruleset(res: Resources, site_id: int | None) -> RuleSet | None:
    """The allow/block lists that apply to ``site_id`` (None if unreadable).

    A database that cannot be read costs the lists, never the verdict.
    """
    cache = res.site_rules
    if cache is None:
        cache = res.site_rules = RuleCache(res.store, res.settings.site_rules_ttl_seconds)
    try:
        return cache.ruleset(site_id)
    except Exception:  # fail open: the model still decides
        cache._expires = time.monotonic() + cache.ttl
        return None
