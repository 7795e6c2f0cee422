"""``/api/v1/rules``: a site's allow and block lists over JSON.

With a site key (``Authorization: Bearer KEY`` or ``X-API-Key``) the lists
are that site's own. Without one, where the API does not require keys, a
``site`` field (or query parameter) names the site, and no site means the
lists of all sites.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from service.api.auth import key_info
from service.api.check import json_response
from service.api.comments import json_body
from service.errors import AuthenticationError, ValidationError
from service.resources import Resources, resources
from service.scoring.site_rules import add_rule, list_rules, remove_rule

bp = Blueprint("rules", __name__, url_prefix="/api/v1")
FIELDS = {"site", "list", "kind", "value"}


def _key() -> str:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("X-API-Key", "").strip()


def _scope(res: Resources, body_site: Any = None) -> tuple[str | None, str]:
    """(site URL or None for all sites, actor) for this request."""
    key = _key()
    if key:
        info = key_info(res, key)
        if info is None:
            raise AuthenticationError("the API key is not valid")
        return info.site_url, f"key:{info.key_id}"
    if res.settings.auth_required:
        raise AuthenticationError("an API key is required (Authorization: Bearer KEY)")
    site = body_site if body_site is not None else request.args.get("site")
    if site is not None and not isinstance(site, str):
        raise ValidationError("site must be a string (the site URL)", field="site")
    return (site.strip() or None) if site else None, "api"


def _row(rule: dict[str, Any]) -> dict[str, Any]:
    out = dict(rule)
    if out.get("created_at") is not None:
        out["created_at"] = out["created_at"].isoformat()
    return out


@bp.get("/rules")
def rules_list() -> Response:
    res = resources()
    site, _ = _scope(res)
    # A site key sees its own site's entries only, never the global lists.
    rules = list_rules(res.store, site, with_global=not _key())
    return json_response({"rules": [_row(r) for r in rules]})


@bp.post("/rules")
def rules_add() -> Response:
    res = resources()
    body = json_body(request, res.settings)
    if not isinstance(body, dict):
        raise ValidationError('body must be {"list": ..., "kind": ..., "value": ...}')
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise ValidationError(f"unknown field(s): {', '.join(unknown)}", field=unknown[0])
    site, actor = _scope(res, body.get("site"))
    for name in ("list", "kind"):
        if not isinstance(body.get(name), str):
            raise ValidationError(f"'{name}' is required and must be a string", field=name)
    rule = add_rule(res.store, site, body["list"], body["kind"], body.get("value"), actor)
    _invalidate(res)
    return json_response({"rule": rule}, status=201)


@bp.delete("/rules/<int(max=2147483647):rule_id>")
def rules_remove(rule_id: int) -> Response:
    res = resources()
    site, actor = _scope(res)
    remove_rule(res.store, rule_id, actor, site_url=site if _key() else None)
    _invalidate(res)
    return json_response({"deleted": rule_id})


def _invalidate(res: Resources) -> None:
    cache = res.site_rules
    if cache is not None:
        cache.invalidate()
