"""The OpenAPI 3.1 document of the JSON API, served at ``/api/v1/openapi.json``.

The document lives in ``service/api/openapi.json`` so it reads like the contract it
is; the limits that come from settings (longest comment, longest field, largest
batch) are filled in from the running configuration, so the served document
always states the limits this server enforces. tests/test_openapi.py fails for
any ``/api/v1/`` rule the document does not describe.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources as package_files
from typing import Any

from flask import Blueprint, Response, current_app

from service.config import Settings
from service.resources import resources

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")


@cache
def _base() -> dict[str, Any]:
    text = package_files.files("service.api").joinpath("openapi.json").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


@cache
def _limited(max_content_chars: int, max_field_chars: int, batch_max: int) -> bytes:
    doc = copy.deepcopy(_base())
    schemas = doc["components"]["schemas"]
    schemas["Content"]["maxLength"] = max_content_chars
    schemas["OptionalField"]["maxLength"] = max_field_chars
    schemas["Timestamp"]["maxLength"] = max_field_chars
    schemas["Batch"]["properties"]["comments"]["maxItems"] = batch_max
    return json.dumps(doc, ensure_ascii=False, indent=1).encode()


def document(settings: Settings) -> dict[str, Any]:
    """The document with this configuration's limits."""
    doc: dict[str, Any] = json.loads(_rendered(settings))
    return doc


def _rendered(settings: Settings) -> bytes:
    return _limited(settings.max_content_chars, settings.max_field_chars, settings.batch_max)


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return current_app.response_class(
        _rendered(resources().settings), status=200, mimetype="application/json"
    )
