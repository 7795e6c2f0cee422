"""The moderation actions as JSON, for sites that build their own screen.

``/api/v1/moderation/...`` authenticates a moderator with HTTP Basic (name and
password) on every request; the same site restrictions apply as in the web
queue. Writes need ``Content-Type: application/json``, which a cross-site form
cannot send, so a browser holding Basic credentials cannot be made to label.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from flask import Blueprint, Response, request

from service.api.check import json_response
from service.api.comments import json_body
from service.errors import AuthenticationError, NotFound, ValidationError
from service.moderation import login_throttle, moderators
from service.moderation.moderators import Moderator
from service.moderation.queue import (
    MAX_BULK,
    LabelRequest,
    QueueFilter,
    label_comments,
    queue,
    stats,
    visible_sites,
)
from service.resources import Resources, resources

bp = Blueprint("moderation_api", __name__, url_prefix="/api/v1/moderation")

AUTH_CACHE_SECONDS = 300  # a verified name+password skips argon2 for this long
AUTH_CACHE_SIZE = 256
PUBLIC_COLUMNS = (
    "guid",
    "site_url",
    "received_at",
    "content",
    "author",
    "author_email",
    "author_url",
    "user_ip",
    "permalink",
    "spam_probability",
    "verdict",
    "discard",
    "reasons",
    "model_version",
    "toxicity",
    "label",
    "label_actor",
    "toxicity_label",
    "copies",
)


@bp.after_request
def _challenge(response: Response) -> Response:
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="commentmod moderation"'
    return response


def _authenticate(res: Resources) -> Moderator:
    """The moderator named by HTTP Basic credentials; argon2 runs once per few minutes.

    The cache keys on an HMAC of name and password under the app's secret, never
    the password itself, and the account is re-read on every request so that a
    disabled moderator is refused at once.
    """
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username or not auth.password:
        raise AuthenticationError("HTTP Basic credentials of a moderator are required")
    cache = res.moderation_auth_cache
    digest = hmac.new(
        res.settings.secret_key.encode(),
        f"{auth.username}\0{auth.password}".encode(),
        hashlib.sha256,
    ).hexdigest()
    hit = cache.get(digest)
    if hit is not None and hit[2] > time.monotonic():
        mod = moderators.get(res.store, hit[0])
        # A new password (or disabling) moves the epoch: the old password's entry is void.
        if mod is not None and mod.session_epoch == hit[1]:
            return mod
    address = request.remote_addr or ""
    login_throttle.check(res, auth.username, address)  # before argon2: a refused guess is cheap
    hasher = moderators.hasher_for(res.settings.password_hash_cost)
    found = moderators.verify(res.store, auth.username, auth.password, hasher=hasher)
    if found is None:
        cache.pop(digest, None)
        login_throttle.failed(res, auth.username, address, via="basic")
        raise AuthenticationError("unknown moderator or wrong password")
    cache[digest] = (found.id, found.session_epoch, time.monotonic() + AUTH_CACHE_SECONDS)
    while len(cache) > AUTH_CACHE_SIZE:
        try:
            cache.popitem(last=False)
        except KeyError:  # emptied by another thread meanwhile
            break
    return found


def _public(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in PUBLIC_COLUMNS}
    out["site"] = out.pop("site_url")
    out["received_at"] = row["received_at"].isoformat()
    return out


def _site_arg(res: Resources, mod: Moderator) -> dict[str, str]:
    """The query string with ``site`` as an id: a site may be given by id, URL or host
    (``news.example.org``, ``https://www.news.example.org/``), like everywhere else.
    An unknown or unseen site lists only the moderator's own sites."""
    args = request.args.to_dict()
    site = args.get("site", "").strip()
    if site and not site.isdigit():
        try:
            site_id = res.store.site_id(site)
        except NotFound:
            site_id = None
        if site_id is None or not mod.can_see(site_id):
            yours = ", ".join(s["url"] for s in visible_sites(res, mod)) or "none"
            raise NotFound(f"no site {site[:100]!r} among yours ({yours})")
        args["site"] = str(site_id)
    return args


@bp.get("/queue")
def get_queue() -> Response:
    res = resources()
    mod = _authenticate(res)
    flt = QueueFilter.from_args(_site_arg(res, mod))
    rows, total = queue(res, mod, flt)
    return json_response(
        {
            "total": total,
            "offset": flt.offset,
            "limit": flt.limit,
            "comments": [_public(r) for r in rows],
        }
    )


@bp.post("/comments/<guid>/label")
def label_one(guid: str) -> Response:
    res = resources()
    mod = _authenticate(res)
    body = json_body(request, res.settings)
    if not isinstance(body, dict):
        raise ValidationError("body must be a JSON object")
    wanted = LabelRequest.parse(guid, body.get("label"), body.get("task"), body.get("attribute"))
    [done] = label_comments(res, mod, [wanted])
    return json_response(done.to_dict(), status=201)


@bp.post("/labels")
def label_bulk() -> Response:
    res = resources()
    mod = _authenticate(res)
    body = json_body(request, res.settings)
    items = body.get("labels") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise ValidationError(
            'body must be {"labels": [{"guid": ..., "label": ...}, ...]}', field="labels"
        )
    if len(items) > MAX_BULK:
        raise ValidationError(f"at most {MAX_BULK} labels at once", field="labels")
    wanted = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValidationError(f"labels[{i}] must be an object", field=f"labels[{i}]")
        try:
            wanted.append(
                LabelRequest.parse(
                    item.get("guid"), item.get("label"), item.get("task"), item.get("attribute")
                )
            )
        except ValidationError as exc:
            raise ValidationError(
                f"labels[{i}]: {exc.message}", field=f"labels[{i}].{exc.field}"
            ) from exc
    done = label_comments(res, mod, wanted)
    return json_response({"labelled": [d.to_dict() for d in done]}, status=201)


@bp.get("/stats")
def get_stats() -> Response:
    res = resources()
    mod = _authenticate(res)
    rows = stats(res, mod)
    site = _site_arg(res, mod).get("site")
    if site:
        rows = [r for r in rows if str(r["site_id"]) == site]
    return json_response({"sites": rows})
