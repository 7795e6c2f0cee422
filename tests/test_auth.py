"""Site-key authentication: where keys are read from, and the JSON API's decision
(anonymous allowed in the single-machine default, refused in production)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.api.auth import KeyCache, form_key, host_key, key_info
from service.resources import EXTENSION
from service.store import migrate
from service.store.db import KEY_ALPHABET, KEY_LENGTH, Store, engine_for

HAM = "The council should publish the budget before the vote, not after. Good reporting."
SPAM = "Check out my channel and SUBSCRIBE!!! http://bit.ly/free-money win an iPhone"


def store_of(app: Flask) -> Store:
    return app.extensions[EXTENSION].store  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("abc123def456.rest.akismet.com", "abc123def456"),
        ("ABC123DEF456.REST.AKISMET.COM", "abc123def456"),
        ("abc123def456.rest.akismet.com:8080", "abc123def456"),
        ("rest.akismet.com", ""),
        ("a.b.rest.akismet.com", ""),
        ("127.0.0.1:5000", ""),
        ("abc.rest.akismet.com.evil.example", ""),
        ("[::1]:8000", ""),
        ("", ""),
    ],
)
def test_host_key(host: str, key: str) -> None:
    assert host_key(host) == key


@pytest.mark.parametrize(
    ("fields", "host", "key"),
    [
        ({"api_key": "aaa", "key": "bbb"}, "ccc.rest.akismet.com", "aaa"),
        ({"key": "bbb"}, "ccc.rest.akismet.com", "bbb"),
        ({"api_key": "  ", "key": ""}, "ccc.rest.akismet.com", "ccc"),
        ({}, "localhost", ""),
    ],
)
def test_form_key_precedence(fields: dict[str, str], host: str, key: str) -> None:
    assert form_key(fields, host) == key


def test_key_info_finds_live_keys_only(app: Flask) -> None:
    res = app.extensions[EXTENSION]
    store = res.store
    key, site_id = store.create_key("https://www.News.Example/")
    assert len(key) == KEY_LENGTH and set(key) <= set(KEY_ALPHABET)
    info = key_info(res, key)
    assert info is not None and info.site_id == site_id and info.site_url == "news.example"
    assert key_info(res, f"  {key.upper()} ") == info  # host names arrive lower-cased
    for bad in ("", "   ", "x" * 65, key[:-1], "'; drop table api_keys; --"):
        assert key_info(res, bad) is None
    store.revoke_key(key)
    assert key_info(res, key, fresh=True) is None  # the database knows at once
    assert key_info(res, key) == info  # this worker trusts its entry for key_cache_seconds


def test_key_cache_drops_a_revoked_key_after_its_ttl(store: Store) -> None:
    cache = KeyCache(store, ttl=0.2)
    key, _ = store.create_key("news.example")
    assert cache.find(key) is not None
    store.revoke_key(key)
    assert cache.find(key) is not None  # still inside the time to live
    time.sleep(0.25)
    assert cache.find(key) is None
    assert cache.find(key) is None  # and a refused key is never cached


def test_key_cache_is_bounded_and_never_caches_unknown_keys(store: Store) -> None:
    cache = KeyCache(store, ttl=60, size=2)
    keys = [store.create_key(f"site{i}.example")[0] for i in range(3)]
    for key in keys:
        assert cache.find(key) is not None
    assert len(cache._entries) == 2
    assert cache.find("unknownkey00") is None and len(cache._entries) == 2
    fresh, _ = store.create_key("late.example")
    assert cache.find(fresh) is not None  # created after the first lookups: found at once


# --- the JSON API --------------------------------------------------------------


def test_anonymous_check_is_allowed_in_the_default(client: FlaskClient, app: Flask) -> None:
    r = client.post("/api/v1/check", json={"content": HAM})
    assert r.status_code == 200
    row = store_of(app).find_comment(guid=r.get_json()["guid"])
    assert row is not None and row["site_id"] is None


def test_bearer_key_binds_the_check_to_its_site(client: FlaskClient, app: Flask) -> None:
    key, site_id = store_of(app).create_key("news.example")
    r = client.post("/api/v1/check", json={"content": HAM},
                    headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200
    assert store_of(app).find_comment(guid=r.get_json()["guid"])["site_id"] == site_id  # type: ignore[index]
    r = client.post("/api/v1/check/batch", json={"comments": [{"content": SPAM}]},
                    headers={"Authorization": f"bearer {key.upper()}"})
    guid = r.get_json()["results"][0]["guid"]
    assert store_of(app).find_comment(guid=guid)["site_id"] == site_id  # type: ignore[index]


BAD_HEADERS = ["Bearer nope", "Bearer ", "Basic dXNlcjpwYXNz", "Token x", "Bearer " + "x" * 500]


def test_a_present_but_invalid_key_is_always_401(client: FlaskClient) -> None:
    # One app for the whole table: building one costs about a second.
    for header in BAD_HEADERS:
        for path, body in (("/api/v1/check", {"content": HAM}),
                           ("/api/v1/check/batch", {"comments": [{"content": HAM}]}),
                           ("/api/v1/feedback", {"label": "spam", "content": HAM})):
            r = client.post(path, json=body, headers={"Authorization": header})
            assert r.status_code == 401, (path, header)
            assert r.get_json()["error"]["code"] == "unauthorized"


def test_a_revoked_key_is_401(client: FlaskClient, app: Flask) -> None:
    key, _ = store_of(app).create_key("news.example")
    store_of(app).revoke_key(key)
    r = client.post("/api/v1/check", json={"content": HAM},
                    headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 401


def _production_app(make_app: Callable[..., Flask], sqlite_url: str) -> Flask:
    migrate.upgrade(engine_for(sqlite_url))  # production never migrates on start
    return make_app(env="production")


@pytest.mark.parametrize("mode", ["require_auth", "production"])
def test_anonymous_calls_are_refused_when_auth_is_required(
    make_app: Callable[..., Flask], sqlite_url: str, mode: str
) -> None:
    app = (_production_app(make_app, sqlite_url) if mode == "production"
           else make_app(require_auth=True))
    client = app.test_client()
    for path, body in (("/api/v1/check", {"content": HAM}),
                       ("/api/v1/check/batch", {"comments": [{"content": HAM}]}),
                       ("/api/v1/feedback", {"label": "spam", "content": HAM})):
        r = client.post(path, json=body)
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert "Bearer" in r.get_json()["error"]["message"]
    key, _ = store_of(app).create_key("news.example")
    r = client.post("/api/v1/check", json={"content": HAM},
                    headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200


def test_require_auth_comes_from_the_environment(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMENTMOD_REQUIRE_AUTH", "true")
    r = make_app().test_client().post("/api/v1/check", json={"content": HAM})
    assert r.status_code == 401


# --- JSON feedback -------------------------------------------------------------


def feedback(client: FlaskClient, body: Any, key: str = "") -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.post("/api/v1/feedback", json=body, headers=headers)


def test_feedback_by_guid_labels_the_checked_comment(client: FlaskClient, app: Flask) -> None:
    guid = client.post("/api/v1/check", json={"content": HAM}).get_json()["guid"]
    r = feedback(client, {"label": "spam", "guid": guid})
    assert r.status_code == 200
    body = r.get_json()
    assert body["recorded"] is True and body["label"] == "spam"
    comment = store_of(app).find_comment(guid=guid)
    assert comment is not None and body["comment_id"] == comment["id"]
    assert store_of(app).latest_label(comment["id"]) == "spam"


def test_feedback_by_content_and_for_an_unseen_comment(client: FlaskClient, app: Flask) -> None:
    key, site_id = store_of(app).create_key("news.example")
    guid = client.post("/api/v1/check", json={"content": SPAM},
                       headers={"Authorization": f"Bearer {key}"}).get_json()["guid"]
    seen = store_of(app).find_comment(guid=guid)
    r = feedback(client, {"label": "ham", "content": "  " + SPAM.upper()}, key)
    assert r.get_json()["comment_id"] == seen["id"]  # type: ignore[index]
    r = feedback(client, {"label": "spam", "content": "never checked before", "author": "bob"},
                 key)
    assert r.status_code == 200
    new = store_of(app).comment(r.get_json()["comment_id"])
    assert new["site_id"] == site_id and new["author"] == "bob" and new["verdict"] is None
    history = store_of(app).label_history(new["id"])
    assert [(h["label"], h["source"], h["actor"]) for h in history] == [
        ("spam", "site", f"site:{site_id}")]


def test_feedback_is_test_labels_are_marked(client: FlaskClient, app: Flask) -> None:
    r = feedback(client, {"label": "spam", "content": "test traffic", "is_test": True})
    [label] = store_of(app).label_history(r.get_json()["comment_id"])
    assert label["is_test"] is True


BAD_FEEDBACK: list[tuple[Any, int, str | None]] = [
    ({"content": HAM}, 400, "label"),
    ({"label": "SPAM", "content": HAM}, 400, "label"),
    ({"label": ["spam"], "content": HAM}, 400, "label"),
    ({"label": "spam", "guid": 42}, 400, "guid"),
    ({"label": "spam", "guid": "g" * 101}, 400, "guid"),
    ({"label": "spam", "content": HAM, "is_test": "yes"}, 400, "is_test"),
    ({"label": "spam"}, 400, "content"),
    ({"label": "spam", "content": 7}, 400, "content"),
    ({"label": "spam", "content": "<script>alert(1)</script>", "author": {"x": 1}}, 400, "author"),
    ({"label": "spam", "guid": "00000000-0000-0000-0000-000000000000"}, 404, None),
    (["spam"], 400, None),
]


def test_bad_feedback_gets_a_precise_error(client: FlaskClient, app: Flask) -> None:
    for body, status, field in BAD_FEEDBACK:
        r = feedback(client, body)
        assert r.status_code == status, body
        err = r.get_json()["error"]
        assert err["message"] and err.get("field") == field, body
    count = store_of(app).read(lambda c: c.exec_driver_sql("select count(*) from labels").scalar())
    assert count == 0  # nothing refused was stored
    r = client.post("/api/v1/feedback", data="label=spam", content_type="text/plain")
    assert r.status_code == 415


def test_feedback_never_loses_existing_labels(client: FlaskClient, app: Flask) -> None:
    guid = client.post("/api/v1/check", json={"content": HAM}).get_json()["guid"]
    feedback(client, {"label": "spam", "guid": guid})
    feedback(client, {"label": "spam", "guid": guid, "content": 3})  # refused
    feedback(client, {"label": "ham", "guid": guid})
    comment_id = store_of(app).find_comment(guid=guid)["id"]  # type: ignore[index]
    assert [h["label"] for h in store_of(app).label_history(comment_id)] == ["spam", "ham"]
