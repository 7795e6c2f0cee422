"""Coral Talk's external moderation phase: ``POST /coral/moderate``.

Coral sends every new or edited comment to the phase URL, signed with the
tenant's signing secret::

    X-Coral-Signature: sha256=<hex>[,sha256=<hex>...]

(HMAC-SHA256 of the raw body; several values while a rotated secret is still
valid.) We verify it against the tenant's active secrets in constant time,
score spam and toxicity, and answer ``204`` (no opinion) or ``200`` with a
status and FLAG actions, by the tenant's policy (``integration_secrets.policy``).
Coral treats any non-2xx answer as "no opinion", so errors never block a comment.

Coral signs the body alone: no timestamp in the header or the body (its
``now`` only picks the unexpired secrets), so a captured request stays valid.
A request seen before (same tenant, signature and body, within
:data:`REPLAY_SECONDS`) is answered as it was the first time, without scoring
or recording it again: in Redis when configured (every worker), otherwise in
this worker's memory.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, request
from sqlalchemy import insert, select, update

from service.api.checking import check_comments
from service.cache import keys
from service.errors import (
    AuthenticationError,
    CommentmodError,
    NotFound,
    ValidationError,
)
from service.resources import Resources, resources
from service.scoring import toxicity
from service.scoring.verdicts import Verdict
from service.store import schema as t
from service.store.db import Store, now
from training.text import Comment

log = logging.getLogger(__name__)

bp = Blueprint("coral", __name__, url_prefix="/coral")

KIND = "coral"
SIGNATURE_HEADER = "X-Coral-Signature"
STATUSES = ("", "NONE", "APPROVED", "PREMOD", "REJECTED", "SYSTEM_WITHHELD")
DEFAULT_POLICY: dict[str, Any] = {
    "spam_status": "REJECTED",  # status for comments the spam model calls spam
    "unsure_status": "",  # status for "unsure" spam verdicts ("" = leave it to Coral)
    "toxic_status": "SYSTEM_WITHHELD",  # status when TOXICITY >= toxic_threshold
    "toxic_threshold": None,  # None: the COMMENTMOD_CORAL_TOXIC_THRESHOLD setting
}
MAX_FIELD = 2_000


# --- secrets -----------------------------------------------------------------


@dataclass(frozen=True)
class TenantSecret:
    id: int
    site_id: int
    tenant_id: str
    secret: str
    policy: dict[str, Any]
    created_at: datetime
    expires_at: datetime | None

    def active(self, at: datetime) -> bool:
        return self.expires_at is None or _aware(self.expires_at) > at

    def hint(self) -> str:
        return f"…{self.secret[-4:]}"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def new_secret() -> str:
    return "ssc_" + secrets.token_urlsafe(32)


def tenant_secrets(store: Store, tenant_id: str | None = None) -> list[TenantSecret]:
    """Every Coral secret (of one tenant), oldest first, expired ones included."""
    q = select(t.integration_secrets).where(t.integration_secrets.c.kind == KIND)
    if tenant_id is not None:
        q = q.where(t.integration_secrets.c.tenant_id == tenant_id)
    rows = store.read(lambda c: c.execute(q.order_by(t.integration_secrets.c.id)).all())
    return [
        TenantSecret(r.id, r.site_id, r.tenant_id, r.secret, dict(r.policy or {}),
                     r.created_at, r.revoked_at)
        for r in rows
    ]


def add_secret(
    store: Store, site_url: str, tenant_id: str, secret: str | None = None, actor: str = "cli"
) -> str:
    """Register a signing secret for a tenant (keeping its policy); returns the secret."""
    if not tenant_id.strip() or len(tenant_id) > 200:
        raise ValidationError("a tenant id of 1-200 characters is required", field="tenant")
    value = secret or new_secret()
    if len(value) < 16 or len(value) > 500:
        raise ValidationError("a signing secret must have 16-500 characters", field="secret")
    existing = tenant_secrets(store, tenant_id)
    policy = existing[-1].policy if existing else {}
    with store.transaction() as c:
        site_id = store.ensure_site(site_url, c)
        c.execute(
            insert(t.integration_secrets).values(
                site_id=site_id, kind=KIND, tenant_id=tenant_id, secret=value,
                policy=policy, created_at=now(),
            )
        )
        store._audit(c, actor, "coral.secret.add", tenant_id, {"hint": value[-4:]})
    return value


def rotate_secret(
    store: Store, tenant_id: str, secret: str | None = None, grace: timedelta = timedelta(hours=24),
    actor: str = "cli",
) -> str:
    """A new secret for the tenant; the old ones stay valid for ``grace``, as in Coral."""
    active = [s for s in tenant_secrets(store, tenant_id) if s.active(now())]
    if not active:
        raise NotFound(f"no active Coral secret for tenant {tenant_id!r}; use add-secret")
    value = secret or new_secret()
    if len(value) < 16 or len(value) > 500:
        raise ValidationError("a signing secret must have 16-500 characters", field="secret")
    expires = now() + grace
    with store.transaction() as c:
        for s in active:
            if s.expires_at is None or _aware(s.expires_at) > expires:
                c.execute(
                    update(t.integration_secrets)
                    .where(t.integration_secrets.c.id == s.id)
                    .values(revoked_at=expires)
                )
        c.execute(
            insert(t.integration_secrets).values(
                site_id=active[-1].site_id, kind=KIND, tenant_id=tenant_id, secret=value,
                policy=active[-1].policy, created_at=now(),
            )
        )
        store._audit(c, actor, "coral.secret.rotate", tenant_id,
                     {"hint": value[-4:], "old_expire_at": expires.isoformat()})
    return value


def set_policy(
    store: Store, tenant_id: str, changes: dict[str, Any], actor: str = "cli"
) -> dict[str, Any]:
    """Merge ``changes`` (None removes a key) into the tenant's policy; validated."""
    rows = tenant_secrets(store, tenant_id)
    if not rows:
        raise NotFound(f"no Coral tenant {tenant_id!r}")
    merged = {**rows[-1].policy, **changes}
    merged = {k: v for k, v in merged.items() if v is not None}
    validate_policy(merged)
    with store.transaction() as c:
        c.execute(
            update(t.integration_secrets)
            .where(t.integration_secrets.c.kind == KIND,
                   t.integration_secrets.c.tenant_id == tenant_id)
            .values(policy=merged)
        )
        store._audit(c, actor, "coral.policy", tenant_id, merged)
    return merged


def validate_policy(policy: dict[str, Any]) -> None:
    for key, value in policy.items():
        if key not in DEFAULT_POLICY:
            raise ValidationError(f"unknown policy key {key!r}; known: {sorted(DEFAULT_POLICY)}")
        if key.endswith("_status") and value not in STATUSES:
            raise ValidationError(f"{key} must be one of {STATUSES}, got {value!r}")
        if key == "toxic_threshold" and (
            isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1
        ):
            raise ValidationError("toxic_threshold must be a number between 0 and 1")


# --- signatures --------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    """The ``sha256=<hex>`` value Coral sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(header: str, body: bytes, candidates: list[TenantSecret]) -> bool:
    """True when any ``sha256=`` value of the header matches any active secret."""
    offered = [p.strip() for p in header.split(",") if p.strip().startswith("sha256=")][:8]
    ok = False
    for s in candidates:
        expected = sign(s.secret, body)
        for value in offered:
            ok |= hmac.compare_digest(expected.encode(), value.encode())
    return ok


# --- the request ---------------------------------------------------------------


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"br", "p", "div", "li", "blockquote"}:
            self.parts.append("\n")


def plain_text(body: str) -> str:
    """Coral sends HTML or stripped text depending on the phase's format; read both."""
    if "<" not in body and "&" not in body:
        return body
    parser = _Text()
    parser.feed(body)
    parser.close()
    return html.unescape("".join(parser.parts)).strip()


def _field(obj: Any, *path: str) -> str:
    for name in path:
        obj = obj.get(name) if isinstance(obj, dict) else None
    return obj[:MAX_FIELD] if isinstance(obj, str) else ""


@dataclass
class CoralRequest:
    tenant_id: str
    action: str
    text: str
    author_id: str
    author_role: str
    story_url: str
    site_id: str


def parse_request(raw: bytes) -> CoralRequest:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ValidationError("request body must be a JSON object")
    tenant = _field(body, "tenant", "id") or _field(body, "tenantID")
    comment = body.get("comment")
    raw_text = comment.get("body") if isinstance(comment, dict) else None
    if raw_text is not None and not isinstance(raw_text, str):
        raise ValidationError("comment.body must be a string", field="comment.body")
    return CoralRequest(
        tenant_id=tenant,
        action=_field(body, "action") or "NEW",
        text=plain_text(raw_text or ""),
        author_id=_field(body, "author", "id"),
        author_role=_field(body, "author", "role"),
        story_url=_field(body, "story", "url"),
        site_id=_field(body, "site", "id"),
    )


# --- the view ----------------------------------------------------------------


@bp.post("/moderate")
def moderate() -> Response:
    res = resources()
    raw = request.get_data(cache=True)
    req = parse_request(raw)
    at = now()
    candidates = [s for s in tenant_secrets(res.store, req.tenant_id) if s.active(at)]
    header = request.headers.get(SIGNATURE_HEADER, "")
    if not req.tenant_id or not candidates or not signature_valid(header, raw, candidates):
        raise AuthenticationError("missing or invalid X-Coral-Signature for this tenant")
    if not req.text.strip() or len(req.text) > res.settings.max_content_chars:
        return Response(status=204)
    digest = _replay_digest(res, req, candidates[-1], header, raw)
    seen = _seen(res, digest)
    if seen is None:
        decision = decide(res, req, candidates[-1])
        seen = orjson.dumps(decision) if decision is not None else b""
        _remember(res, digest, seen)
    if not seen:
        return Response(status=204)
    return current_app.response_class(seen, mimetype="application/json")


# --- replays -------------------------------------------------------------------

REPLAY_SECONDS = 24 * 3600
_LOCAL_SEEN_SIZE = 10_000


def _replay_digest(
    res: Resources, req: CoralRequest, tenant: TenantSecret, header: str, raw: bytes
) -> str:
    """The request, and what its answer depends on besides it (the tenant's policy
    and the serving spam model): a change to either is answered afresh."""
    model = res.models.scorer().version
    context = orjson.dumps([req.tenant_id, header, tenant.policy, model])
    return hashlib.sha256(context + b"\n" + raw).hexdigest()[:40]


def _seen(res: Resources, digest: str) -> bytes | None:
    """The answer given to this signed request before, if it was seen lately."""
    if res.redis is not None and not res.redis.skipping():
        found = res.redis.call(lambda r: r.get(keys.coral_seen(digest)), op="coral_seen")
        if found is not None:
            return found.encode() if isinstance(found, str) else bytes(found)
    hit = res.coral_seen.get(digest)
    if hit is not None and hit[1] > time.monotonic():
        return hit[0]
    return None


def _remember(res: Resources, digest: str, answer: bytes) -> None:
    local = res.coral_seen
    local[digest] = (answer, time.monotonic() + REPLAY_SECONDS)
    while len(local) > _LOCAL_SEEN_SIZE:
        try:
            local.popitem(last=False)
        except KeyError:  # emptied by another thread meanwhile
            break
    if res.redis is not None:
        res.redis.call(
            lambda r: r.set(keys.coral_seen(digest), answer, ex=REPLAY_SECONDS), op="coral_seen"
        )


def decide(res: Resources, req: CoralRequest, tenant: TenantSecret) -> dict[str, Any] | None:
    """Score the comment, record it, and answer by the tenant's policy."""
    policy = {**DEFAULT_POLICY, **tenant.policy}
    threshold = policy["toxic_threshold"]
    if threshold is None:
        threshold = res.settings.coral_toxic_threshold
    tox_scores, stored = _toxicity(res, req.text)
    comment = Comment(
        content=req.text, author=req.author_id, permalink=req.story_url, type="comment",
        user_role=req.author_role.lower() if req.author_role == "ADMIN" else "",
        extra={"coral": {"tenant": req.tenant_id, "action": req.action, "site": req.site_id}},
    )
    [result] = check_comments(
        res, [comment], site_id=tenant.site_id, source="coral", toxicity=[stored]
    )
    status = ""
    actions = []
    if result.outcome.verdict is Verdict.SPAM:
        status = policy["spam_status"]
        actions.append({"actionType": "FLAG", "reason": "COMMENT_DETECTED_SPAM"})
    elif result.outcome.verdict is Verdict.UNSURE:
        status = policy["unsure_status"]
    if tox_scores.get("TOXICITY", 0.0) >= threshold:
        actions.append({"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"})
        status = status or policy["toxic_status"]
    if not status and not actions:
        return None
    out: dict[str, Any] = {}
    if status:
        out["status"] = status
    out["actions"] = actions
    return out


def _toxicity(res: Resources, text: str) -> tuple[dict[str, float], dict[str, Any] | None]:
    try:
        scorer = toxicity.holder(res).toxicity_scorer()
    except CommentmodError as exc:  # no toxicity model: spam only
        log.warning("coral.no_toxicity_model", extra={"error": exc.message})
        return {}, None
    rows, [scores] = scorer.score([text])
    spans = toxicity.toxic_spans(text, scorer.spans(text, rows[0], "TOXICITY"))
    return scores, toxicity.stored_toxicity(scores, spans)
