"""One login throttle for every way a moderator proves who they are.

The web login and the moderation API's HTTP Basic both call :func:`check`
before the password hash runs and :func:`failed` after a wrong one, so a name
locked out of one is locked out of the other, and a guess never costs argon2
once the limit is reached. Failures are counted per name and per client
address within a window: in Redis when it is configured (shared by every
worker; keys in service/redis_keys.py), otherwise in the database's audit log,
which every worker shares too. Each failure is an audit entry
(``login.failed``) whichever counter is used.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from service.cache import keys as redis_keys
from service.errors import RateLimited
from service.resources import Resources
from service.store import schema as t
from service.store.db import now

NAME_FAILURES = 10  # per name and window: bounds guessing one account's password
ADDRESS_FAILURES = 30  # per client address and window: bounds spraying many names
WINDOW = timedelta(minutes=15)
FAILED = "login.failed"


def _digest(value: str) -> str:
    """Redis keys carry digests, never names or addresses."""
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:32]


def _actor(address: str) -> str:
    return f"login@{address}"[:200]


def _redis(res: Resources) -> Any:
    gate = res.redis
    return gate if gate is not None and not gate.skipping() else None


def _counts_from_redis(gate: Any, name: str, address: str) -> tuple[int, int] | None:
    keys = [redis_keys.login_name(_digest(name)), redis_keys.login_address(_digest(address))]
    values = gate.call(lambda r: r.mget(keys), op="login_throttle")
    if values is None:
        return None
    return int(values[0] or 0), int(values[1] or 0)


def _counts_from_audit(res: Resources, name: str, address: str) -> tuple[int, int]:
    since = now() - WINDOW
    failed = (t.audit_log.c.action == FAILED) & (t.audit_log.c.at >= since)

    def run(c: Any) -> tuple[int, int]:
        count = select(func.count()).select_from(t.audit_log)
        by_name = c.execute(count.where(failed, t.audit_log.c.target == name[:200])).scalar_one()
        by_address = c.execute(
            count.where(failed, t.audit_log.c.actor == _actor(address))
        ).scalar_one()
        return int(by_name), int(by_address)

    result: tuple[int, int] = res.store.read(run)
    return result


def check(res: Resources, name: str, address: str) -> None:
    """Refuse (429) a name or an address that failed too often within the window."""
    gate = _redis(res)
    counts = _counts_from_redis(gate, name, address) if gate is not None else None
    by_name, by_address = counts if counts is not None else _counts_from_audit(res, name, address)
    if by_name >= NAME_FAILURES or by_address >= ADDRESS_FAILURES:
        minutes = int(WINDOW.total_seconds() // 60)
        raise RateLimited(
            f"too many failed logins from this address or for this name; "
            f"try again in {minutes} minutes",
            retry_after=int(WINDOW.total_seconds()),
        )


def failed(res: Resources, name: str, address: str, via: str) -> None:
    """Count one failed login and write it to the audit log."""
    res.store.audit(_actor(address), FAILED, name[:200], {"via": via, "ip": address})
    gate = _redis(res)
    if gate is None:
        return
    ttl = int(WINDOW.total_seconds())
    keys = [redis_keys.login_name(_digest(name)), redis_keys.login_address(_digest(address))]

    def count(r: Any) -> None:
        pipe = r.pipeline(transaction=False)
        for key in keys:  # the window starts at the first failure
            pipe.set(key, 0, ex=ttl, nx=True)
            pipe.incr(key)
        pipe.execute()

    gate.call(count, op="login_throttle")
