"""Edge inputs the fuzzer and a review found answering 500, now clear 4xx answers."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.errors import ValidationError
from service.resources import EXTENSION
from service.store.db import site_key


@pytest.mark.parametrize("url", ["a:xyz", "news.example:99999999"])
def test_site_urls_with_bad_ports_are_invalid_not_crashes(url: str) -> None:
    with pytest.raises(ValidationError):
        site_key(url)


def test_rules_with_a_huge_id_or_bad_site_are_4xx(client: FlaskClient) -> None:
    assert client.delete("/api/v1/rules/999999999999999999999999999999").status_code == 404
    r = client.get("/api/v1/rules?site=a:xyz")
    assert 400 <= r.status_code < 500


def test_feedback_guid_of_another_site_does_not_label_it(app: Flask, client: FlaskClient) -> None:
    store = app.extensions[EXTENSION].store
    key_a, _ = store.create_key("https://a.example")
    key_b, _ = store.create_key("https://b.example")
    guid = client.post("/api/v1/check", json={"content": "a comment on site a"},
                       headers={"Authorization": f"Bearer {key_a}"}).get_json()["guid"]
    r = client.post("/api/v1/feedback", json={"label": "spam", "guid": guid},
                    headers={"Authorization": f"Bearer {key_b}"})
    assert r.status_code in {400, 404}
    comment = store.find_comment(guid=guid)
    assert comment is not None and store.latest_label(comment["id"]) is None

