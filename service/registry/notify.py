"""Tell every worker of every instance that the current model changed.

Where Redis is configured, ``commentmod models promote|rollback`` (and
``train --promote``) publish the family on :data:`CHANNEL`; each gunicorn
worker runs one daemon thread, started after the fork, that subscribes and
reloads the model at once. The load happens in that thread, so no request
waits for it. Without Redis (or while it is down) the workers still poll the
pointer every ``reload_interval_seconds``: the notice only makes it faster.

The client is our own small one: retries off and short timeouts, so a dead
Redis costs the subscriber a reconnect every few seconds and the CLI at most
one timeout, never a request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

log = logging.getLogger(__name__)

CHANNEL = "commentmod:models"  # pub/sub channel; messages are the family name, no TTL


def scoped_channel(base: str, client: redis.Redis) -> str:
    """``base`` for the database ``client`` uses. Redis pub/sub ignores the numbered
    databases: two services on one Redis server, each on its own database (staging
    beside production, or several sites), heard each other's model notices and label
    invalidations. Database 0 keeps the plain name, so workers of an older release
    on it still hear a newer one while it rolls out."""
    db = int(client.get_connection_kwargs().get("db") or 0)
    return base if db == 0 else f"{base}@{db}"
RECONNECT_SECONDS = 2.0
LISTEN_TIMEOUT_SECONDS = 1.0


def _client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry_on_timeout=False,
        retry=None,
        health_check_interval=0,
    )


def publish(url: str, family: str, timeout: float = 1.0) -> bool:
    """Announce a pointer change; False (logged) when Redis cannot be reached."""
    if not url:
        return False
    client = _client(url, timeout)
    try:
        client.publish(scoped_channel(CHANNEL, client), family)
        return True
    except redis.RedisError as exc:
        log.warning("model.notify_failed", extra={"error": str(exc)})
        return False
    finally:
        client.close()


class Subscriber:
    """A daemon thread that calls ``on_change(family)`` for every notice."""

    def __init__(self, url: str, on_change: Callable[[str], None]) -> None:
        self.url = url
        self.on_change = on_change
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.connected = threading.Event()

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="model-notify", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:  # Redis down or restarted: poll until it is back
                self.connected.clear()
                log.info("model.notify_reconnect", extra={"error": str(exc)})
                self._stop.wait(RECONNECT_SECONDS)

    def _listen(self) -> None:
        client = _client(self.url, LISTEN_TIMEOUT_SECONDS + 4)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(scoped_channel(CHANNEL, client))
            self.connected.set()
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=LISTEN_TIMEOUT_SECONDS)
                if message and message.get("type") == "message":
                    family = message["data"].decode("utf-8", "replace")
                    started = time.monotonic()
                    self.on_change(family)
                    log.info(
                        "model.notified",
                        extra={"family": family, "ms": round((time.monotonic() - started) * 1e3)},
                    )
        finally:
            pubsub.close()
            client.close()
