"""The native JSON API under ``/api/v1``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request

from service.checking import check_comments
from service.comments import json_body, parse_comment
from service.errors import BatchTooLarge, ValidationError
from service.resources import resources

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def json_response(body: Any, status: int = 200) -> Response:
    return current_app.response_class(
        current_app.json.dumps(body), status=status, mimetype="application/json"
    )


@bp.post("/check")
def check() -> Response:
    res = resources()
    comment = parse_comment(json_body(request, res.settings), res.settings)
    [result] = check_comments(res, [comment], site_id=None, source="api")
    return json_response(result.to_dict())


@bp.post("/check/batch")
def check_batch() -> Response:
    res = resources()
    body = json_body(request, res.settings)
    items = body.get("comments") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise ValidationError('body must be {"comments": [ ... ]}', field="comments")
    if not items:
        raise ValidationError("'comments' is empty", field="comments")
    if len(items) > res.settings.batch_max:
        raise BatchTooLarge(
            f"{len(items)} comments in one batch; the limit is {res.settings.batch_max}"
        )
    comments = [
        parse_comment(item, res.settings, where=f"comments[{i}].") for i, item in enumerate(items)
    ]
    results = check_comments(res, comments, site_id=None, source="api")
    return json_response({"results": [r.to_dict() for r in results]})
