"""Edge inputs the fuzzer and a review found answering 500, now clear 4xx answers."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.errors import ValidationError
from service.resources import EXTENSION
from service.store.db import site_key


@pytest.mark.parametrize("url", ["a:xyz", "news.example:99999999", "ftp://news.example",
                                 "javascript://news.example"])
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



def _chunked(app: Flask, path: str, ctype: str, body: bytes) -> tuple[str, dict[str, str], bytes]:
    """A request without Content-Length, as gunicorn hands a chunked body to the app."""
    import io

    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(path=path, method="POST", content_type=ctype).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["wsgi.input_terminated"] = True
    seen: list[tuple[str, dict[str, str]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc: object = None) -> None:
        seen.append((status, dict(headers)))

    out = b"".join(app(environ, start_response))
    return seen[0][0], seen[0][1], out


def test_a_chunked_body_over_the_limit_is_413_not_a_json_error(app: Flask) -> None:
    """Werkzeug reads a body without a length only up to the limit: it used to reach
    the view cut short and be answered invalid_json at the limit's offset."""
    limit = app.config["MAX_CONTENT_LENGTH"]
    big = b'{"content": "' + b"x" * limit + b'"}'
    status, _, body = _chunked(app, "/api/v1/check", "application/json", big)
    assert status.startswith("413") and b"payload_too_large" in body
    status, _, body = _chunked(app, "/api/v1/check", "application/json",
                               b'{"content": "a chunked comment"}')
    assert status.startswith("200"), body
    status, headers, body = _chunked(app, "/1.1/comment-check",
                                     "application/x-www-form-urlencoded",
                                     b"comment_content=" + b"x" * limit)
    assert body == b"invalid" and "over" in headers["X-akismet-debug-help"]


def test_a_batch_item_that_is_not_an_object_is_named_exactly(client: FlaskClient) -> None:
    r = client.post("/api/v1/check/batch", json={"comments": [{"content": "fine"}, 3]})
    assert r.status_code == 400
    error = r.get_json()["error"]
    assert error["message"] == "comments[1] must be a JSON object"
    assert error["field"] == "comments[1]"
