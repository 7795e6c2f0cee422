"""Moderator accounts: argon2id password hashes, site assignment, the admin flag.

Functions take the :class:`~service.store.db.Store`; every change is one
transaction together with its audit entry. A moderator sees the sites assigned
to them, or every site when they are an admin.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from service.errors import Conflict, NotFound, ValidationError
from service.store import schema as t
from service.store.db import Store, _new_id, now, site_key

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 takes anything, but a megabyte "password" is an attack

# RFC 9106's second recommended profile (64 MiB, 3 passes, 4 lanes): argon2-cffi's default.
STANDARD = PasswordHasher()
# Cheap parameters so that test suites can create accounts quickly; refused in production.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
HASHERS = {"standard": STANDARD, "fast": FAST}
_DUMMY_HASHES: dict[tuple[int, int, int, int, int], str] = {}


def dummy_hash(hasher: PasswordHasher) -> str:
    """A hash made with ``hasher``'s own parameters, verified for unknown names so
    that they cost what a real name costs (a cheap dummy told names apart: 3 ms
    against 90 ms)."""
    key = (hasher.time_cost, hasher.memory_cost, hasher.parallelism, hasher.hash_len,
           hasher.salt_len)
    found = _DUMMY_HASHES.get(key)
    if found is None:
        found = _DUMMY_HASHES[key] = hasher.hash("not a real password")
    return found


def hasher_for(cost: str) -> PasswordHasher:
    return HASHERS[cost]


@dataclass(frozen=True)
class Moderator:
    id: int
    name: str
    is_admin: bool
    site_ids: frozenset[int]
    disabled: bool = False
    session_epoch: int = 0

    @property
    def audit_actor(self) -> str:
        return f"moderator:{self.name}"

    def can_see(self, site_id: int | None) -> bool:
        """Admins see everything; others only comments of their assigned sites."""
        return self.is_admin or (site_id is not None and site_id in self.site_ids)

    def visible_site_ids(self) -> frozenset[int] | None:
        """None means every site (admin)."""
        return None if self.is_admin else self.site_ids


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValidationError(
            "a moderator name is 1-100 letters, digits or _.@- and starts with a letter or digit",
            field="name",
        )
    return name


def check_password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValidationError(
            f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters", field="password"
        )
    return password


def _site_ids(c: Connection, store: Store, urls: Iterable[str]) -> list[int]:
    return [store.site_id(url, c) for url in urls]


def create(
    store: Store,
    name: str,
    password: str,
    *,
    admin: bool = False,
    sites: Iterable[str] = (),
    actor: str = "cli",
    hasher: PasswordHasher = STANDARD,
) -> Moderator:
    check_name(name)
    password_hash = hasher.hash(check_password(password))
    try:
        with store.transaction() as c:
            mod_id = _new_id(
                c.execute(
                    insert(t.moderators).values(
                        name=name, password_hash=password_hash, is_admin=admin, created_at=now()
                    )
                )
            )
            ids = _site_ids(c, store, sites)
            for site_id in ids:
                c.execute(insert(t.moderator_sites).values(moderator_id=mod_id, site_id=site_id))
            store._audit(c, actor, "moderator.create", name, {"admin": admin, "sites": sorted(ids)})
    except IntegrityError as exc:
        raise Conflict(f"a moderator named {name!r} already exists") from exc
    return Moderator(mod_id, name, admin, frozenset(ids))


def _load(c: Connection, cond: Any) -> tuple[Moderator, str] | None:
    row = c.execute(select(t.moderators).where(cond)).first()
    if row is None:
        return None
    ids = c.execute(
        select(t.moderator_sites.c.site_id).where(t.moderator_sites.c.moderator_id == row.id)
    ).scalars()
    mod = Moderator(
        row.id, row.name, bool(row.is_admin), frozenset(ids), row.disabled_at is not None,
        int(row.session_epoch or 0),
    )
    return mod, str(row.password_hash)


def get(store: Store, moderator_id: int) -> Moderator | None:
    """The live (not disabled) moderator with this id, or None."""
    found = store.read(lambda c: _load(c, t.moderators.c.id == moderator_id))
    if found is None or found[0].disabled:
        return None
    return found[0]


def by_name(store: Store, name: str) -> Moderator:
    found = store.read(lambda c: _load(c, t.moderators.c.name == name))
    if found is None:
        raise NotFound(f"no moderator named {name!r}")
    return found[0]


def verify(
    store: Store, name: str, password: str, *, hasher: PasswordHasher = STANDARD
) -> Moderator | None:
    """The moderator if ``password`` is theirs and the account is live, else None.

    Unknown names still cost one hash verification, so timing does not tell
    which names exist. A hash made with other parameters is upgraded in place.
    """
    if not isinstance(name, str) or not isinstance(password, str) or len(password) > MAX_PASSWORD:
        return None
    found = store.read(lambda c: _load(c, t.moderators.c.name == name)) if name else None
    stored = found[1] if found else dummy_hash(hasher)
    try:
        hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if found is None or found[0].disabled:
        return None
    mod = found[0]
    if hasher.check_needs_rehash(stored):
        new_hash = hasher.hash(password)
        with store.transaction() as c:
            c.execute(
                update(t.moderators)
                .where(t.moderators.c.id == mod.id)
                .values(password_hash=new_hash)
            )
    return mod


def list_all(store: Store) -> list[dict[str, Any]]:
    def run(c: Connection) -> list[dict[str, Any]]:
        out = []
        for row in c.execute(select(t.moderators).order_by(t.moderators.c.name)):
            urls = c.execute(
                select(t.sites.c.url)
                .join(t.moderator_sites, t.moderator_sites.c.site_id == t.sites.c.id)
                .where(t.moderator_sites.c.moderator_id == row.id)
                .order_by(t.sites.c.url)
            ).scalars()
            out.append(
                {
                    "name": row.name,
                    "is_admin": bool(row.is_admin),
                    "sites": list(urls),
                    "created_at": row.created_at,
                    "disabled_at": row.disabled_at,
                }
            )
        return out

    return store.read(run)


def _next_epoch() -> Any:
    return t.moderators.c.session_epoch + 1


def end_sessions(store: Store, mod: Moderator, *, actor: str, action: str) -> None:
    """Every session this moderator opened so far stops working (logout does this:
    a copied cookie is worthless after it), recorded as ``action`` in the audit log."""
    with store.transaction() as c:
        c.execute(
            update(t.moderators).where(t.moderators.c.id == mod.id).values(
                session_epoch=_next_epoch()
            )
        )
        store._audit(c, actor, action, mod.name, {})


def set_password(
    store: Store, name: str, password: str, *, actor: str = "cli",
    hasher: PasswordHasher = STANDARD,
) -> None:
    """A new password; every open session of the account ends with the old one."""
    new_hash = hasher.hash(check_password(password))
    with store.transaction() as c:
        result = c.execute(
            update(t.moderators)
            .where(t.moderators.c.name == name)
            .values(password_hash=new_hash, session_epoch=_next_epoch())
        )
        if result.rowcount == 0:
            raise NotFound(f"no moderator named {name!r}")
        store._audit(c, actor, "moderator.password", name, {})


def set_disabled(store: Store, name: str, disabled: bool = True, *, actor: str = "cli") -> None:
    """Disable (or re-enable) an account; a disabled moderator's sessions end for good
    (re-enabling does not bring them back: the epoch moved on)."""
    with store.transaction() as c:
        result = c.execute(
            update(t.moderators)
            .where(t.moderators.c.name == name)
            .values(disabled_at=now() if disabled else None, session_epoch=_next_epoch())
        )
        if result.rowcount == 0:
            raise NotFound(f"no moderator named {name!r}")
        store._audit(c, actor, "moderator.disable" if disabled else "moderator.enable", name, {})


def assign(
    store: Store,
    name: str,
    *,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    admin: bool | None = None,
    actor: str = "cli",
) -> Moderator:
    """Add or remove site assignments and optionally change the admin flag."""
    removed = [site_key(u) for u in remove]
    with store.transaction() as c:
        found = _load(c, t.moderators.c.name == name)
        if found is None:
            raise NotFound(f"no moderator named {name!r}")
        mod = found[0]
        added = _site_ids(c, store, add)
        for site_id in set(added) - mod.site_ids:
            c.execute(insert(t.moderator_sites).values(moderator_id=mod.id, site_id=site_id))
        if removed:
            gone = _site_ids(c, store, removed)
            c.execute(
                delete(t.moderator_sites).where(
                    t.moderator_sites.c.moderator_id == mod.id,
                    t.moderator_sites.c.site_id.in_(gone),
                )
            )
        if admin is not None:
            c.execute(
                update(t.moderators).where(t.moderators.c.id == mod.id).values(is_admin=admin)
            )
        store._audit(
            c,
            actor,
            "moderator.assign",
            name,
            {"added": sorted(added), "removed": removed, "admin": admin},
        )
        result = _load(c, t.moderators.c.id == mod.id)
    assert result is not None  # noqa: S101 - read back inside the same transaction
    return result[0]
