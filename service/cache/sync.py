"""One thread per worker that keeps its verdict tier in step with every other worker.

With Redis, a repeat a worker has already scored is answered from its own
tier without a round trip (service/cache/verdict_cache.py). Two things make
that safe, and both live here:

- **invalidation by pub/sub**: feedback publishes the comment's fields digest
  on :data:`service.cache.keys.INVALIDATE_CHANNEL`; this thread, subscribed,
  drops the comment's entries at once (and tells the label memory to read the
  new label). An entry is answered without Redis only if the subscription was
  up for its whole life (:attr:`CacheSync.healthy_since`): while the
  subscription is down, or before it is confirmed, every check asks Redis and
  compares generations, as before;
- **flood counts in batches**: every ``cache_sync_seconds`` it sends this
  worker's unsent flood increments (and the verdicts waiting for a round trip)
  in one pipeline and learns the totals of all workers.

The thread never serves a request and never raises: a Redis that is down costs
a reconnect every ``RECONNECT_SECONDS``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable

import redis

from service.cache import keys
from service.registry.notify import scoped_channel

log = logging.getLogger(__name__)

RECONNECT_SECONDS = 1.0
NEVER = math.inf


class CacheSync:
    """The subscription and the periodic flush; see the module doc."""

    def __init__(
        self,
        url: str,
        *,
        interval: float,
        timeout: float,
        on_message: Callable[[str], None],
        tick: Callable[[], None],
        on_down: Callable[[], None],
    ) -> None:
        self.url = url
        self.interval = interval
        self.timeout = timeout
        self.on_message = on_message
        self.tick = tick
        self.on_down = on_down
        # When the current subscription was confirmed (monotonic); NEVER while down.
        self.healthy_since = NEVER
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None

    @property
    def healthy(self) -> bool:
        return self.healthy_since != NEVER

    def start(self) -> None:
        self._stop.clear()
        self.healthy_since = NEVER
        self.thread = threading.Thread(target=self._run, name="cache-sync", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self.healthy_since = NEVER

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:  # Redis down, restarted or unreachable
                self._down()
                log.info("cache.sync_reconnect", extra={"error": str(exc)[:200]})
                self._stop.wait(RECONNECT_SECONDS)
        self._down()

    def _down(self) -> None:
        if self.healthy_since != NEVER:
            self.healthy_since = NEVER
            self.on_down()

    def _listen(self) -> None:
        # Reads wait up to one interval for a message; a dead peer is found by the
        # health check (a PING every few intervals), not by a long read.
        client = redis.Redis.from_url(
            self.url,
            socket_connect_timeout=max(self.timeout, 0.5),
            socket_timeout=self.interval + 5.0,
            retry=None,
            health_check_interval=max(1, int(self.interval * 10)),
        )
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(scoped_channel(keys.INVALIDATE_CHANNEL, client))
            deadline = time.monotonic() + 5.0
            while not self._stop.is_set():  # the confirmation, before anything is trusted
                message = pubsub.get_message(timeout=0.5)
                if message and message.get("type") == "subscribe":
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("no confirmation of the subscription")
            self.healthy_since = time.monotonic()
            next_tick = time.monotonic()
            while not self._stop.is_set():
                wait = max(0.0, next_tick - time.monotonic())
                message = pubsub.get_message(timeout=wait)
                while message is not None:
                    if message.get("type") == "message":
                        self.on_message(message["data"].decode("ascii", "replace"))
                    message = pubsub.get_message(timeout=0)
                if time.monotonic() >= next_tick:
                    self.tick()
                    next_tick = time.monotonic() + self.interval
        finally:
            with contextlib.suppress(Exception):  # closing a broken connection
                pubsub.close()
                client.close()
