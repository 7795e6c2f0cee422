"""The OpenAPI document: valid 3.1, and every /api/v1/ rule of the app is in it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from service.api.openapi import document
from service.resources import EXTENSION

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def openapi_path(rule: str) -> str:
    """Werkzeug's ``/x/<int:id>`` as OpenAPI's ``/x/{id}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def served(client: FlaskClient) -> dict:  # type: ignore[type-arg]
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    assert r.mimetype == "application/json"
    body: dict = r.get_json()  # type: ignore[type-arg]
    return body


def test_document_is_valid_openapi_3_1(client: FlaskClient) -> None:
    doc = served(client)
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_every_api_rule_is_documented(app: Flask, client: FlaskClient) -> None:
    """Endpoints added under /api/v1/ fail here until the document describes them."""
    paths = served(client)["paths"]
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = openapi_path(rule.rule)
        for method in sorted((rule.methods or set()) - IGNORED_METHODS):
            if method.lower() not in paths.get(path, {}):
                missing.append(f"{method} {path}")
    assert not missing, f"undocumented in service/api/openapi.json: {missing}"


def test_every_documented_operation_exists(app: Flask, client: FlaskClient) -> None:
    rules: dict[str, set[str]] = {}
    for r in app.url_map.iter_rules():  # one path may have several rules (GET and POST views)
        rules.setdefault(openapi_path(r.rule), set()).update(r.methods or set())
    for path, operations in served(client)["paths"].items():
        assert path in rules, f"{path} is documented but not served"
        for method in operations:
            if method in {"get", "post", "put", "patch", "delete"}:
                assert method.upper() in rules[path], f"{method} {path} is not served"


def test_error_responses_use_the_error_schema(client: FlaskClient) -> None:
    doc = served(client)
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):
                    assert response["$ref"].startswith("#/components/responses/"), (
                        f"{method} {path} {status}"
                    )
    for name, response in doc["components"]["responses"].items():
        schema = response["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Error"}, name


def test_bearer_security_scheme(client: FlaskClient) -> None:
    schemes = served(client)["components"]["securitySchemes"]
    assert schemes["bearer"] == schemes["bearer"] | {"type": "http", "scheme": "bearer"}


def test_request_schema_names_every_comment_field(client: FlaskClient) -> None:
    from training.features import COMMENT_FIELDS

    props = served(client)["components"]["schemas"]["Comment"]["properties"]
    assert set(props) == set(COMMENT_FIELDS)


@pytest.mark.parametrize(
    ("settings", "where", "value"),
    [
        ({"max_content_chars": 500}, ("Content", "maxLength"), 500),
        ({"max_field_chars": 64}, ("OptionalField", "maxLength"), 64),
        ({"batch_max": 7}, ("Batch", "properties", "comments", "maxItems"), 7),
    ],
)
def test_limits_follow_the_configuration(make_app, settings: dict, where: tuple,  # type: ignore[no-untyped-def, type-arg]
                                         value: int) -> None:
    app = make_app(**settings)
    node = served(app.test_client())["components"]["schemas"]
    for key in where:
        node = node[key]
    assert node == value
    assert document(app.extensions[EXTENSION].settings)["components"]["schemas"] is not None


def test_documented_limits_are_the_enforced_ones(make_app) -> None:  # type: ignore[no-untyped-def]
    client = make_app(max_content_chars=50).test_client()
    limit = served(client)["components"]["schemas"]["Content"]
    assert client.post("/api/v1/check", json={"content": "x" * limit["maxLength"]}).status_code \
        == 200
    r = client.post("/api/v1/check", json={"content": "x" * (limit["maxLength"] + 1)})
    assert r.status_code == 400


def _documented_check_fields() -> dict[str, str]:
    """docs/api.md's table of the check request: field -> its type column."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    table = text.split("## `POST /api/v1/check`", 1)[1].split("Answer (200)", 1)[0]
    out: dict[str, str] = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            for name in cells[0].replace("`", "").split(","):
                out[name.strip()] = cells[1]
    return out


def test_docs_and_openapi_agree_on_every_comment_field(client: FlaskClient) -> None:
    doc = served(client)
    schemas = doc["components"]["schemas"]
    props = schemas["Comment"]["properties"]
    documented = _documented_check_fields()
    assert set(documented) == set(props)
    for name, kind in documented.items():
        schema = schemas[props[name]["$ref"].rsplit("/", 1)[1]]
        assert "string" in schema["type"] and kind.startswith("string"), name
        assert ("ISO 8601" in kind) == (schema.get("format") == "date-time"), name
        feedback = schemas["Feedback"]["properties"].get(name)
        if feedback is not None and name != "content":
            assert feedback == props[name], name


@pytest.mark.parametrize("path", ["/api/v1/check", "/api/v1/feedback", "/api/v1/check/batch"])
def test_every_documented_field_type_is_enforced(client: FlaskClient, path: str) -> None:
    """A wrong type or a malformed time is a 400 that names the field, for every field
    the document describes; a well-formed time is accepted."""
    schemas = served(client)["components"]["schemas"]
    props = schemas["Comment"]["properties"]

    def post(fields: dict[str, object]):  # type: ignore[no-untyped-def]
        body: dict[str, object] = {"content": "a normal comment about the article", **fields}
        if path.endswith("feedback"):
            body["label"] = "ham"
        if path.endswith("batch"):
            return client.post(path, json={"comments": [body]}), "comments[0]."
        return client.post(path, json=body), ""

    for name, ref in props.items():
        r, where = post({name: 12})
        assert r.status_code == 400, name
        assert r.get_json()["error"]["field"] == f"{where}{name}"
        if schemas[ref["$ref"].rsplit("/", 1)[1]].get("format") == "date-time":
            for bad in ("yesterday", "2026-11-27", "2026-11-27T14:05:00", "27/11/2026 14:05"):
                r, where = post({name: bad})
                assert r.status_code == 400, (name, bad)
                error = r.get_json()["error"]
                assert error["field"] == f"{where}{name}" and "ISO 8601" in error["message"]
            for good in ("2026-11-27T14:05:00Z", "2026-11-27T15:05:00+01:00", "", None):
                r, _ = post({name: good})
                assert r.status_code == 200, (name, good, r.get_json())
