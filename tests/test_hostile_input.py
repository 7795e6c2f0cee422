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
