"""Rate limits per API key and per client address (Flask-Limiter), on the JSON API and
in the Akismet protocol's words."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from service.api import limits
from service.errors import ConfigurationError
from tests.conftest import RedisServer

BODY = {"content": "The council should publish the budget before the vote."}


def site_keys(app: Flask, *names: str) -> dict[str, str]:
    """Real site keys (the APIs refuse unknown keys before any limit applies)."""
    from service.resources import EXTENSION

    store = app.extensions[EXTENSION].store
    return {name: store.create_key(f"https://{name}.example")[0] for name in names}


def test_off_by_default(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    assert {client.post("/api/v1/check", json=BODY).status_code for _ in range(30)} == {200}


@pytest.mark.parametrize("storage", ["memory", "redis"])
def test_429_with_retry_after_past_the_limit(make_app: Callable[..., Flask], storage: str,
                                            request: pytest.FixtureRequest) -> None:
    settings: dict[str, object] = {"rate_limit": "3/minute"}
    if storage == "redis":
        settings["redis_url"] = request.getfixturevalue("redis_url")
    client = make_app(**settings).test_client()
    codes = [client.post("/api/v1/check", json=BODY).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    r = client.post("/api/v1/check", json=BODY)
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert r.get_json()["error"]["code"] == "rate_limited"
    assert client.get("/healthz").status_code == 200  # only the API is limited


def test_limits_are_per_key_and_per_address(make_app: Callable[..., Flask],
                                            redis_url: str) -> None:
    app = make_app(rate_limit="2/minute", redis_url=redis_url)
    client = app.test_client()
    keys = site_keys(app, "a", "b", "c", "d")

    def post(key: str, ip: str) -> int:
        return client.post("/api/v1/check", json=BODY,
                           headers={"Authorization": f"Bearer {keys[key]}"},
                           environ_base={"REMOTE_ADDR": ip}).status_code

    assert [post("a", "10.0.0.1"), post("a", "10.0.0.2")] == [200, 200]
    assert post("a", "10.0.0.3") == 429  # key a is spent, whatever the address
    assert post("b", "10.0.0.3") == 200  # another key from a fresh address is not
    assert post("c", "10.0.0.1") == 200
    assert post("d", "10.0.0.1") == 429  # address 10.0.0.1 is spent, whatever the key


def test_akismet_endpoints_answer_with_alert_headers(make_app: Callable[..., Flask]) -> None:
    app = make_app(rate_limit="2/minute")
    client = app.test_client()
    keys = site_keys(app, "news", "other")
    form = {"blog": "https://news.example", "user_ip": "1.2.3.4",
            "comment_content": "The council should publish the budget."}
    statuses = [client.post("/1.1/comment-check", data={**form, "api_key": keys["news"]},
                            environ_base={"REMOTE_ADDR": f"10.0.1.{i}"}).status_code
                for i in range(2)]
    assert statuses == [200, 200]
    ok = client.post("/1.1/comment-check",
                     data={**form, "blog": "https://other.example", "api_key": keys["other"]},
                     environ_base={"REMOTE_ADDR": "10.0.2.1"})
    assert ok.get_data(as_text=True) in {"true", "false"}  # the body survived the limiter
    r = client.post("/1.1/comment-check", data={**form, "api_key": keys["news"]},
                    environ_base={"REMOTE_ADDR": "10.0.1.9"})
    assert r.status_code == 429
    assert r.headers["X-akismet-alert-code"] == limits.AKISMET_ALERT_CODE
    assert "Rate limit" in r.headers["X-akismet-alert-msg"]
    assert int(r.headers["Retry-After"]) >= 1
    # The key in the host name is the same key (host names arrive lower-cased).
    r = client.post("/1.1/comment-check", data=form, base_url=f"http://{keys['news'].upper()}.rest.akismet.com",
                    environ_base={"REMOTE_ADDR": "10.0.1.10"})
    assert r.status_code == 429


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"headers": {"Authorization": "Bearer SiteKey1"}}, "sitekey1"),
        ({"headers": {"X-API-Key": "k2"}}, "k2"),
        ({"data": {"api_key": "k3"}}, "k3"),
        ({"data": {"key": "k4", "blog": "x"}}, "k4"),
        ({"base_url": "http://k5.rest.akismet.com"}, "k5"),
        ({"base_url": "http://rest.akismet.com"}, ""),
        ({"headers": {"Authorization": "Basic abc"}}, ""),
        ({"json": {"api_key": "not-read-from-json"}}, ""),
        ({}, ""),
    ],
)
def test_request_api_key(app: Flask, kwargs: dict[str, object], expected: str) -> None:
    with app.test_request_context("/1.1/comment-check", method="POST", **kwargs):  # type: ignore[arg-type]
        assert limits.request_api_key() == expected


@pytest.mark.parametrize("bad", ["lots", "10 per fortnight", "/minute"])
def test_bad_limit_is_refused_at_start(make_app: Callable[..., Flask], bad: str) -> None:
    with pytest.raises(ConfigurationError, match="RATE_LIMIT"):
        make_app(rate_limit=bad)


def test_dead_redis_never_refuses_a_request(make_app: Callable[..., Flask],
                                            redis_server: Callable[..., RedisServer]) -> None:
    server = redis_server()
    client = make_app(rate_limit="100/minute", redis_url=server.url,
                      redis_timeout_seconds=0.05).test_client()
    assert client.post("/api/v1/check", json=BODY).status_code == 200
    server.stop()
    assert {client.post("/api/v1/check", json=BODY).status_code for _ in range(5)} == {200}


def test_limit_counters_live_under_the_namespace(make_app: Callable[..., Flask],
                                                 redis_url: str) -> None:
    import redis

    client = make_app(rate_limit="5/minute", redis_url=redis_url).test_client()
    client.post("/api/v1/check", json=BODY, headers={"Authorization": "Bearer secret-key"})
    names = [k.decode() for k in redis.Redis.from_url(redis_url).keys("*")]
    limit_keys = [k for k in names if "limit" in k]
    assert limit_keys and all(k.startswith("commentmod:limits") for k in limit_keys)
    assert not any("secret-key" in k for k in names)  # keys are hashed
