"""Hostile input at the edge (issue 16): characters no database stores, any charset,
and a request that would need more scoring time than a worker may spend.

NUL and lone surrogates are refused before any view, on every route, with a 400 that
names the field (Akismet: its own ``invalid`` answer, the field named in
X-akismet-debug-help), on SQLite and on PostgreSQL, which is the database that
refused them: before, a NUL was a 503 on feedback, on Perspective's suggestscore
and on the queue search, and a dropped write-behind batch.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from service.moderation import moderators as mods
from service.resources import EXTENSION, Resources
from service.store import schema
from tests.moderation_helpers import PASSWORD, add_comment

NUL = "\x00"
SURROGATE = "\ud800"


def res_of(app: Flask) -> Resources:
    resources: Resources = app.extensions[EXTENSION]
    return resources


@pytest.fixture
def both_app(make_app: Callable[..., Flask], db_url: str) -> Flask:
    app = make_app(database_url=db_url, password_hash_cost="fast")
    mods.create(res_of(app).store, "alice", PASSWORD, admin=True, hasher=mods.FAST)
    return app


def routes(app: Flask) -> list[tuple[str, str]]:
    """(method, path) for every route, URL arguments filled in with plain values."""
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = rule.rule
        for arg in rule.arguments:
            path = path.replace(f"<{arg}>", "x")
            for conv in ("int(max=2147483647):", "int:", "path:"):
                path = path.replace(f"<{conv}{arg}>", "1")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((method, path))
    return out


def post_json(client: FlaskClient, path: str, body: Any, **kw: Any) -> TestResponse:
    # json.dumps, not the app's orjson: lone surrogates must reach the server.
    return client.post(path, data=json.dumps(body), content_type="application/json", **kw)


def assert_refused(r: TestResponse, field: str) -> None:
    """A 400 naming the field, or Akismet's way of saying the same."""
    if r.data == b"invalid":
        help_text = r.headers.get("X-akismet-debug-help", "")
        assert field in help_text, help_text
        return
    assert r.status_code == 400, (r.status_code, r.data[:300])
    assert field in r.get_data(as_text=True), r.data[:300]


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
def test_every_route_refuses_unstorable_characters_naming_the_field(
    both_app: Flask, bad: str
) -> None:
    client = both_app.test_client()
    for method, path in routes(both_app):
        if bad == NUL:  # URLs and forms are UTF-8: a lone surrogate arrives only in JSON
            r = client.open(path, method=method, query_string={"q": f"a{bad}b"})
            assert_refused(r, "q")
        if method in {"POST", "PUT", "PATCH", "DELETE"}:
            body = json.dumps({"content": f"x{bad}", "comment": {"text": "ok"}})
            r = client.open(path, method=method, data=body, content_type="application/json")
            assert_refused(r, "content")
        if method == "POST" and bad == NUL:
            r = client.open(path, method=method, data={"comment_content": f"x{bad}"})
            assert_refused(r, "comment_content")


def test_reported_endpoints_answer_400_not_503(both_app: Flask) -> None:
    """The three that answered 503 ``storage_unavailable`` on PostgreSQL, authenticated."""
    res = res_of(both_app)
    key, _ = res.store.create_key("https://news.example")
    client = both_app.test_client()
    auth = {"Authorization": f"Bearer {key}"}
    checked = post_json(client, "/api/v1/check", {"content": "a fine comment"}, headers=auth)
    assert checked.status_code == 200
    guid = checked.json["guid"]  # type: ignore[index]
    r = post_json(client, "/api/v1/feedback",
                  {"guid": guid, "label": "spam", "content": f"x{NUL}"}, headers=auth)
    assert_refused(r, "content")
    r = post_json(client, f"/v1alpha1/comments:suggestscore?key={key}", {
        "comment": {"text": f"x{NUL}"},
        "attributeScores": {"TOXICITY": {"summaryScore": {"value": 1}}},
    })
    assert_refused(r, "comment.text")
    basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    r = client.get("/api/v1/moderation/queue", query_string={"q": NUL},
                   headers={"Authorization": f"Basic {basic}"})
    assert_refused(r, "q")
    r = post_json(client, "/api/v1/rules",
                  {"list": "block", "kind": "phrase", "value": f"pills{NUL}"}, headers=auth)
    assert_refused(r, "value")
    # The good comment is stored and the queue search still works.
    add_comment(res.store, "searchable words")
    r = client.get("/api/v1/moderation/queue", query_string={"q": "searchable"},
                   headers={"Authorization": f"Basic {basic}"})
    assert r.status_code == 200, r.data[:300]


def test_web_queue_search_refuses_nul(both_app: Flask) -> None:
    client = both_app.test_client()
    r = client.get("/moderate/", query_string={"q": NUL})
    assert_refused(r, "q")


def test_a_batch_with_one_bad_comment_is_refused_whole_naming_it(both_app: Flask) -> None:
    client = both_app.test_client()
    body = {"comments": [{"content": "fine"}, {"content": "also fine", "author": f"x{NUL}"}]}
    r = post_json(client, "/api/v1/check/batch", body)
    assert_refused(r, "comments[1].author")
    assert res_of(both_app).store.find_comment(guid="x") is None
    with res_of(both_app).store.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(schema.comments)).scalar() == 0


def test_astral_characters_are_not_lone_surrogates(both_app: Flask) -> None:
    """json.dumps escapes an emoji as a surrogate pair: that pair is one character."""
    r = post_json(both_app.test_client(), "/api/v1/check", {"content": "nice \U0001f600"})
    assert r.status_code == 200, r.data[:300]


# --- Akismet charsets ------------------------------------------------------------------

CHARSETS = ["%00", "undefined", "idna", "hex", "rot13", "base64", "utf-7", "utf-16",
            "latin-1", "x" * 300, "%FF%FE", "utf-8%00"]


@pytest.mark.parametrize("charset", CHARSETS)
@pytest.mark.parametrize("path", ["/1.1/verify-key", "/1.1/comment-check"])
def test_no_charset_makes_a_5xx(both_app: Flask, charset: str, path: str) -> None:
    key, _ = res_of(both_app).store.create_key("https://news.example")
    body = (f"api_key={key}&blog=https%3A%2F%2Fnews.example&user_ip=1.2.3.4"
            f"&comment_content=caf%C3%A9+%E4%B8%AD%2B2AA-&blog_charset={charset}")
    r = both_app.test_client().post(path, data=body,
                                    content_type="application/x-www-form-urlencoded")
    assert r.status_code == 200, (r.status_code, r.data[:200])
    assert r.data in (b"valid", b"true", b"false", b"invalid"), r.data[:200]
    if "%00" in charset:
        assert_refused(r, "blog_charset")


def test_utf7_lone_surrogate_is_refused_after_decoding(both_app: Flask) -> None:
    key, _ = res_of(both_app).store.create_key("https://news.example")
    body = (f"api_key={key}&blog=https%3A%2F%2Fnews.example&user_ip=1.2.3.4"
            "&blog_charset=utf-7&comment_content=%2B2AA-")  # "+2AA-": U+D800 in UTF-7
    r = both_app.test_client().post("/1.1/comment-check", data=body,
                                    content_type="application/x-www-form-urlencoded")
    assert_refused(r, "comment_content")


# --- the scoring budget ----------------------------------------------------------------


def test_a_batch_over_the_scoring_budget_is_refused_clearly(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(scoring_budget_seconds=0.000001, batch_max=100)
    comments = [{"content": f"comment number {i} " + "a.com " * 200} for i in range(40)]
    r = app.test_client().post("/api/v1/check/batch", json={"comments": comments})
    assert r.status_code == 413, r.data[:300]
    error = r.json["error"]  # type: ignore[index]
    assert error["code"] == "scoring_budget_exceeded"
    assert "smaller" in error["message"] or "fewer" in error["message"]
    # A batch within the budget is scored as before.
    ok = make_app(batch_max=100).test_client().post("/api/v1/check/batch",
                                                    json={"comments": comments})
    assert ok.status_code == 200 and len(ok.json["results"]) == 40  # type: ignore[index]


# --- headers, next, /metrics, site lists -----------------------------------------------


@pytest.mark.parametrize("nxt", ["/moderate/\r\nSet-Cookie: x=1", "/moderate/\n", "/moderate/\x00",
                                 "/moderate/\u2028", "//evil.example/", "https://evil.example/"])
def test_login_with_a_hostile_next_redirects_into_the_queue(both_app: Flask, nxt: str) -> None:
    client = both_app.test_client()
    page = client.get("/moderate/login").text
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    r = client.post("/moderate/login", query_string={"next": nxt},
                    data={"name": "alice", "password": PASSWORD, "csrf_token": csrf})
    if "\x00" in nxt:
        assert_refused(r, "next")
        return
    assert r.status_code == 302, (r.status_code, r.data[:200])
    assert r.headers["Location"] == "/moderate/"


@pytest.mark.parametrize("header", ["User-Agent", "Referer", "X-Forwarded-For", "Authorization",
                                    "X-API-Key", "X-Coral-Signature", "Cookie"])
def test_hostile_header_values_never_make_a_5xx(both_app: Flask, header: str) -> None:
    client = both_app.test_client()
    for value in ["\x00", "\xff\xfe", "a" * 8000, "Basic \x00:\x00", "Bearer \u00e9"]:
        for method, path in [("POST", "/api/v1/check"), ("GET", "/moderate/"),
                             ("POST", "/1.1/comment-check"), ("POST", "/coral/moderate"),
                             ("GET", "/api/v1/moderation/queue"), ("GET", "/metrics")]:
            r = client.open(path, method=method, headers={header: value},
                            json={"content": "hello"})
            assert r.status_code < 500, (header, value[:20], path, r.status_code)


def test_metrics_can_be_limited_to_networks_and_a_token(make_app: Callable[..., Flask]) -> None:
    open_app = make_app().test_client()
    assert open_app.get("/metrics").status_code == 200  # the default: unchanged
    by_net = make_app(metrics_allow="10.0.0.0/8, 192.0.2.0/24").test_client()
    assert by_net.get("/metrics").status_code == 403  # the test client is 127.0.0.1
    r = by_net.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert r.status_code == 200 and b"commentmod" in r.data
    by_token = make_app(metrics_token="s3cret-scrape-token").test_client()
    assert by_token.get("/metrics").status_code == 401
    assert by_token.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = by_token.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape-token"})
    assert ok.status_code == 200


def test_a_bad_metrics_network_stops_start_up_naming_it(make_app: Callable[..., Flask]) -> None:
    from service.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"METRICS_ALLOW.*not-a-net"):
        make_app(metrics_allow="10.0.0.0/8,not-a-net")


def test_a_site_key_sees_only_its_own_sites_lists(both_app: Flask) -> None:
    from service.scoring.site_rules import add_rule

    store = res_of(both_app).store
    key, _ = store.create_key("https://news.example")
    other, _ = store.create_key("https://other.example")
    add_rule(store, None, "block", "email", "spammer@example.org", "cli")  # global
    add_rule(store, "https://other.example", "block", "ip", "203.0.113.9", "cli")
    add_rule(store, "https://news.example", "block", "phrase", "cheap pills", "cli")
    client = both_app.test_client()
    r = client.get("/api/v1/rules", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200
    assert [x["value"] for x in r.json["rules"]] == ["cheap pills"]  # type: ignore[index]
    r = client.get("/api/v1/rules", headers={"Authorization": f"Bearer {other}"})
    assert [x["value"] for x in r.json["rules"]] == ["203.0.113.9/32"]  # type: ignore[index]
    # The global list still applies to the site's checks.
    r = client.post("/api/v1/check", headers={"Authorization": f"Bearer {key}"},
                    json={"content": "hello there", "author_email": "spammer@example.org"})
    assert r.json["verdict"] == "spam"  # type: ignore[index]
