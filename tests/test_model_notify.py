"""Redis pub/sub notices of a model switch, and their failure modes."""

from __future__ import annotations

import threading
import time

import pytest

from service.registry.notify import Subscriber, publish


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
