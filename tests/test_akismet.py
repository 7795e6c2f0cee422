"""The Akismet wire protocol through the Flask test client: exact bodies and
headers, Akismet's test conventions, feedback, reports, and bad input.
Real clients against a served instance are in test_akismet_clients.py."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from service.api import akismet
from service.resources import EXTENSION
from service.store.db import Store

SPAM = "Check out my channel and SUBSCRIBE!!! http://bit.ly/free-money win an iPhone"
HAM = "The council should publish the budget before the vote, not after. Good reporting."
BLOG = "https://news.example/"
THANKS = b"Thanks for making the web a better place."
# What WordPress adds to every call: server variables, form fields, arrays.
WORDPRESS_NOISE = {
    "HTTP_ACCEPT": "text/html", "HTTP_COOKIE": "x=1", "POST_comment_post_ID": "12",
    "comment_context[]": ["news", "local"], "reporter": "admin", "blog_charset": "UTF-8",
    "comment_post_ID": "12", "SERVER_SOFTWARE": "nginx", "user_role": "", "_wpnonce": "abc",
}


def store_of(app: Flask) -> Store:
    return app.extensions[EXTENSION].store  # type: ignore[no-any-return]


@pytest.fixture
def key(app: Flask) -> str:
    return store_of(app).create_key(BLOG)[0]


def post(client: FlaskClient, path: str, fields: dict[str, Any], **kw: Any) -> TestResponse:
    return client.post(path, data=fields, **kw)


def check(client: FlaskClient, key: str, **fields: Any) -> TestResponse:
    body = {"api_key": key, "blog": BLOG, "user_ip": "203.0.113.9", **fields}
    return post(client, "/1.1/comment-check", body)


def assert_text(r: TestResponse, body: bytes) -> None:
    assert r.status_code == 200
    assert r.data == body  # byte for byte: no trailing space or newline
    assert r.headers["Content-Type"].startswith("text/plain")


def assert_invalid(r: TestResponse, *help_words: str) -> None:
    assert_text(r, b"invalid")
    help_text = r.headers.get("X-akismet-debug-help", "")
    assert help_text, "every invalid answer explains itself"
    for word in help_words:
        assert word in help_text, help_text


# --- verify-key ----------------------------------------------------------------


def test_verify_key_accepts_the_key_in_each_place(client: FlaskClient, key: str) -> None:
    assert_text(post(client, "/1.1/verify-key", {"key": key, "blog": BLOG}), b"valid")
    assert_text(post(client, "/1.1/verify-key", {"api_key": key, "blog": BLOG}), b"valid")
    r = post(client, "/1.1/verify-key", {"blog": BLOG},
             headers={"Host": f"{key}.rest.akismet.com"})
    assert_text(r, b"valid")
    # How a proxied client sends it: absolute URL in the request line.
    r = client.post(f"http://{key}.rest.akismet.com/1.1/verify-key", data={"blog": BLOG})
    assert_text(r, b"valid")


def test_verify_key_normalises_the_blog(client: FlaskClient, key: str) -> None:
    for blog in ("http://news.example", "https://www.NEWS.example/", "news.example",
                 "https://news.example/politics/", "https://news.example:443/"):
        assert_text(post(client, "/1.1/verify-key", {"key": key, "blog": blog}), b"valid")


def test_verify_key_invalid_answers(client: FlaskClient, key: str, app: Flask) -> None:
    cases: list[tuple[dict[str, str], str]] = [
        ({"key": "nope00000000", "blog": BLOG}, "unknown"),
        ({"blog": BLOG}, "api_key"),
        ({"key": key}, "blog"),
        ({"key": key, "blog": "https://other.example"}, "bound to news.example"),
        ({"key": key, "blog": "https://news.example.evil.com"}, "bound"),
        ({"key": key, "blog": "http://"}, "not a site URL"),
        ({"key": key + "x" * 100, "blog": BLOG}, "unknown"),
    ]
    for fields, why in cases:
        assert_invalid(post(client, "/1.1/verify-key", fields), why)
    store_of(app).revoke_key(key)
    assert_invalid(post(client, "/1.1/verify-key", {"key": key, "blog": BLOG}), "revoked")


# --- comment-check -------------------------------------------------------------


def test_comment_check_answers_true_and_false(client: FlaskClient, key: str) -> None:
    spam = check(client, key, comment_content=SPAM, comment_author="Free Money")
    assert_text(spam, b"true")
    ham = check(client, key, comment_content=HAM, comment_author="Jane Reader")
    assert_text(ham, b"false")
    guids = {spam.headers["X-akismet-guid"], ham.headers["X-akismet-guid"]}
    assert len(guids) == 2 and all(len(g) == 36 for g in guids)
    assert "X-akismet-pro-tip" not in ham.headers
    assert "X-akismet-debug-help" not in ham.headers


def test_comment_check_records_the_comment(client: FlaskClient, key: str, app: Flask) -> None:
    r = check(client, key, comment_content=HAM, comment_author="Jane", comment_type="reply",
              comment_author_email="jane@example.org", blog_lang="en_gb",
              comment_date_gmt="2026-11-01 10:00:00", user_agent="Mozilla/5.0",
              referrer="https://news.example/a", permalink="https://news.example/a",
              recheck_reason="edit", **WORDPRESS_NOISE)
    row = store_of(app).find_comment(guid=r.headers["X-akismet-guid"])
    assert row is not None
    assert (row["source"], row["content"], row["author"], row["author_email"],
            row["comment_type"], row["lang"], row["user_ip"], row["user_agent"]) == (
        "akismet", HAM, "Jane", "jane@example.org", "reply", "en_gb", "203.0.113.9",
        "Mozilla/5.0")
    assert row["comment_created_at"] == "2026-11-01T10:00:00+00:00"  # GMT made explicit
    assert row["verdict"] == "ham" and row["is_test"] is False
    assert row["extra"]["recheck_reason"] == "edit" and row["extra"]["blog"] == BLOG
    assert "HTTP_COOKIE" not in row["extra"]  # unknown fields are ignored, not kept


def test_akismet_test_conventions(client: FlaskClient, key: str, app: Flask) -> None:
    r = check(client, key, comment_author="akismet-guaranteed-spam", comment_content=HAM)
    assert_text(r, b"true")
    assert "X-akismet-pro-tip" not in r.headers  # plain spam, as Akismet answers it
    # A site testing its integration: kept as test traffic, out of the moderation queue.
    row = store_of(app).find_comment(guid=r.headers["X-akismet-guid"])
    assert row is not None and row["is_test"] is True and row["verdict"] == "spam"
    r = check(client, key, comment_author="viagra-test-123", comment_content=HAM)
    assert_text(r, b"true")
    r = check(client, key, comment_author_email="akismet-guaranteed-spam@example.com",
              comment_content=HAM)
    assert_text(r, b"true")
    r = check(client, key, user_role="administrator", comment_content=SPAM)
    assert_text(r, b"false")


def test_honeypot_is_blatant_spam_with_discard(client: FlaskClient, key: str) -> None:
    r = check(client, key, comment_content=HAM, honeypot_field_name="hidden_url",
              hidden_url="http://bot.example")
    assert_text(r, b"true")
    assert r.headers["X-akismet-pro-tip"] == "discard"
    r = check(client, key, comment_content=HAM, honeypot_field_name="hidden_url", hidden_url="")
    assert_text(r, b"false")


def test_is_test_booleans(client: FlaskClient, key: str, app: Flask) -> None:
    for value, stored in (("1", True), ("true", True), ("True", True), ("0", False),
                          ("false", False), ("False", False), ("", False), ("maybe", False)):
        r = check(client, key, comment_content=HAM, is_test=value)
        row = store_of(app).find_comment(guid=r.headers["X-akismet-guid"])
        assert row is not None and row["is_test"] is stored, value


def test_discourse_aliases(client: FlaskClient, key: str, app: Flask) -> None:
    latin1 = "Très bien écrit, merci à la rédaction"
    body = ("api_key=" + key + "&blog=https%3A%2F%2Fnews.example&user_ip=1.2.3.4"
            "&content_type=forum-post&charset=ISO-8859-1&comment_content=")
    # percent-encode each Latin-1 byte, as a form in that charset does
    raw = body.encode() + "".join(f"%{b:02X}" for b in latin1.encode("latin-1")).encode()
    r = client.post("/1.1/comment-check", data=raw,
                    content_type="application/x-www-form-urlencoded")
    assert r.status_code == 200 and r.data in (b"true", b"false")
    row = store_of(app).find_comment(guid=r.headers["X-akismet-guid"])
    assert row is not None
    assert row["comment_type"] == "forum-post"
    assert row["content"] == latin1


def test_key_in_the_host_name_for_checks(client: FlaskClient, key: str) -> None:
    r = client.post(f"http://{key.upper()}.rest.akismet.com/1.1/comment-check",
                    data={"blog": BLOG, "user_ip": "1.2.3.4", "comment_content": SPAM})
    assert_text(r, b"true")


def test_comment_check_invalid_answers(client: FlaskClient, key: str) -> None:
    base = {"api_key": key, "blog": BLOG, "user_ip": "1.2.3.4", "comment_content": HAM}
    cases: list[tuple[dict[str, str], str]] = [
        ({**base, "api_key": "wrongkey1234"}, "unknown"),
        ({k: v for k, v in base.items() if k != "api_key"}, "api_key"),
        ({k: v for k, v in base.items() if k != "blog"}, "blog"),
        ({k: v for k, v in base.items() if k != "user_ip"}, "user_ip"),
        ({**base, "user_ip": "   "}, "user_ip"),
        ({**base, "blog": "https://elsewhere.example"}, "bound"),
    ]
    for fields, why in cases:
        r = post(client, "/1.1/comment-check", fields)
        assert_invalid(r, why)
        assert "X-akismet-guid" not in r.headers


def test_bad_input_gets_akismets_answers_never_html(client: FlaskClient, key: str,
                                                    app: Flask) -> None:
    good = f"api_key={key}&blog=news.example&user_ip=1.2.3.4&comment_content="
    # Non-UTF-8 bytes, NUL bytes, hostile HTML, a JSON body, an empty body, GET.
    r = client.post("/1.1/comment-check", data=good.encode() + b"%FF%FEok",
                    content_type="application/x-www-form-urlencoded")
    assert r.status_code == 200 and r.data in (b"true", b"false")
    r = client.post("/1.1/comment-check", data=good.encode() + b"%FF%FE%00ok",
                    content_type="application/x-www-form-urlencoded")
    assert_invalid(r, "comment_content", "NUL")  # no database stores it
    r = check(client, key, comment_content="<script>alert(1)</script><img src=x onerror=y>",
              comment_author="<b>x</b>")
    assert r.status_code == 200 and r.data in (b"true", b"false")
    assert_invalid(check(client, key, comment_content="hi", comment_author="x\x00"),
                   "comment_author")
    assert_invalid(client.post("/1.1/comment-check", json={"api_key": key}), "api_key")
    assert_invalid(client.post("/1.1/comment-check"), "api_key")
    for path in ("/1.1/comment-check", "/1.1/verify-key", "/1.1/submit-spam",
                 "/1.1/submit-ham"):
        assert_invalid(client.get(path, query_string={"api_key": key}), "POST")
    r = check(client, key, comment_content="")  # signup checks carry no text
    assert r.status_code == 200 and r.data in (b"true", b"false")


def test_over_long_fields_are_cut_and_over_large_bodies_refused(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(max_request_bytes=50_000)
    client = app.test_client()
    key = store_of(app).create_key(BLOG)[0]
    r = check(client, key, comment_content=HAM + " x" * 15_000, comment_author="a" * 5_000)
    assert r.status_code == 200 and r.data in (b"true", b"false")
    row = store_of(app).find_comment(guid=r.headers["X-akismet-guid"])
    assert row is not None and len(row["content"]) == 20_000 and len(row["author"]) == 2_000
    r = check(client, key, comment_content="x" * 60_000)
    assert_invalid(r)
    assert r.headers["X-akismet-debug-help"].isascii()


def test_unsure_answer_follows_the_setting(make_app: Callable[..., Flask]) -> None:
    from service.scoring.verdicts import Verdict

    for unsure_is_spam, body in ((True, b"true"), (False, b"false")):
        app = make_app(akismet_unsure_is_spam=unsure_is_spam)
        scorer = app.extensions[EXTENSION].models.scorer()
        key = store_of(app).create_key(BLOG)[0]
        # Find a comment the model is unsure about by moving the spam threshold.
        scorer.thresholds.update({"unsure": 0.0, "spam": 1.01, "discard": 1.01})
        r = check(app.test_client(), key, comment_content=HAM)
        assert r.headers["X-commentmod-verdict"] == Verdict.UNSURE.value
        assert_text(r, body)


# --- submit-spam / submit-ham --------------------------------------------------


def submit(client: FlaskClient, kind: str, key: str, **fields: Any) -> TestResponse:
    body = {"api_key": key, "blog": BLOG, "user_ip": "203.0.113.9", **fields}
    return post(client, f"/1.1/submit-{kind}", body)


def test_submit_by_guid_labels_the_checked_comment(client: FlaskClient, key: str,
                                                   app: Flask) -> None:
    guid = check(client, key, comment_content=HAM).headers["X-akismet-guid"]
    assert_text(submit(client, "spam", key, guid=guid, comment_content="edited text"), THANKS)
    row = store_of(app).find_comment(guid=guid)
    assert row is not None
    history = store_of(app).label_history(row["id"])
    assert [(h["label"], h["source"]) for h in history] == [("spam", "site")]


def test_submit_by_content_and_unseen(client: FlaskClient, key: str, app: Flask) -> None:
    guid = check(client, key, comment_content=SPAM).headers["X-akismet-guid"]
    seen = store_of(app).find_comment(guid=guid)
    assert_text(submit(client, "ham", key, comment_content=SPAM), THANKS)
    assert store_of(app).latest_label(seen["id"]) == "ham"  # type: ignore[index]
    assert_text(submit(client, "spam", key, comment_content="never seen", is_test="1",
                       **WORDPRESS_NOISE), THANKS)
    row = store_of(app).find_comment(content="never seen")
    assert row is not None and row["verdict"] is None and row["is_test"] is True
    [label] = store_of(app).label_history(row["id"])
    assert label["label"] == "spam" and label["is_test"] is True


def test_submit_invalid_answers(client: FlaskClient, key: str) -> None:
    for kind in ("spam", "ham"):
        assert_invalid(submit(client, kind, "wrongkey1234", comment_content=HAM), "unknown")
        assert_invalid(submit(client, kind, key), "nothing to label")
        assert_invalid(submit(client, kind, key, guid="not-a-known-guid"), "no comment")
        assert_invalid(submit(client, kind, key, comment_content=HAM, user_ip=""), "user_ip")


# --- key-sites and usage-limit ---------------------------------------------------


def seed_activity(app: Flask) -> tuple[str, str]:
    """Two sites: news.example (2 spam, 3 ham, 1 missed, 1 false positive), blog.example."""
    client = app.test_client()
    news = store_of(app).create_key(BLOG)[0]
    other = store_of(app).create_key("https://blog.example")[0]
    spam_guids = [check(client, news, comment_content=SPAM + f" {i}").headers["X-akismet-guid"]
                  for i in range(2)]
    ham_guids = [check(client, news, comment_content=HAM + f" {i}").headers["X-akismet-guid"]
                 for i in range(3)]
    check(client, news, comment_content=SPAM, is_test="1")  # never counts
    submit(client, "ham", news, guid=spam_guids[0])  # false positive
    submit(client, "spam", news, guid=ham_guids[0])  # missed spam
    submit(client, "spam", news, guid=ham_guids[1], is_test="true")  # test label: ignored
    submit(client, "spam", news, comment_content="unseen")  # no check: no count
    check(client, other, comment_content=HAM, blog="https://blog.example")
    return news, other


def test_key_sites_counts(make_app: Callable[..., Flask], db_url: str) -> None:
    app = make_app(database_url=db_url)
    news, _ = seed_activity(app)
    client = app.test_client()
    r = client.get("/1.2/key-sites", query_string={"api_key": news})
    assert r.status_code == 200 and r.mimetype == "application/json"
    body = r.get_json()
    [month] = [k for k in body if k not in {"limit", "offset", "total"}]
    assert body[month] == [{"site": "news.example", "api_calls": 5, "spam": 2, "ham": 3,
                            "missed_spam": 1, "false_positives": 1, "is_revoked": False}]
    assert (body["limit"], body["offset"], body["total"]) == (500, 0, 1)
    r = client.post("/1.2/key-sites", data={"api_key": news, "month": "2001-01"})
    assert r.get_json()["2001-01"] == []


def test_key_sites_without_a_key_reports_every_site(client: FlaskClient, app: Flask) -> None:
    seed_activity(app)
    body = client.get("/1.2/key-sites?format=json").get_json()  # what the PyPI client sends
    [month] = [k for k in body if k not in {"limit", "offset", "total"}]
    assert [r["site"] for r in body[month]] == ["news.example", "blog.example"]
    assert body["total"] == 2
    page = client.get("/1.2/key-sites", query_string={"limit": 1, "offset": 1}).get_json()
    assert [r["site"] for r in page[month]] == ["blog.example"] and page["total"] == 2
    page = client.get("/1.2/key-sites", query_string={"filter": "blog."}).get_json()
    assert [r["site"] for r in page[month]] == ["blog.example"]
    by_fp = client.get("/1.2/key-sites", query_string={"order": "false_positives"}).get_json()
    assert by_fp[month][0]["site"] == "news.example"


def test_key_sites_csv(client: FlaskClient, app: Flask) -> None:
    news, _ = seed_activity(app)
    r = client.get("/1.2/key-sites", query_string={"api_key": news, "format": "csv"})
    assert r.status_code == 200 and r.mimetype == "text/plain"
    assert not r.data.endswith(b"\n")
    lines = r.get_data(as_text=True).split("\n")
    assert lines[0].startswith(f"Active sites for {news} during ")
    assert lines[0].endswith("(limit:500, offset: 0, total: 1)")
    rows = list(csv.reader(io.StringIO("\n".join(lines[1:]))))
    assert rows == [["Site", "Total API Calls", "Spam", "Ham", "Missed Spam", "False Positives",
                     "Is Revoked"], ["news.example", "5", "2", "3", "1", "1", "false"]]


def test_key_sites_bad_input(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    client = app.test_client()
    key = store_of(app).create_key(BLOG)[0]
    for params, why in [
        ({"month": "2026-13"}, "month"), ({"month": "26-11"}, "month"),
        ({"month": "<script>"}, "month"), ({"format": "xml"}, "format"),
        ({"order": "name"}, "order"), ({"limit": "-1"}, "limit"), ({"limit": "ten"}, "limit"),
        ({"limit": "10001"}, "limit"), ({"offset": "1.5"}, "offset"),
        ({"api_key": "wrongkey1234"}, "unknown"),
    ]:
        assert_invalid(client.get("/1.2/key-sites", query_string={"api_key": key, **params}),
                       why)
    strict = make_app(require_auth=True).test_client()
    assert_invalid(strict.get("/1.2/key-sites?format=json"), "api_key")


def test_usage_limit(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    news, _ = seed_activity(app)
    r = app.test_client().get("/1.2/usage-limit", query_string={"api_key": news})
    assert r.get_json() == {"limit": "none", "usage": 5, "percentage": "0.00",
                            "throttled": False}
    limited = make_app(akismet_monthly_limit=400).test_client()
    r = limited.post("/1.2/usage-limit", data={"api_key": news, "extended": "1"})
    assert r.get_json() == {"limit": 400, "usage": 5, "percentage": "1.25", "throttled": False}
    assert_invalid(limited.get("/1.2/usage-limit"), "api_key")
    assert_invalid(limited.get("/1.2/usage-limit?api_key=wrongkey1234"), "unknown")
    r = limited.get("/1.2/usage-limit", headers={"Host": f"{news}.rest.akismet.com"})
    assert r.get_json()["usage"] == 5


def test_a_label_that_cannot_be_stored_is_never_thanked(client: FlaskClient, key: str,
                                                        app: Flask) -> None:
    guid = check(client, key, comment_content=HAM).headers["X-akismet-guid"]
    with store_of(app).engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE labels")  # the database breaks under us
    r = submit(client, "spam", key, guid=guid)
    assert r.status_code == 503 and r.data != THANKS
    assert r.headers["X-akismet-error"] and r.mimetype == "text/plain"
    assert_text(check(client, key, comment_content=HAM), b"false")  # checks still answer


def test_form_parsed_before_the_view_still_answers(make_app: Callable[..., Flask]) -> None:
    """A rate limiter's key function may read request.form first: the raw body is
    then gone, so a Latin-1 form falls back to Werkzeug's UTF-8 decoding, still answered."""
    from flask import request

    app = make_app()

    @app.before_request
    def _read_form_first() -> None:
        request.form.get("api_key")

    key = store_of(app).create_key(BLOG)[0]
    raw = (f"api_key={key}&blog=news.example&user_ip=1.2.3.4&charset=ISO-8859-1"
           "&comment_content=Tr%E8s%20bien").encode()
    r = app.test_client().post("/1.1/comment-check", data=raw,
                               content_type="application/x-www-form-urlencoded")
    assert r.status_code == 200 and r.data in (b"true", b"false")
    row = store_of(app).find_comment(guid=r.headers["X-akismet-guid"])
    assert row is not None and row["content"] == "Tr%E8s bien"  # Werkzeug keeps bad escapes


# --- the form parser -------------------------------------------------------------

FORM_CHARS = st.sampled_from([*"ab=&+%;é ", "%2", "%41", "%e9", "%C3%A9", "%zz", "%%"])


@settings(max_examples=500, deadline=None)
@given(st.lists(FORM_CHARS, max_size=40).map("".join),
       st.sampled_from(["utf-8", "latin-1", "cp1252", "shift_jis", "undefined", "no-such"]))
def test_form_pairs_are_parse_qsl_pair_for_pair(body: str, charset: str) -> None:
    """The hand-written parser is the standard library's, errors included (the view
    falls back to UTF-8 on exactly the same bodies)."""
    try:
        expected: list[tuple[str, str]] | type[Exception] = parse_qsl(
            body, keep_blank_values=True, encoding=charset, errors="replace")
    except Exception as exc:
        expected = type(exc)
    try:
        got: list[tuple[str, str]] | type[Exception] = akismet.form_pairs(body, charset)
    except Exception as exc:
        got = type(exc)
    assert got == expected
