"""What the WordPress Akismet plugin (5.0.2) calls besides checks and feedback,
answered the way its PHP reads them: the connectivity probe, verify-key and
get-subscription about the key being asked (not the stored ``api_key``),
get-stats from the site's own records, deactivate, its honeypot field, and keys
its settings form accepts. The real plugin drives them in test_wordpress.py."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert, update
from test_akismet import (
    BLOG,
    HAM,
    SPAM,
    WORDPRESS_NOISE,
    assert_invalid,
    assert_text,
    check,
    post,
    seed_activity,
    store_of,
)

from service.store import schema as t
from service.store.db import KEY_LENGTH, hash_key, now

# What the plugin sends to the four settings-page endpoints: the key asked about
# as ``key``, the stored key (if any) as ``api_key``, the site's home as ``blog``.
STORED = "0123456789ab"


def wp_call(client: FlaskClient, path: str, key: str, stored: str = "", **fields: str,
            ) -> tuple[int, str, str, bytes]:
    body = {"key": key, "blog": BLOG, **fields}
    if stored:
        body["api_key"] = stored
    r = post(client, f"/1.1/{path}", body)
    return r.status_code, r.mimetype, r.headers.get("X-akismet-debug-help", ""), r.data


@pytest.fixture
def key(app: Flask) -> str:
    return store_of(app).create_key(BLOG)[0]


def test_connection_probe_answers_connected(client: FlaskClient) -> None:
    for r in (client.get("/1.1/test"), client.post("/1.1/test")):
        assert_text(r, b"connected")  # the plugin compares the body to 'connected'


def test_new_keys_survive_the_settings_form(app: Flask) -> None:
    """The form strips every character outside 0-9a-f (preg_replace('/[^a-f0-9]/i'))
    and the plugin refuses any key that is not 12 characters long."""
    for i in range(50):
        key = store_of(app).create_key(f"https://site{i}.example")[0]
        assert len(key) == KEY_LENGTH == 12
        assert re.sub(r"[^a-f0-9]", "", key, flags=re.IGNORECASE) == key == key.lower()


def test_existing_keys_keep_working(app: Flask, client: FlaskClient) -> None:
    """Keys issued before keys were hexadecimal (lower-case letters and digits)."""
    store = store_of(app)
    old = "oldkeyzq9x7w"
    with store.transaction() as c:
        site_id = store.ensure_site(BLOG, conn=c)
        c.execute(insert(t.api_keys).values(site_id=site_id, key_hash=hash_key(old),
                                            key_hint=old[-4:], created_at=now()))
    assert_text(post(client, "/1.1/verify-key", {"key": old, "blog": BLOG}), b"valid")
    assert_text(check(client, old, comment_content=HAM), b"false")
    r = client.post("/1.1/verify-key", data={"blog": BLOG},
                    headers={"Host": f"{old.upper()}.rest.akismet.com"})
    assert_text(r, b"valid")


def test_verify_key_judges_the_key_asked_about(client: FlaskClient, key: str,
                                               app: Flask) -> None:
    """A site with a stored key that types another one into the form: the plugin
    sends the new one as ``key`` and the stored one as ``api_key``."""
    other = store_of(app).create_key("https://other.example")[0]
    assert wp_call(client, "verify-key", key, stored=other)[3] == b"valid"
    made_up = "abcdef012345"
    status, _, why, body = wp_call(client, "verify-key", made_up, stored=key)
    assert (status, body) == (200, b"invalid") and "unknown" in why
    # Clients that send only api_key are judged on it, as before.
    assert_text(post(client, "/1.1/verify-key", {"api_key": key, "blog": BLOG}), b"valid")
    # A comment-check is about the stored key: api_key still wins there.
    fields = {"api_key": key, "key": made_up, "blog": BLOG, "user_ip": "203.0.113.9",
              "comment_content": HAM}
    assert_text(post(client, "/1.1/comment-check", fields), b"false")


def test_get_subscription_reports_an_active_plan(client: FlaskClient, key: str,
                                                 app: Flask) -> None:
    status, mimetype, _, body = wp_call(client, "get-subscription", key, stored=STORED)
    assert (status, mimetype) == (200, "application/json")
    sub = client.application.json.loads(body)
    # views/config.php and Akismet_Admin::save_key read exactly these
    assert sub["status"] == "active"
    assert sub["account_type"] != "free-api-key"  # that one adds a "time saved" banner
    assert {"account_name", "account_type", "status", "next_billing_date",
            "limit_reached"} <= set(sub)
    assert not sub["next_billing_date"] and not sub["limit_reached"]
    # the plugin treats the body 'invalid' as "no account": never save the key
    assert wp_call(client, "get-subscription", "abcdef012345", stored=key)[3] == b"invalid"
    other = wp_call(client, "get-subscription", key, blog="https://other.example")
    assert other[3] == b"invalid" and "bound to news.example" in other[2]
    store_of(app).revoke_key(key)
    assert wp_call(client, "get-subscription", key)[3] == b"invalid"


def test_get_stats_counts_the_sites_own_checks(make_app: Callable[..., Flask],
                                               db_url: str) -> None:
    app = make_app(database_url=db_url)
    news, other = seed_activity(app)  # news: 2 spam, 3 ham, 1 missed, 1 false positive
    client = app.test_client()
    status, mimetype, _, body = wp_call(client, "get-stats", news, stored=news, **{"from": "all"})
    assert (status, mimetype) == (200, "application/json")
    stats = app.json.loads(body)
    month = now().strftime("%Y-%m")
    assert {k: stats[k] for k in ("from", "spam", "ham", "missed_spam", "false_positives",
                                  "accuracy")} == {
        "from": "all", "spam": 2, "ham": 3, "missed_spam": 1, "false_positives": 1,
        "accuracy": 60.0}
    assert stats["breakdown"] == {month: {"date": month, "spam": 2, "ham": 3,
                                          "missed_spam": 1, "false_positives": 1}}
    # The other site's key sees only its own check.
    theirs = app.json.loads(wp_call(client, "get-stats", other, blog="https://blog.example",
                                    **{"from": "6-months"})[3])
    assert (theirs["spam"], theirs["ham"], theirs["accuracy"]) == (0, 1, 100.0)


def test_get_stats_periods(make_app: Callable[..., Flask], db_url: str) -> None:
    app = make_app(database_url=db_url)
    store = store_of(app)
    key = store.create_key(BLOG)[0]
    client = app.test_client()
    old = check(client, key, comment_content=SPAM).headers["X-akismet-guid"]
    check(client, key, comment_content=HAM)
    back = now() - timedelta(days=100)
    with store.transaction() as c:
        c.execute(update(t.comments).where(t.comments.c.guid == old).values(received_at=back))

    def stats(period: str) -> dict[str, object]:
        data: dict[str, object] = app.json.loads(
            wp_call(client, "get-stats", key, **{"from": period})[3])
        return data

    assert (stats("all")["spam"], stats("all")["ham"]) == (1, 1)
    assert (stats("6-months")["spam"], stats("6-months")["ham"]) == (1, 1)
    assert (stats("60-days")["spam"], stats("60-days")["ham"]) == (0, 1)
    assert (stats("")["from"], stats("")["spam"]) == ("all", 1)  # default: all time
    months = stats("all")["breakdown"]
    assert isinstance(months, dict)
    first, *_, last = months
    assert (first, last) == (back.strftime("%Y-%m"), now().strftime("%Y-%m"))
    assert len(months) >= 4  # the months between, with zeros
    assert sum(m["spam"] for m in months.values()) == 1
    # A site without any check: zeros, accuracy 100, the current month in the breakdown.
    fresh = store.create_key("https://fresh.example")[0]
    empty = app.json.loads(wp_call(client, "get-stats", fresh, blog="https://fresh.example")[3])
    assert (empty["spam"], empty["ham"], empty["accuracy"]) == (0, 0, 100.0)
    assert list(empty["breakdown"]) == [now().strftime("%Y-%m")]


def test_get_stats_bad_input(client: FlaskClient, key: str) -> None:
    status, _, why, body = wp_call(client, "get-stats", key, **{"from": "forever"})
    assert (status, body) == (200, b"invalid") and "60-days, 6-months or all" in why
    assert wp_call(client, "get-stats", "abcdef012345")[3] == b"invalid"
    assert_invalid(client.get("/1.1/get-stats", query_string={"key": key, "blog": BLOG}),
                   "POST")


def test_deactivate_keeps_the_key(client: FlaskClient, key: str, app: Flask) -> None:
    assert wp_call(client, "deactivate", key, stored=key) == (200, "text/plain", "",
                                                              b"deactivated")
    assert store_of(app).audit_entries(1)[0]["action"] == "key.deactivate"
    # switched on again later with the same key
    assert wp_call(client, "verify-key", key)[3] == b"valid"
    assert wp_call(client, "deactivate", "abcdef012345")[3] == b"invalid"


def test_wordpress_honeypot_field(client: FlaskClient, key: str) -> None:
    """The plugin renders a hidden ``ak_hp_textarea`` and forwards it as
    ``POST_ak_hp_textarea`` without naming it in ``honeypot_field_name``."""
    filled = check(client, key, comment_content=HAM, POST_ak_hp_textarea="http://bot.example",
                   POST_ak_js="1795795365", **WORDPRESS_NOISE)
    assert_text(filled, b"true")
    assert filled.headers["X-akismet-pro-tip"] == "discard"
    empty = check(client, key, comment_content=HAM, POST_ak_hp_textarea="", POST_ak_js="1",
                  **WORDPRESS_NOISE)
    assert_text(empty, b"false")
    # A named honeypot field decides when both are present.
    named = check(client, key, comment_content=HAM, honeypot_field_name="hp", hp="",
                  POST_ak_hp_textarea="x")
    assert_text(named, b"false")
