"""Allow and block lists: storage, matching, the check flow, the JSON API and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask

from service.errors import Conflict, NotFound, ValidationError
from service.scoring.site_rules import (
    Entry,
    RuleSet,
    add_rule,
    list_rules,
    normalise_value,
    remove_rule,
)
from service.store.db import Store
from training.features import Comment


@pytest.mark.parametrize(
    ("kind", "value", "stored"),
    [
        ("email", " Ed@Example.ORG ", "ed@example.org"),
        ("domain", "https://www.Spam.example/path", "spam.example"),
        ("ip", "10.1.2.3", "10.1.2.3/32"),
        ("ip", "10.1.2.0/24", "10.1.2.0/24"),
        ("ip", "2001:db8::1", "2001:db8::1/128"),
        ("phrase", "Check  out my CHANNEL", "check out my channel"),
        ("phrase", "c h e c k this", "check this"),
    ],
)
def test_values_are_normalised(kind: str, value: str, stored: str) -> None:
    assert normalise_value(kind, value) == stored


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("email", "not-an-email"),
        ("domain", "no domain"),
        ("domain", "<script>"),
        ("ip", "300.1.1.1"),
        ("phrase", "   "),
        ("phrase", "\u200b"),
        ("phrase", "x" * 501),
        ("phrase", 42),
        ("colour", "red"),
    ],
)
def test_bad_values_are_refused(kind: str, value: object) -> None:
    with pytest.raises(ValidationError):
        normalise_value(kind, value)


def test_store_add_list_remove(store: Store) -> None:
    with pytest.raises(NotFound, match="known sites: none yet"):  # never a silent new site
        add_rule(store, "news.example.com", "block", "phrase", "Buy now", actor="t")
    store.ensure_site("https://news.example.com/")
    store.ensure_site("other.example")
    site = add_rule(store, "news.example.com", "block", "phrase", "Buy now", actor="t")
    glob = add_rule(store, None, "allow", "email", "ed@example.org", actor="t")
    other = add_rule(store, "other.example", "block", "ip", "10.0.0.0/8", actor="t")
    assert site["value"] == "buy now" and glob["site_id"] is None
    ids = {r["id"] for r in list_rules(store, "news.example.com")}
    assert ids == {site["id"], glob["id"]}  # the site's own and the all-sites entries
    assert len(list_rules(store)) == 3
    with pytest.raises(Conflict):
        add_rule(store, "news.example.com", "block", "phrase", "buy   NOW", actor="t")
    with pytest.raises(Conflict):  # NULL site ids are duplicates too
        add_rule(store, None, "allow", "email", "ED@example.org", actor="t")
    with pytest.raises(ValidationError):
        add_rule(store, None, "maybe", "email", "a@b.example", actor="t")
    with pytest.raises(NotFound):  # a site may only remove its own entries
        remove_rule(store, other["id"], actor="t", site_url="news.example.com")
    remove_rule(store, other["id"], actor="t")
    with pytest.raises(NotFound):
        remove_rule(store, other["id"], actor="t")
    assert len(list_rules(store)) == 2


def entry(list_name: str, kind: str, value: str, site_id: int | None = None) -> Entry:
    return Entry(list_name, kind, normalise_value(kind, value), site_id)


@pytest.mark.parametrize(
    ("rule", "comment", "hit"),
    [
        (
            entry("block", "email", "bad@x.example"),
            Comment("hi", author_email="BAD@x.example"),
            True,
        ),
        (
            entry("block", "email", "bad@x.example"),
            Comment("hi", author_email="ok@x.example"),
            False,
        ),
        (entry("block", "domain", "spam.example"), Comment("see http://shop.spam.example/a"), True),
        (
            entry("block", "domain", "spam.example"),
            Comment("hi", author_url="https://spam.example"),
            True,
        ),
        (
            entry("block", "domain", "spam.example"),
            Comment("hi", author_email="a@spam.example"),
            True,
        ),
        (entry("block", "domain", "spam.example"), Comment("notspam.example is fine"), False),
        (entry("block", "ip", "10.0.0.0/8"), Comment("hi", user_ip="10.9.8.7"), True),
        (entry("block", "ip", "10.0.0.0/8"), Comment("hi", user_ip="11.0.0.1"), False),
        (entry("block", "ip", "10.0.0.0/8"), Comment("hi", user_ip="garbage"), False),
        (entry("block", "phrase", "buy now"), Comment("Please B U Y  NOW!"), True),
        (entry("block", "phrase", "buy now"), Comment("buy nowhere"), False),
        (entry("block", "phrase", "buy now"), Comment("bυy now"), True),  # Greek upsilon
    ],
)
def test_matching(rule: Entry, comment: Comment, hit: bool) -> None:
    result = RuleSet([rule])(comment)
    assert (result is not None) == hit
    if result is not None:
        assert result.probability == 1.0
        assert rule.value in result.description


def test_fingerprint_names_the_entries() -> None:
    a = RuleSet([entry("block", "phrase", "buy now")])
    b = RuleSet([entry("block", "phrase", "buy now")])
    c = RuleSet([entry("block", "phrase", "sell now")])
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert RuleSet([]).fingerprint == ""


def test_allow_beats_block() -> None:
    rules = RuleSet(
        [entry("block", "phrase", "free money"), entry("allow", "email", "ed@paper.example", 1)]
    )
    hit = rules(Comment("free money for all", author_email="ed@paper.example"))
    assert hit is not None and hit.probability == 0.0
    assert "allow list" in hit.description


# --- through the check flow and the API -----------------------------------------


@pytest.fixture
def rules_app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(site_rules_ttl_seconds=0.0)


def test_block_and_allow_lists_decide_checks_and_are_named(rules_app: Flask) -> None:
    client = rules_app.test_client()
    text = "Thanks for the thoughtful article about the council vote."
    before = client.post("/api/v1/check", json={"content": text}).get_json()
    assert before["reasons"][0]["kind"] != "rule"
    r = client.post(
        "/api/v1/rules", json={"list": "block", "kind": "phrase", "value": "council vote"}
    )
    assert r.status_code == 201
    body = client.post("/api/v1/check", json={"content": text}).get_json()
    assert body["verdict"] == "spam"
    assert body["reasons"] == [
        {
            "kind": "rule",
            "description": "phrase 'council vote' is on the global block list",
            "direction": "spam",
            "weight": 0.0,
        }
    ]
    spam = "Check out my channel and subscribe http://bit.ly/x"
    client.post("/api/v1/rules", json={"list": "allow", "kind": "email", "value": "me@x.example"})
    body = client.post(
        "/api/v1/check", json={"content": spam, "author_email": "me@x.example"}
    ).get_json()
    assert body["verdict"] == "ham"
    assert "allow list" in body["reasons"][0]["description"]


def test_rules_api_round_trip_and_bad_input(rules_app: Flask) -> None:
    from service.resources import EXTENSION

    client = rules_app.test_client()
    unknown = {"site": "news.example.com", "list": "block", "kind": "domain", "value": "x.example"}
    r = client.post("/api/v1/rules", json=unknown)
    assert r.status_code == 404 and "known sites" in r.get_json()["error"]["message"]
    rules_app.extensions[EXTENSION].store.ensure_site("news.example.com")
    r = client.post(
        "/api/v1/rules",
        json={
            "site": "news.example.com",
            "list": "block",
            "kind": "domain",
            "value": "spam.example",
        },
    )
    assert r.status_code == 201
    rule_id = r.get_json()["rule"]["id"]
    listed = client.get("/api/v1/rules?site=news.example.com").get_json()["rules"]
    assert [x["id"] for x in listed] == [rule_id] and listed[0]["site"] == "news.example.com"
    bad = [
        ({"list": "block", "kind": "domain"}, 400),
        ({"list": "block", "kind": "domain", "value": "<script>alert(1)</script>"}, 400),
        ({"list": "grey", "kind": "ip", "value": "1.2.3.4"}, 400),
        ({"list": "block", "kind": "ip", "value": "1.2.3.4", "extra": 1}, 400),
        ({"list": ["block"], "kind": "ip", "value": "1.2.3.4"}, 400),
        ({"site": 5, "list": "block", "kind": "ip", "value": "1.2.3.4"}, 400),
        ([1, 2], 400),
    ]
    for body, status in bad:
        r = client.post("/api/v1/rules", json=body)
        assert r.status_code == status, body
        assert set(r.get_json()["error"]) >= {"code", "message"}
    r = client.post("/api/v1/rules", data="not json", content_type="application/json")
    assert r.status_code == 400
    dup = {"site": "news.example.com", "list": "block", "kind": "domain", "value": "spam.example"}
    assert client.post("/api/v1/rules", json=dup).status_code == 409
    assert client.delete(f"/api/v1/rules/{rule_id}").status_code == 200
    assert client.delete(f"/api/v1/rules/{rule_id}").status_code == 404
    assert client.get("/api/v1/rules").get_json()["rules"] == []


def test_rules_api_with_a_site_key_is_scoped_to_that_site(rules_app: Flask) -> None:
    from service.resources import EXTENSION

    store = rules_app.extensions[EXTENSION].store
    key, _ = store.create_key("news.example.com")
    store.ensure_site("other.example")
    other = add_rule(store, "other.example", "block", "phrase", "hello", actor="t")
    client = rules_app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    r = client.post(
        "/api/v1/rules", json={"list": "block", "kind": "phrase", "value": "x y"}, headers=headers
    )
    assert r.status_code == 201
    assert [
        x["site"] for x in client.get("/api/v1/rules", headers=headers).get_json()["rules"]
    ] == ["news.example.com"]
    assert client.delete(f"/api/v1/rules/{other['id']}", headers=headers).status_code == 404
    bad = client.get("/api/v1/rules", headers={"Authorization": "Bearer wrongkey0000"})
    assert bad.status_code == 401


def test_rules_api_needs_a_key_when_auth_is_required(make_app: Callable[..., Flask]) -> None:
    client = make_app(require_auth=True).test_client()
    assert client.get("/api/v1/rules").status_code == 401


def test_cli_add_list_remove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.cli.main import main
    monkeypatch.setenv("COMMENTMOD_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("COMMENTMOD_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    runner = CliRunner()
    add = ["rules", "add", "--site", "news.example.com", "--block", "--phrase", "Buy NOW"]
    r = runner.invoke(main, add)
    assert r.exit_code == 2 and "no site 'news.example.com' (known sites: none yet)" in r.output
    created = runner.invoke(main, ["keys", "create", "--site", "https://news.example.com/"])
    assert created.exit_code == 0
    r = runner.invoke(main, add)
    assert r.exit_code == 0, r.output
    assert "rule 1: block phrase 'buy now' for news.example.com" in r.output
    r = runner.invoke(main, ["rules", "add", "--allow", "--ip", "192.0.2.0/24"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["rules", "list"])
    assert "buy now" in r.output and "192.0.2.0/24" in r.output
    for args in (
        ["--block"],
        ["--block", "--email", "a@b.example", "--ip", "1.2.3.4"],
        ["--email", "a@b.example"],
    ):
        assert runner.invoke(main, ["rules", "add", *args]).exit_code == 2
    r = runner.invoke(main, ["rules", "add", "--block", "--ip", "nonsense"])
    assert r.exit_code == 2 and "not an IP address" in r.output
    assert runner.invoke(main, ["rules", "remove", "1"]).exit_code == 0
    assert runner.invoke(main, ["rules", "remove", "1"]).exit_code == 2
