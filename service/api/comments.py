"""Turning request bodies into :class:`~training.features.Comment` records.

The JSON API's rules, documented in docs/api.md: ``content`` is a required,
non-blank string; every other known field is a string or null (the two times:
ISO 8601 with a time zone); unknown fields are ignored; over-long or malformed
fields are refused with the field named.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Any

import orjson
from flask import Request

from service.config import Settings
from service.errors import (
    InvalidEncoding,
    InvalidJSON,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationError,
)
from training.text import COMMENT_FIELDS, Comment

STRING_FIELDS = tuple(f for f in COMMENT_FIELDS if f != "content")

# Documented as ISO 8601 with a time zone ("format": "date-time" in openapi.json).
TIME_FIELDS = ("created_at", "article_published_at")


def _visible(text: str) -> bool:
    """Whether ``text`` has a character that is neither white space nor an invisible
    format character (zero-width space or joiner, soft hyphen, BOM: category Cf).
    Stops at the first, which for any real comment is the first character."""
    return any(not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text)


def check_time(name: str, value: str, where: str = "") -> None:
    """A 400 naming the field unless ``value`` is blank or ISO 8601 with a time zone."""
    if not value.strip():
        return
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValidationError(
            f"'{name}' must be an ISO 8601 time with a time zone, "
            f"e.g. 2026-11-27T14:05:00Z, got {value[:40]!r}",
            field=f"{where}{name}",
        )


def json_body(request: Request, settings: Settings) -> Any:
    """The request's JSON document, or a precise 4xx error."""
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, got {mimetype or 'nothing'!r}"
        )
    if request.content_length is not None and request.content_length > settings.max_request_bytes:
        raise PayloadTooLarge(f"request body is over {settings.max_request_bytes} bytes")
    raw = request.get_data(cache=True)
    if len(raw) > settings.max_request_bytes:
        raise PayloadTooLarge(f"request body is over {settings.max_request_bytes} bytes")
    if not raw.strip():
        raise InvalidJSON("request body is empty; expected a JSON object")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEncoding(f"request body is not valid UTF-8 (byte {exc.start})") from exc
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(f"request body is not valid JSON: {exc}") from exc


def parse_comment(obj: Any, settings: Settings, where: str = "") -> Comment:
    """Validate one JSON object into a Comment. ``where`` prefixes field names in errors."""
    if not isinstance(obj, dict):
        item = where.rstrip(".")  # "comments[3]." names the item "comments[3]"
        raise ValidationError(f"{item or 'body'} must be a JSON object", field=item or None)
    content = obj.get("content")
    if content is None:
        raise ValidationError("'content' is required", field=f"{where}content")
    if not isinstance(content, str):
        raise ValidationError(
            f"'content' must be a string, got {type(content).__name__}", field=f"{where}content"
        )
    if not _visible(content):
        raise ValidationError("'content' is blank", field=f"{where}content")
    if len(content) > settings.max_content_chars:
        raise ValidationError(
            f"'content' is {len(content)} characters; the limit is {settings.max_content_chars}",
            field=f"{where}content",
        )
    values: dict[str, Any] = {}
    for name in STRING_FIELDS:
        value = obj.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ValidationError(
                f"'{name}' must be a string, got {type(value).__name__}", field=f"{where}{name}"
            )
        if len(value) > settings.max_field_chars:
            raise ValidationError(
                f"'{name}' is {len(value)} characters; the limit is {settings.max_field_chars}",
                field=f"{where}{name}",
            )
        if name in TIME_FIELDS:
            check_time(name, value, where)
        values[name] = value
    return Comment(content=content, **values)


def comment_fields(comment: Comment) -> dict[str, str]:
    """The stored request fields of a comment (all but content), non-empty only."""
    return {name: getattr(comment, name) for name in STRING_FIELDS if getattr(comment, name)}
