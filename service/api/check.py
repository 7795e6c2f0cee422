"""The native JSON API under ``/api/v1``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request

from service.api.auth import authenticate_api
from service.api.checking import check_comments, record_feedback
from service.api.comments import json_body, parse_comment
from service.errors import BatchTooLarge, ValidationError
from service.resources import Resources, resources
from training.text import Comment

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def json_response(body: Any, status: int = 200) -> Response:
    return current_app.response_class(
        current_app.json.dumps(body), status=status, mimetype="application/json"
    )


def _site_id(res: Resources) -> int | None:
    info = authenticate_api(res, request.headers.get("Authorization"))
    return info.site_id if info is not None else None


def check_one(res: Resources, site_id: int | None, comment: Comment) -> dict[str, Any]:
    """The answer to one checked comment (this view and service.api.hotpath)."""
    [result] = check_comments(res, [comment], site_id=site_id, source="api")
    return result.to_dict()


@bp.post("/check")
def check() -> Response:
    res = resources()
    site_id = _site_id(res)
    comment = parse_comment(json_body(request, res.settings), res.settings)
    return json_response(check_one(res, site_id, comment))


@bp.post("/check/batch")
def check_batch() -> Response:
    res = resources()
    site_id = _site_id(res)
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
    results = check_comments(res, comments, site_id=site_id, source="api")
    return json_response({"results": [r.to_dict() for r in results]})


@bp.post("/feedback")
def feedback() -> Response:
    """A site's spam/ham label for a comment, matched by guid, else by content.

    The same path as Akismet's submit-spam/submit-ham: a comment never seen
    before is recorded with its label rather than refused.
    """
    res = resources()
    info = authenticate_api(res, request.headers.get("Authorization"))
    body = json_body(request, res.settings)
    if not isinstance(body, dict):
        raise ValidationError("body must be a JSON object")
    label = body.get("label")
    if label not in ("spam", "ham"):
        raise ValidationError("'label' must be \"spam\" or \"ham\"", field="label")
    guid = body.get("guid") or ""
    if not isinstance(guid, str) or len(guid) > 100:
        raise ValidationError("'guid' must be a string of at most 100 characters", field="guid")
    is_test = body.get("is_test", False)
    if not isinstance(is_test, bool):
        raise ValidationError("'is_test' must be true or false", field="is_test")
    comment = None
    if body.get("content") is not None or not guid:
        comment = parse_comment(body, res.settings)
    site_id = info.site_id if info is not None else None
    comment_id, label_id = record_feedback(
        res,
        label=label,
        source="site",
        actor=f"site:{site_id}" if site_id is not None else "api",
        site_id=site_id,
        guid=guid,
        comment=comment,
        is_test=is_test,
    )
    # pending: the check is still queued in some worker; the label joins it when it lands.
    return json_response({
        "recorded": True, "label": label, "comment_id": comment_id, "label_id": label_id,
        "pending": comment_id is None,
    })
