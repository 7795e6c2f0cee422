"""The Redis client and its circuit breaker, against real (and deliberately broken)
redis-servers: a request never waits long for a dead or hung Redis."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from redis.connection import SSLConnection

from service import metrics
from service.cache.redis_client import RedisGate, make_client
from tests.conftest import RedisServer, free_port

TIMEOUT = 0.05
# One connect plus one read timeout; the rest is slack for a busy 2-core machine.
BOUND = 2 * TIMEOUT + 0.25


def errors(reason: str) -> float:
    return metrics.REDIS_ERRORS.labels(reason)._value.get()


@pytest.fixture
def hung_port() -> Iterator[int]:
    """A port that accepts TCP connections (kernel backlog) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "password", "db", "tls"),
    [
        ("redis://127.0.0.1:6379/3", None, 3, False),
        ("redis://:s3cret@127.0.0.1:6379/0", "s3cret", 0, False),
        ("redis://user:p%40ss@10.0.0.5:6380", "p@ss", 0, False),
        ("rediss://:s3cret@redis.example.net:6380/2", "s3cret", 2, True),
    ],
)
def test_urls_with_password_and_tls(url: str, password: str | None, db: int, tls: bool) -> None:
    client = make_client(url, TIMEOUT)
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs.get("password") == password
    assert kwargs.get("db", 0) == db
    assert (client.connection_pool.connection_class is SSLConnection) is tls
    assert kwargs["socket_timeout"] == TIMEOUT
    assert kwargs["socket_connect_timeout"] == TIMEOUT
    assert kwargs["retry"].get_retries() == 0  # redis-py 8 retries by default: not here


def test_password_protected_server(redis_server: Callable[..., RedisServer]) -> None:
    server = redis_server(password="pw-for-tests")
    good = RedisGate(server.url, timeout=TIMEOUT, retry_after=1)
    assert good.call(lambda c: c.set("k", "v") and c.get("k"), op="t") == b"v"
    wrong = RedisGate(server.url.replace("pw-for-tests", "nope"), timeout=TIMEOUT, retry_after=1)
    before = errors("auth")
    assert wrong.call(lambda c: c.ping(), op="t") is None  # refused, not raised
    assert errors("auth") == before + 1
    assert wrong.down


def test_dead_redis_costs_one_failure_then_nothing(caplog: pytest.LogCaptureFixture) -> None:
    gate = RedisGate(f"redis://127.0.0.1:{free_port()}/0", timeout=TIMEOUT, retry_after=60)
    skipped = errors("skipped")
    with caplog.at_level(logging.WARNING, logger="service.cache.redis_client"):
        started = time.perf_counter()
        assert gate.call(lambda c: c.ping(), op="t") is None
        assert time.perf_counter() - started < BOUND
        started = time.perf_counter()
        for _ in range(50):
            assert gate.call(lambda c: c.ping(), op="t") is None
        assert time.perf_counter() - started < 0.05  # skipped: no socket touched
    assert errors("skipped") == skipped + 50
    downs = [r for r in caplog.records if r.getMessage() == "redis.down"]
    assert len(downs) == 1  # once per outage, not per request


def test_hung_redis_waits_at_most_the_bound(hung_port: int) -> None:
    gate = RedisGate(f"redis://127.0.0.1:{hung_port}/0", timeout=TIMEOUT, retry_after=60)
    before = errors("timeout")
    started = time.perf_counter()
    assert gate.call(lambda c: c.get("x"), op="t") is None
    elapsed = time.perf_counter() - started
    assert TIMEOUT * 0.8 <= elapsed < BOUND
    assert errors("timeout") == before + 1


def test_breaker_notices_redis_coming_back(
    redis_server: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = redis_server()
    gate = RedisGate(server.url, timeout=TIMEOUT, retry_after=0.2)
    assert gate.call(lambda c: c.ping(), op="t") is True
    port = server.port
    server.stop()
    with caplog.at_level(logging.WARNING, logger="service.cache.redis_client"):
        for _ in range(5):
            assert gate.call(lambda c: c.ping(), op="t") is None
        assert gate.down
        server.port = port
        server.start()
        time.sleep(0.25)
        assert gate.call(lambda c: c.ping(), op="t") is True
    assert not gate.down
    events = [r.getMessage() for r in caplog.records]
    assert events.count("redis.down") == 1
    assert events.count("redis.back") == 1


def test_after_fork_drops_the_parents_connections(redis_url: str) -> None:
    gate = RedisGate(redis_url, timeout=TIMEOUT, retry_after=1)
    first = gate.client
    gate.after_fork()
    assert gate.client is not first
    assert gate.call(lambda c: c.ping(), op="t") is True


def test_readiness_reports_redis_as_optional(make_app, redis_server) -> None:  # type: ignore[no-untyped-def]
    server = redis_server()
    client = make_app(redis_url=server.url, redis_timeout_seconds=TIMEOUT).test_client()
    body = client.get("/readyz").get_json()
    assert body["checks"]["redis"] == {"ok": True, "required": False}
    server.stop()
    r = client.get("/readyz")
    assert r.status_code == 200  # Redis is optional: still ready
    assert r.get_json()["checks"]["redis"]["ok"] is False


def test_bad_redis_url_is_refused_at_start(make_app) -> None:  # type: ignore[no-untyped-def]
    from service.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="REDIS_URL"):
        make_app(redis_url="http://127.0.0.1:6379")


def test_real_redis_pipeline_round_trip(redis_url: str) -> None:
    gate = RedisGate(redis_url, timeout=TIMEOUT, retry_after=1)

    def run(c: redis.Redis) -> list[object]:
        pipe = c.pipeline(transaction=False)
        pipe.incr("commentmod:test")
        pipe.get("commentmod:test")
        return list(pipe.execute())

    assert gate.call(run, op="t") == [1, b"1"]
