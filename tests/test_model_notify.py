"""Redis pub/sub notices of a model switch, and their failure modes."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from service.registry.notify import CHANNEL, Subscriber, publish, scoped_channel


@pytest.mark.redis
def test_a_notice_reaches_the_subscriber(redis_url: str) -> None:
    got: list[str] = []
    seen = threading.Event()

    def on_change(family: str) -> None:
        got.append(family)
        seen.set()

    sub = Subscriber(redis_url, on_change)
    sub.start()
    try:
        assert sub.connected.wait(5)
        assert publish(redis_url, "spam")
        assert seen.wait(5)
        assert got == ["spam"]
    finally:
        sub.stop()


@pytest.mark.redis
def test_a_notice_stays_on_its_database(redis_url: str) -> None:
    """Pub/sub ignores Redis's numbered databases: a service on another database of
    the same server must not hear this one's notices (database 7: no test's own)."""
    got: list[str] = []
    sub = Subscriber(redis_url, got.append)
    sub.start()
    try:
        assert sub.connected.wait(5)
        other = redis_url.rsplit("/", 1)[0] + "/7"
        assert publish(other, "spam")
        time.sleep(0.5)
        assert got == []
        assert publish(redis_url, "toxicity")
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
        assert got == ["toxicity"]
    finally:
        sub.stop()
    # database 0 keeps the name releases before this one used
    assert scoped_channel(CHANNEL, redis.Redis(db=0)) == CHANNEL
    assert scoped_channel(CHANNEL, redis.Redis.from_url(other)) == CHANNEL + "@7"


def test_a_dead_redis_costs_little_and_raises_nothing() -> None:
    started = time.monotonic()
    assert publish("redis://127.0.0.1:1/0", "spam", timeout=0.2) is False
    assert time.monotonic() - started < 2
    assert publish("", "spam") is False
    sub = Subscriber("redis://127.0.0.1:1/0", lambda family: None)
    sub.start()
    time.sleep(0.3)
    assert sub.thread is not None and sub.thread.is_alive() and not sub.connected.is_set()
    sub.stop()
