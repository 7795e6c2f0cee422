"""The lean WSGI path (service/api/hotpath.py) answers exactly as Flask's cycle does.

Every request here is sent to two apps on the same database: one with the hot
path (the default), one with ``hot_path=False``. Status, headers and body must
be the same, but for the new guid each check is given. The rest of the suite
runs against the hot path as well (it is the default).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from prometheus_client import REGISTRY

from service.api.hotpath import HotPath
from service.errors import ModelError
from service.resources import EXTENSION, Resources

BLOG = "https://news.example"
SPAM = "Check out my channel and SUBSCRIBE!!! http://bit.ly/free-money win an iPhone"
HAM = "The council should publish the budget before the vote, not after. Good reporting."
VARYING = {"x-akismet-guid", "date", "server"}


def res_of(app: Flask) -> Resources:
    res: Resources = app.extensions[EXTENSION]
    return res


def pair(make_app: Callable[..., Flask], **settings: Any) -> tuple[Flask, Flask]:
    hot = make_app(**settings)
    plain = make_app(hot_path=False, **settings)
    assert isinstance(hot.wsgi_app, HotPath)
    assert not isinstance(plain.wsgi_app, HotPath)
    return hot, plain


def answer(app: Flask, path: str, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    r = app.test_client().post(path, **kwargs)
    headers = {k.lower(): v for k, v in r.headers.items() if k.lower() not in VARYING}
    body: Any = r.get_json(silent=True)
    if isinstance(body, dict):
        body.pop("guid", None)
    else:
        body = r.get_data()
    return r.status_code, headers, body


def same(hot: Flask, plain: Flask, path: str, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    a, b = answer(hot, path, **kwargs), answer(plain, path, **kwargs)
    assert a == b
    return a


JSON_CASES: list[dict[str, Any]] = [
    {"json": {"content": HAM}},
    {"json": {"content": SPAM, "author": "bob", "user_ip": "203.0.113.9"}},
    {"json": {"content": HAM, "created_at": "2026-11-27T10:00:00Z"}},
    # what Flask must answer (the hot path hands them over untouched)
    {"json": {"content": "a\u0000b"}},
    {"data": b'{"content": "\\ud800"}', "content_type": "application/json"},
    {"json": {"content": ""}},
    {"json": {"content": 5}},
    {"json": {"content": HAM, "created_at": "yesterday"}},
    {"json": ["not", "an", "object"]},
    {"data": b"{not json", "content_type": "application/json"},
    {"data": b"\xff\xfe", "content_type": "application/json"},
    {"data": b"", "content_type": "application/json"},
    {"data": b"content=hi", "content_type": "application/x-www-form-urlencoded"},
    {"json": {"content": HAM}, "query_string": "x=1"},
    {"json": {"content": HAM}, "headers": {"Authorization": "Basic abc"}},
    {"json": {"content": HAM}, "headers": {"Authorization": "Bearer nosuchkey0000"}},
    {"json": {"content": "x" * 70_000}},
]


def test_json_check_answers_as_flask_does(make_app: Callable[..., Flask]) -> None:
    hot, plain = pair(make_app)
    statuses = [same(hot, plain, "/api/v1/check", **case)[0] for case in JSON_CASES]
    assert statuses[:3] == [200, 200, 200]
    assert all(400 <= s < 500 for s in statuses[3:12]), statuses


def test_a_site_key_and_production_auth(make_app: Callable[..., Flask]) -> None:
    hot, plain = pair(make_app, require_auth=True)
    key = res_of(hot).store.create_key(BLOG)[0]
    status, _, body = same(hot, plain, "/api/v1/check", json={"content": HAM},
                           headers={"Authorization": f"Bearer {key}"})
    assert status == 200 and body["verdict"] == "ham"
    status, _, body = same(hot, plain, "/api/v1/check", json={"content": HAM})
    assert status == 401


def form(key: str, **fields: str) -> dict[str, Any]:
    values = {"api_key": key, "blog": BLOG, "user_ip": "203.0.113.9",
              "comment_content": HAM, **fields}
    return {"data": values}


def test_comment_check_answers_as_flask_does(make_app: Callable[..., Flask]) -> None:
    hot, plain = pair(make_app)
    key = res_of(hot).store.create_key(BLOG)[0]
    cases = [
        form(key),
        form(key, comment_content=SPAM, comment_author="viagra-test-123"),
        form(key, comment_content=SPAM, comment_author="bob", blog_charset="ISO-8859-1"),
        form(key, comment_content=SPAM, is_test="1", comment_type="comment"),
        form(key, user_ip=""),
        form(key, blog="https://elsewhere.example"),
        form("nosuchkey000"),
        form(key, comment_content="a\u0000b"),
        form(key, comment_content="caf\u00e9 au lait, un bon article"),  # not ASCII: Flask
        {"json": {"comment_content": HAM}},
    ]
    for case in cases:
        status, _, _ = same(hot, plain, "/1.1/comment-check", **case)
        assert status == 200


def test_an_error_after_the_check_began_is_the_apps_answer(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error raised inside the check (here: no model to score with) is answered
    by the app's handlers, and for Akismet by the blueprint's, as in Flask's cycle."""
    hot, plain = pair(make_app)
    key = res_of(hot).store.create_key(BLOG)[0]

    def no_model() -> None:
        raise ModelError("no model is loaded")

    for app in (hot, plain):
        monkeypatch.setattr(res_of(app).models, "scorer", no_model)
    status, _, body = same(hot, plain, "/api/v1/check", json={"content": HAM})
    assert status == 503 and body["error"]["code"] == "model_unavailable"
    status, headers, _ = same(hot, plain, "/1.1/comment-check", **form(key))
    assert status == 503 and headers["x-akismet-error"] == "no model is loaded"
    before = counted("api.check", "503")
    hot.test_client().post("/api/v1/check", json={"content": HAM})
    assert counted("api.check", "503") == before + 1


def test_rate_limits_are_flasks(make_app: Callable[..., Flask]) -> None:
    """With limits configured the hot path hands every request to Flask-Limiter."""
    app = make_app(rate_limit="2/minute")
    client = app.test_client()
    codes = [client.post("/api/v1/check", json={"content": HAM}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def counted(endpoint: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "commentmod_requests_total", {"endpoint": endpoint, "status": status})
    return value or 0.0


def test_the_hot_path_counts_requests_like_the_hooks(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    before = counted("api.check", "200")
    r = app.test_client().post("/api/v1/check", json={"content": HAM})
    assert r.status_code == 200
    assert r.headers["X-Frame-Options"] == "DENY"
    assert counted("api.check", "200") == before + 1
