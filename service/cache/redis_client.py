"""The injected Redis client, behind a circuit breaker: Redis may fail, requests may not.

redis-py 8 retries a failed command by default (about 0.5-0.7 s per request
against a dead server, field notes); here retries are off, connect and read
timeouts are ``redis_timeout_seconds``, and after a failure Redis is skipped for
``redis_retry_after_seconds``. The warning is logged once per outage and the
return once; every failure and every skipped call is counted in
``commentmod_redis_errors_total``.

The bound: while the breaker is closed, one call waits at most one connect
timeout plus one read timeout (``2 x redis_timeout_seconds``, 100 ms by default);
the first failure opens the breaker, so the calls after it in the same request
and in the next ``redis_retry_after_seconds`` do not wait at all.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    NoPermissionError,
    NoScriptError,
)
from redis.retry import Retry

from service import metrics

log = logging.getLogger(__name__)
T = TypeVar("T")


def client_options(timeout: float) -> dict[str, Any]:
    """redis-py options for the hot path: short timeouts, no retries."""
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
    }


def make_client(url: str, timeout: float) -> redis.Redis:
    """A client for ``redis://``, ``rediss://`` (TLS) or ``unix://`` URLs, password
    and db number included (``rediss://:secret@host:6380/2``)."""
    return redis.Redis.from_url(url, **client_options(timeout))


class Script:
    """A Lua script run by its SHA (``EVALSHA``), loaded again if the server lost it.

    One call per item of ``calls`` (each a tuple of keys), all in one round trip.
    redis-py's own ``Script`` in a pipeline asks ``SCRIPT EXISTS`` on every
    execute: a second round trip per request, which this avoids. ``NOSCRIPT``
    means the server ran nothing, so loading and running again is safe.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    def run(
        self,
        client: redis.Redis,
        calls: list[tuple[str, ...]],
        args: tuple[Any, ...] = (),
        before: list[tuple[Any, ...]] | None = None,
    ) -> list[Any]:
        """The script's replies, one per call. ``before``: commands sent first in the
        same round trip (idempotent ones: they run again if the script was missing)."""
        try:
            return self._run(client, calls, args, before or [])
        except NoScriptError:
            client.script_load(self.source)
            return self._run(client, calls, args, before or [])

    def _run(
        self,
        client: redis.Redis,
        calls: list[tuple[str, ...]],
        args: tuple[Any, ...],
        before: list[tuple[Any, ...]],
    ) -> list[Any]:
        if len(calls) == 1 and not before:
            keys = calls[0]
            return [client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)]
        pipe = client.pipeline(transaction=False)
        for command in before:
            pipe.execute_command(*command)
        for keys in calls:
            pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        return list(pipe.execute())[len(before):]


def _reason(exc: BaseException) -> str:
    if isinstance(exc, AuthenticationError | AuthorizationError | NoPermissionError):
        return "auth"
    if isinstance(exc, redis.TimeoutError | TimeoutError):
        return "timeout"
    if isinstance(exc, redis.ConnectionError | OSError):
        return "connection"
    return "error"


class RedisGate:
    """One client per process and the breaker in front of it.

    :meth:`call` runs a function with the client and returns its result, or
    ``None`` when Redis failed or is being skipped: callers carry on without it.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        retry_after: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.retry_after = retry_after
        self._clock = clock
        self._client: redis.Redis | None = None
        self._skip_until = 0.0
        self._down_since: float | None = None

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = make_client(self.url, self.timeout)
        return self._client

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def skipping(self) -> bool:
        return self._clock() < self._skip_until

    def call(self, fn: Callable[[redis.Redis], T], *, op: str) -> T | None:
        if self.skipping():
            metrics.REDIS_ERRORS.labels("skipped").inc()
            return None
        try:
            result = fn(self.client)
        except (redis.RedisError, OSError) as exc:
            self._failed(exc, op)
            return None
        if self._down_since is not None:
            self._recovered()
        return result

    def probe(self) -> dict[str, Any]:
        """Readiness: ping now (even while the breaker is open) and report."""
        try:
            self.client.ping()
        except (redis.RedisError, OSError) as exc:
            self._failed(exc, "ping")
            return {"ok": False, "required": False, "error": _reason(exc)}
        if self._down_since is not None:
            self._recovered()
        return {"ok": True, "required": False}

    def after_fork(self) -> None:
        """Forget the parent's connections; the worker opens its own on first use."""
        self._client = None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _failed(self, exc: BaseException, op: str) -> None:
        now = self._clock()
        reason = _reason(exc)
        metrics.REDIS_ERRORS.labels(reason).inc()
        self._skip_until = now + self.retry_after
        if self._down_since is None:
            self._down_since = now
            log.warning(
                "redis.down",
                extra={
                    "op": op,
                    "reason": reason,
                    "error": str(exc)[:200],
                    "skip_seconds": self.retry_after,
                },
            )
        # Drop pooled sockets: a server that came back must get fresh connections.
        if self._client is not None:
            self._client.connection_pool.disconnect()

    def _recovered(self) -> None:
        outage = self._clock() - (self._down_since or self._clock())
        self._down_since = None
        log.warning("redis.back", extra={"outage_seconds": round(outage, 3)})
