"""The JSON scoring API's contract and its answers to bad input."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient

SPAM = "Check out my channel and SUBSCRIBE!!! http://bit.ly/free-money win an iPhone"
HAM = "The council should publish the budget before the vote, not after. Good reporting."


def check(client: FlaskClient, body: object, **kw: object):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/check", json=body, **kw)


def test_check_answers_the_documented_shape(client: FlaskClient) -> None:
    r = check(client, {"content": SPAM, "author": "x", "unknown_field": [1, 2]})
    assert r.status_code == 200
    body = r.get_json()
    assert set(body) >= {"verdict", "spam_probability", "discard", "reasons", "model_version",
                         "guid", "cached"}
    assert body["verdict"] in {"ham", "unsure", "spam"}
    assert 0.0 <= body["spam_probability"] <= 1.0
    assert isinstance(body["discard"], bool)
    for reason in body["reasons"]:
        assert set(reason) == {"kind", "description", "direction", "weight"}
        assert reason["direction"] in {"spam", "ham"}


def test_obvious_spam_and_ham(client: FlaskClient) -> None:
    assert check(client, {"content": SPAM}).get_json()["verdict"] == "spam"
    assert check(client, {"content": HAM}).get_json()["verdict"] == "ham"


def test_spam_reasons_name_what_pushed_the_score(client: FlaskClient) -> None:
    reasons = check(client, {"content": SPAM}).get_json()["reasons"]
    text = " ".join(r["description"] for r in reasons if r["direction"] == "spam")
    assert "link" in text or "subscribe" in text or "channel" in text


@pytest.mark.parametrize(
    ("content", "present", "absent"),
    [
        ("Get rich fast at www.cash-now.biz today!", ["a link to www.cash-now.biz"],
         ["cash.now.biz", "many exclamation marks"]),
        ("The council approved the 2026 budget on Tuesday!", [],
         ["many digits", "many exclamation marks", "the word 'the'", "the word 'on'"]),
        ("WIN NOW call 555 123 4567 8910 WIN!!!!!!!", ["many exclamation marks"], []),
    ],
)
def test_reasons_are_true_of_the_comment(
    client: FlaskClient, content: str, present: list[str], absent: list[str]
) -> None:
    """Domains as written, counts only when many, no stop words (the words a moderator
    reads come from the same scorer that answers the check)."""
    body = check(client, {"content": content}).get_json()
    words = [r["description"] for r in body["reasons"]]
    text = " | ".join(words)
    for phrase in present:
        assert phrase in words, text
    for phrase in absent:
        assert phrase not in text, text


def test_thresholds_come_from_model_metadata(app, client: FlaskClient) -> None:  # type: ignore[no-untyped-def]
    from service.resources import EXTENSION

    scorer = app.extensions[EXTENSION].models.scorer()
    assert scorer.thresholds == scorer.model.metadata["thresholds"]


def test_each_check_gets_its_own_guid(client: FlaskClient) -> None:
    a = check(client, {"content": HAM}).get_json()["guid"]
    b = check(client, {"content": HAM}).get_json()["guid"]
    assert a != b


def test_batch_scores_each_comment_in_order(client: FlaskClient) -> None:
    r = client.post("/api/v1/check/batch", json={"comments": [{"content": SPAM}, {"content": HAM}]})
    assert r.status_code == 200
    results = r.get_json()["results"]
    assert [x["verdict"] for x in results] == ["spam", "ham"]


def test_hostile_html_is_scored_not_interpreted(client: FlaskClient) -> None:
    r = check(client, {"content": "<script>alert(1)</script><img src=x onerror=alert(2)>"})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"data": "{not json", "content_type": "application/json"}, 400, "invalid_json"),
        ({"data": "", "content_type": "application/json"}, 400, "invalid_json"),
        ({"data": b'{"content": "\xff\xfe"}', "content_type": "application/json"}, 400,
         "invalid_encoding"),
        ({"data": "content=hi", "content_type": "application/x-www-form-urlencoded"}, 415,
         "unsupported_media_type"),
        ({"data": json.dumps({"content": "hi"}), "content_type": "text/plain"}, 415,
         "unsupported_media_type"),
        ({"json": ["content"]}, 400, "invalid_field"),
        ({"json": {}}, 400, "invalid_field"),
        ({"json": {"content": 42}}, 400, "invalid_field"),
        ({"json": {"content": None}}, 400, "invalid_field"),
        ({"json": {"content": "   "}}, 400, "invalid_field"),
        ({"json": {"content": "\u200b\u200b \u200d\ufeff\u00ad"}}, 400, "invalid_field"),
        ({"json": {"content": "hi", "author": {"a": 1}}}, 400, "invalid_field"),
        ({"json": {"content": "x" * 20_001}}, 400, "invalid_field"),
        ({"json": {"content": "hi", "author_url": "u" * 2_001}}, 400, "invalid_field"),
    ],
)
def test_bad_input_gets_a_precise_4xx(client: FlaskClient, kwargs: dict, status: int,
                                      code: str) -> None:
    r = client.post("/api/v1/check", **kwargs)
    assert r.status_code == status
    err = r.get_json()["error"]
    assert err["code"] == code
    assert err["message"]


def test_body_over_the_size_limit_is_413(make_app) -> None:  # type: ignore[no-untyped-def]
    client = make_app(max_request_bytes=1000).test_client()
    r = client.post("/api/v1/check", json={"content": "x" * 2000})
    assert r.status_code == 413
    assert r.get_json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "invalid_field"),
        ({"comments": "nope"}, "invalid_field"),
        ({"comments": []}, "invalid_field"),
        ({"comments": [{"content": "ok"}, {"content": 3}]}, "invalid_field"),
        ({"comments": [{"content": "ok"}] * 101}, "batch_too_large"),
    ],
)
def test_bad_batches(client: FlaskClient, body: dict, code: str) -> None:
    r = client.post("/api/v1/check/batch", json=body)
    assert 400 <= r.status_code < 500
    assert r.get_json()["error"]["code"] == code


def test_batch_error_names_the_item(client: FlaskClient) -> None:
    r = client.post("/api/v1/check/batch", json={"comments": [{"content": "ok"}, {"content": 3}]})
    assert r.get_json()["error"]["field"] == "comments[1].content"


@pytest.mark.parametrize(("method", "path", "status"), [
    ("get", "/api/v1/check", 405), ("post", "/api/v1/nope", 404), ("get", "/nope", 404)])
def test_unknown_routes_answer_json(client: FlaskClient, method: str, path: str,
                                    status: int) -> None:
    r = getattr(client, method)(path)
    assert r.status_code == status
    assert "error" in r.get_json()
