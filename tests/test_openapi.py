"""The OpenAPI document: valid 3.1, and every /api/v1/ rule of the app is in it."""

from __future__ import annotations

import re

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
