"""Characters no database stores, refused at the edge the same way everywhere.

PostgreSQL refuses NUL (U+0000) in text, and no UTF-8 database stores a lone
surrogate (U+D800-U+DFFF without its pair). Let through, one such comment made
a storage error long after the client got its answer (a 503 on feedback, a
dropped write-behind batch). Every request is looked at once, before any view:
the query string, the form and the JSON body; a value that holds one is a 400
that names the field. The Akismet form is decoded by its own ``blog_charset``
(service/akismet.py), so it is checked there, after decoding, with the same
function.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Request

from service.errors import PayloadTooLarge, ValidationError

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# In a JSON body, such a character can only arrive escaped (a raw control byte is
# no valid JSON): look further only when the body holds such an escape.
JSON_SUSPECT = re.compile(rb"\\u0000|\\u[dD][89a-fA-F]")
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
# Blueprints that decode their form themselves (Akismet's blog_charset).
OWN_FORM_DECODING = frozenset({"akismet"})


def refuse_unstorable(value: str, field: str) -> None:
    """A 400 naming ``field`` when ``value`` holds NUL or a lone surrogate."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return
    what = "a NUL character (U+0000)" if found.group() == "\x00" else (
        f"a lone surrogate (U+{ord(found.group()):04X})"
    )
    raise ValidationError(
        f"'{field}' holds {what}, which cannot be stored; remove it and send again",
        field=field,
    )


def refuse_in_mapping(values: Any, prefix: str = "") -> None:
    """:func:`refuse_unstorable` over every key and value of a multi-dict or dict."""
    items = values.items(multi=True) if hasattr(values, "getlist") else values.items()
    for key, value in items:
        name = f"{prefix}{key}"
        refuse_unstorable(str(key), name)
        if isinstance(value, str):
            refuse_unstorable(value, name)


def refuse_in_json(value: Any, path: str = "") -> None:
    """Walk a parsed JSON document; the field is named by its path (``comments[2].content``)."""
    if isinstance(value, str):
        refuse_unstorable(value, path or "body")
    elif isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            refuse_unstorable(str(key), name)
            refuse_in_json(item, name)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            refuse_in_json(item, f"{path}[{i}]")


def refuse_chunked_over_limit(request: Request) -> None:
    """A 413 for a body sent without a length (chunked) that runs past the limit.

    Werkzeug reads such a body only up to ``MAX_CONTENT_LENGTH`` and stops there
    without a word, so the view saw a document cut short (a JSON body answered
    ``invalid_json`` at the limit's offset). One byte more on the input says so."""
    limit = request.max_content_length
    if request.content_length is not None or limit is None:
        return
    if len(request.get_data(cache=True)) >= limit and request.environ["wsgi.input"].read(1):
        raise PayloadTooLarge(f"request body is over {limit} bytes")


def check_request(request: Request) -> None:
    """The edge check: path, query string, form (unless its blueprint decodes it), JSON body."""
    if request.view_args:
        refuse_in_mapping(request.view_args)
    if request.query_string:
        refuse_in_mapping(request.args)
    if request.method not in {"POST", "PUT", "PATCH", "DELETE"}:
        return
    refuse_chunked_over_limit(request)
    if request.mimetype in _FORM_TYPES:
        if request.blueprint in OWN_FORM_DECODING:
            return
        raw = request.get_data(cache=True) if request.mimetype != "multipart/form-data" else b""
        if not raw or b"%00" in raw or b"\x00" in raw:
            refuse_in_mapping(request.form)
        return
    raw = request.get_data(cache=True)
    if raw and JSON_SUSPECT.search(raw) is not None:
        try:
            document = json.loads(raw)  # keeps lone surrogates, which orjson refuses
        except ValueError:
            return  # not JSON: the view answers that in its own words
        refuse_in_json(document)
