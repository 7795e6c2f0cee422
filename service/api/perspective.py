"""Perspective API compatibility: ``comments:analyze`` and ``comments:suggestscore``.

Clients built for Google's Perspective API (Coral's "custom endpoint", the
Python discovery client) point at this server unchanged. Routes are declared
exactly (with and without ``/v1alpha1``) because Perspective clients do not
follow redirects. Every error, ours or Werkzeug's, leaves this blueprint in
Google's shape::

    {"error": {"code": 400, "message": "...", "status": "INVALID_ARGUMENT",
               "details": [{"@type": "type.googleapis.com/google.commentanalyzer.v1alpha1.Error",
                            "errorType": "COMMENT_EMPTY"}]}}

Offsets in ``spanScores`` are UTF-16 code units, as Perspective counts them;
the stored ``comments.toxicity`` JSON keeps Python string offsets.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app, request
from sqlalchemy import insert
from werkzeug.exceptions import HTTPException

from service.api.auth import key_info
from service.api.discovery import API_VERSION, document
from service.errors import (
    AuthenticationError,
    CommentmodError,
    ConfigurationError,
    ModelError,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
)
from service.resources import Resources, resources
from service.scoring import toxicity
from service.store import schema as t
from service.store import writebehind
from service.store.db import CheckRecord, KeyInfo, Store, content_hash, new_guid, now
from training.text import utf16_offsets

log = logging.getLogger(__name__)

bp = Blueprint("perspective", __name__)

ERROR_TYPE_URL = "type.googleapis.com/google.commentanalyzer.v1alpha1.Error"
ERROR_INFO_URL = "type.googleapis.com/google.rpc.ErrorInfo"
MAX_COMMENT_BYTES = 20_480  # Perspective's limit: 20 KB of UTF-8
MAX_TOKEN_CHARS = 1_000  # clientToken, sessionId, communityId
# Attributes Perspective offers; those this server does not serve are refused,
# or dropped with dropUnsupportedAttributes.
PERSPECTIVE_ATTRIBUTES = frozenset({
    "TOXICITY", "SEVERE_TOXICITY", "IDENTITY_ATTACK", "INSULT", "PROFANITY", "THREAT",
    "SEXUALLY_EXPLICIT", "FLIRTATION", "ATTACK_ON_AUTHOR", "ATTACK_ON_COMMENTER",
    "INCOHERENT", "INFLAMMATORY", "LIKELY_TO_REJECT", "OBSCENE", "SPAM", "UNSUBSTANTIAL",
    "TOXICITY_EXPERIMENTAL", "SEVERE_TOXICITY_EXPERIMENTAL", "IDENTITY_ATTACK_EXPERIMENTAL",
    "INSULT_EXPERIMENTAL", "PROFANITY_EXPERIMENTAL", "THREAT_EXPERIMENTAL",
})
ANALYZE_FIELDS = frozenset({
    "comment", "context", "requestedAttributes", "spanAnnotations", "languages", "doNotStore",
    "clientToken", "sessionId", "communityId", "dropUnsupportedAttributes",
})
SUGGEST_FIELDS = frozenset({
    "comment", "context", "attributeScores", "languages", "communityId", "clientToken",
    "sessionId",
})
GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "INVALID_ARGUMENT",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
RATE_KEY = "commentmod:perspective:rate:{key_id}:{window}"  # TTL: RATE_WINDOW_SECONDS
RATE_WINDOW_SECONDS = 60


class PerspectiveError(CommentmodError):
    """A request Perspective would refuse, with Perspective's ``errorType``."""

    status = 400
    code = "perspective_invalid_request"

    def __init__(self, message: str, error_type: str = "INVALID_REQUEST", **detail: Any) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.detail = detail


class ApiKeyInvalid(CommentmodError):
    status = 400
    code = "api_key_invalid"


def google_error(
    status: int, message: str, details: list[dict[str, Any]] | None = None
) -> Response:
    body = {
        "error": {
            "code": status,
            "message": message,
            "status": GOOGLE_STATUS.get(status, "UNKNOWN" if status < 500 else "INTERNAL"),
            **({"details": details} if details else {}),
        }
    }
    return current_app.response_class(
        orjson.dumps(body), status=status, mimetype="application/json"
    )


def _error_type(error_type: str, **extra: Any) -> dict[str, Any]:
    return {"@type": ERROR_TYPE_URL, "errorType": error_type, **extra}


@bp.errorhandler(CommentmodError)
def _domain_error(exc: CommentmodError) -> Response:
    if isinstance(exc, PerspectiveError):
        return google_error(exc.status, exc.message, [_error_type(exc.error_type, **exc.detail)])
    if isinstance(exc, ApiKeyInvalid | AuthenticationError | PermissionDenied):
        reason = "API_KEY_INVALID" if isinstance(exc, ApiKeyInvalid) else "API_KEY_MISSING"
        info = {"@type": ERROR_INFO_URL, "reason": reason, "domain": "googleapis.com"}
        return google_error(exc.status, exc.message, [info])
    if isinstance(exc, RateLimited):
        info = {"@type": ERROR_INFO_URL, "reason": "RATE_LIMIT_EXCEEDED",
                "domain": "googleapis.com"}
        response = google_error(429, exc.message, [info])
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    retry_after = exc.retry_after if isinstance(exc, ServiceUnavailable) else None
    if exc.status >= 500 and retry_after is None:
        log.error("perspective.failed", extra={"code": exc.code, "error": exc.message})
    details = [_error_type("INVALID_REQUEST")] if exc.status < 500 else None
    response = google_error(exc.status, exc.message, details)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    if status == 413:
        return google_error(
            400, "Comment text too long.", [_error_type("COMMENT_TOO_LONG")]
        )
    details = [_error_type("INVALID_REQUEST")] if 400 <= status < 500 else None
    return google_error(status, exc.description or exc.name, details)


# --- authentication and rate limit --------------------------------------------


def authenticate(res: Resources) -> KeyInfo:
    key = request.args.get("key") or request.headers.get("X-Goog-Api-Key", "")
    if not key:
        raise PermissionDenied(
            "The request is missing a valid API key."
        )
    info = key_info(res, key)
    if info is None:
        raise ApiKeyInvalid("API key not valid. Please pass a valid API key.")
    return info


class RateWindow:
    """Requests per key per minute: in Redis when configured (shared by every
    worker), else in this process. Fails open when Redis is down."""

    def __init__(self, limit: int, redis_url: str) -> None:
        self.limit = limit
        self._counts: dict[tuple[int, int], int] = {}
        self._lock = threading.Lock()
        self._redis: Any = None
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(
                redis_url, socket_timeout=0.05, socket_connect_timeout=0.05, retry=None
            )

    def hit(self, key_id: int) -> None:
        if self.limit <= 0:
            return
        window = int(time.time() // RATE_WINDOW_SECONDS)
        count = self._count(key_id, window)
        if count > self.limit:
            retry = RATE_WINDOW_SECONDS - int(time.time()) % RATE_WINDOW_SECONDS
            raise RateLimited(
                f"Quota exceeded: {self.limit} requests per minute for this API key.",
                retry_after=max(retry, 1),
            )

    def _count(self, key_id: int, window: int) -> int:
        if self._redis is not None:
            name = RATE_KEY.format(key_id=key_id, window=window)
            try:
                pipe = self._redis.pipeline()
                pipe.incr(name)
                pipe.expire(name, RATE_WINDOW_SECONDS)
                return int(pipe.execute()[0])
            except Exception as exc:  # Redis down: fall back to this process's count
                log.warning("perspective.rate_redis_failed", extra={"error": str(exc)})
        with self._lock:
            for old in [k for k in self._counts if k[1] != window]:
                del self._counts[old]
            self._counts[(key_id, window)] = self._counts.get((key_id, window), 0) + 1
            return self._counts[(key_id, window)]


def _rate(res: Resources) -> RateWindow:
    window = res.perspective_rate
    if window is None:  # init_app builds it with the blueprint
        raise ConfigurationError("the Perspective blueprint was registered without init_app")
    return window


# --- request parsing --------------------------------------------------------


_CAMEL = re.compile(r"_([a-z])")


def _camel(obj: dict[str, Any]) -> dict[str, Any]:
    """Google's JSON parser takes snake_case and lowerCamelCase names alike."""
    return {_CAMEL.sub(lambda m: m.group(1).upper(), k): v for k, v in obj.items()}


def _body(allowed: frozenset[str]) -> dict[str, Any]:
    raw = request.get_data(cache=True)
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise PerspectiveError(f"Invalid JSON payload received. {exc}") from exc
    if not isinstance(body, dict):
        raise PerspectiveError("Invalid JSON payload received. Expected an object.")
    body = _camel(body)
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise PerspectiveError(
            f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot find field.'
        )
    return body


def _typed(body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise PerspectiveError(f'Invalid value at "{name}": wrong type.')
    if isinstance(value, str) and len(value) > MAX_TOKEN_CHARS:
        raise PerspectiveError(f'Invalid value at "{name}": longer than {MAX_TOKEN_CHARS}.')
    return value


def comment_text(body: dict[str, Any]) -> str:
    comment = body.get("comment")
    if comment is None:
        raise PerspectiveError("Comment must be specified.", "COMMENT_EMPTY")
    if not isinstance(comment, dict):
        raise PerspectiveError('Invalid value at "comment": expected an object.')
    comment = _camel(comment)
    text = comment.get("text")
    kind = comment.get("type", "PLAIN_TEXT")
    if kind not in ("PLAIN_TEXT", "TEXT_TYPE_UNSPECIFIED"):
        raise PerspectiveError(f"Comment type {kind!r} is not supported; send PLAIN_TEXT.")
    if text is not None and not isinstance(text, str):
        raise PerspectiveError('Invalid value at "comment.text": expected a string.')
    if not text or not text.strip():
        raise PerspectiveError("Comment text was empty.", "COMMENT_EMPTY")
    if len(text.encode("utf-8")) > MAX_COMMENT_BYTES:
        raise PerspectiveError(
            f"Comment text too long: {len(text.encode('utf-8'))} bytes; "
            f"the limit is {MAX_COMMENT_BYTES}.",
            "COMMENT_TOO_LONG",
        )
    return str(text)


def requested_languages(body: dict[str, Any]) -> list[str]:
    langs = _typed(body, "languages", list, [])
    out = []
    for lang in langs:
        if not isinstance(lang, str) or not lang.strip() or len(lang) > 35:
            raise PerspectiveError('Invalid value at "languages": expected language codes.')
        out.append(lang.strip().lower().replace("_", "-").split("-")[0])
    return out


@dataclass
class Analyze:
    text: str
    attributes: dict[str, float | None]  # name -> scoreThreshold
    languages: list[str]
    detected: list[str]
    spans: bool
    do_not_store: bool
    client_token: str | None
    extra: dict[str, str] = field(default_factory=dict)


def parse_analyze(body: dict[str, Any], scorer: toxicity.ToxicityScorer) -> Analyze:
    text = comment_text(body)
    if "context" in body and not isinstance(body["context"], dict | type(None)):
        raise PerspectiveError('Invalid value at "context": expected an object.')
    asked = _typed(body, "requestedAttributes", dict, {})
    if not asked:
        raise PerspectiveError(
            "Must specify at least one attribute to score.", "NO_REQUESTED_ATTRIBUTES"
        )
    drop = _typed(body, "dropUnsupportedAttributes", bool, False)
    detected = [toxicity.detect_language(text)]
    languages = requested_languages(body) or detected
    attributes: dict[str, float | None] = {}
    for name, params in asked.items():
        threshold = _attribute_params(name, params)
        if name not in scorer.attributes:
            if drop and name in PERSPECTIVE_ATTRIBUTES:
                continue
            raise PerspectiveError(
                f"Attribute {name} is not supported by this server"
                + (" (no training data supports it)." if name in PERSPECTIVE_ATTRIBUTES else ".")
            )
        unsupported = [lang for lang in languages if lang not in scorer.languages[name]]
        if unsupported:
            if drop:
                continue
            raise PerspectiveError(
                f"Attribute {name} does not support request languages: {','.join(unsupported)}",
                "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE",
                languageNotSupportedByAttributeError={
                    "detectedLanguages": detected, "attribute": name
                },
            )
        attributes[name] = threshold
    token = _typed(body, "clientToken", str, None)
    extra = {k: v for k in ("sessionId", "communityId") if (v := _typed(body, k, str, ""))}
    return Analyze(
        text, attributes, languages, detected, _typed(body, "spanAnnotations", bool, False),
        _typed(body, "doNotStore", bool, False), token, extra,
    )


def _attribute_params(name: Any, params: Any) -> float | None:
    if not isinstance(name, str) or not name:
        raise PerspectiveError("Attribute names must be non-empty strings.")
    if params is None:
        return None
    if not isinstance(params, dict):
        raise PerspectiveError(f'Invalid value at "requestedAttributes[{name}]".')
    params = _camel(params)
    kind = params.get("scoreType", "PROBABILITY")
    if kind not in ("PROBABILITY", "SCORE_TYPE_UNSPECIFIED", None):
        raise PerspectiveError(f"Score type {kind} is not supported; use PROBABILITY.")
    threshold = params.get("scoreThreshold")
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise PerspectiveError(f'Invalid value at "requestedAttributes[{name}].scoreThreshold".')
    if not 0.0 <= float(threshold) <= 1.0:
        raise PerspectiveError(f"scoreThreshold for {name} must be between 0 and 1.")
    return float(threshold)


# --- views -------------------------------------------------------------------


def _json(body: dict[str, Any]) -> Response:
    return current_app.response_class(orjson.dumps(body), mimetype="application/json")


def _scorer(res: Resources) -> toxicity.ToxicityScorer:
    h = toxicity.holder(res)
    try:
        return h.toxicity_scorer()
    except ModelError as exc:
        log.warning("perspective.no_model", extra={"error": h.unavailable_reason()})
        raise toxicity.unavailable_error(res.settings.data_dir) from exc


def _admitted(fields: frozenset[str]) -> tuple[Resources, KeyInfo, dict[str, Any]]:
    """What every method does first: POST only, a known key within its rate, a body
    of known fields (each refusal in Google's error shape)."""
    _post_only()
    res = resources()
    key = authenticate(res)
    _rate(res).hit(key.key_id)
    return res, key, _body(fields)


@bp.route(f"/{API_VERSION}/comments:analyze", methods=["POST", "GET", "PUT", "DELETE", "PATCH"])
@bp.route("/comments:analyze", methods=["POST", "GET", "PUT", "DELETE", "PATCH"])
def analyze() -> Response:
    res, key, body = _admitted(ANALYZE_FIELDS)
    scorer = _scorer(res)
    req = parse_analyze(body, scorer)
    rows, [scores] = scorer.score([req.text])
    row = rows[0]
    units = utf16_offsets(req.text)
    out: dict[str, Any] = {}
    for name, threshold in req.attributes.items():
        value = scores[name]
        if threshold is not None and value < threshold:
            continue
        entry: dict[str, Any] = {"summaryScore": {"value": value, "type": "PROBABILITY"}}
        if req.spans:
            entry["spanScores"] = [
                {"begin": units[s.begin], "end": units[s.end],
                 "score": {"value": s.score, "type": "PROBABILITY"}}
                for s in scorer.spans(req.text, row, name)
            ]
        out[name] = entry
    answer: dict[str, Any] = {
        "attributeScores": out,
        "languages": req.languages,
        "detectedLanguages": req.detected,
    }
    if req.client_token is not None:
        answer["clientToken"] = req.client_token
    if not req.do_not_store:
        spans = toxicity.toxic_spans(req.text, scorer.spans(req.text, row, "TOXICITY"))
        _record(res, key, req, scores, spans, scorer.version)
    return _json(answer)


def _record(
    res: Resources,
    key: KeyInfo,
    req: Analyze,
    scores: dict[str, float],
    spans: list[toxicity.Span],
    version: str,
) -> None:
    record = CheckRecord(
        guid=new_guid(), site_id=key.site_id, source="perspective", content=req.text,
        fields={"lang": ",".join(req.languages)}, extra=dict(req.extra),
        spam_probability=None, verdict=None, discard=False, reasons=[],
        model_version=version, toxicity=toxicity.stored_toxicity(scores, spans),
        received_at=now(),
    )
    writebehind.record(res, [record])  # the site gets its scores whatever the database says


@bp.route(
    f"/{API_VERSION}/comments:suggestscore", methods=["POST", "GET", "PUT", "DELETE", "PATCH"]
)
@bp.route("/comments:suggestscore", methods=["POST", "GET", "PUT", "DELETE", "PATCH"])
def suggestscore() -> Response:
    res, key, body = _admitted(SUGGEST_FIELDS)
    text = comment_text(body)
    suggested = suggested_scores(body)
    languages = requested_languages(body)
    record_suggestion(res.store, key, text, suggested)
    answer: dict[str, Any] = {
        "detectedLanguages": [toxicity.detect_language(text)],
        "requestedLanguages": languages,
    }
    token = _typed(body, "clientToken", str, None)
    if token is not None:
        answer["clientToken"] = token
    return _json(answer)


def suggested_scores(body: dict[str, Any]) -> dict[str, float]:
    scores = _typed(body, "attributeScores", dict, {})
    if not scores:
        raise PerspectiveError("attributeScores must name at least one attribute.")
    out = {}
    for name, entry in scores.items():
        if name not in PERSPECTIVE_ATTRIBUTES:
            raise PerspectiveError(f"Unknown attribute {name}.")
        summary = _camel(entry).get("summaryScore") if isinstance(entry, dict) else None
        value = summary.get("value") if isinstance(summary, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise PerspectiveError(
                f'Invalid value at "attributeScores[{name}].summaryScore.value": '
                "expected a number between 0 and 1."
            )
        out[name] = float(value)
    return out


def record_suggestion(store: Store, key: KeyInfo, text: str, scores: dict[str, float]) -> int:
    """Store suggested scores as toxicity labels (toxic when >= 0.5) in one transaction,
    on the comment already checked with the same text, else on a new one. Returns the
    comment id. A label that cannot be committed raises StorageError."""
    found = store.find_comment(content=text, site_id=key.site_id)
    with store.transaction() as c:
        if found is not None:
            comment_id = int(found["id"])
        else:
            result = c.execute(
                insert(t.comments).values(
                    guid=new_guid(), site_id=key.site_id, source="perspective",
                    received_at=now(), content=text, content_hash=content_hash(text),
                    extra={}, reasons=[], model_version="",
                )
            )
            pk: Any = result.inserted_primary_key
            comment_id = int(pk[0])
        for attribute, value in scores.items():
            store.add_label(
                comment_id, "toxic" if value >= 0.5 else "ok", source="site",
                actor=f"site:{key.site_id}", task="toxicity", score=value,
                attribute=attribute, conn=c,
            )
    return comment_id


def _post_only() -> None:
    if request.method != "POST":
        raise PerspectiveError(f"Method {request.method} is not allowed; use POST.")


@bp.get("/$discovery/rest")
@bp.get(f"/discovery/v1/apis/commentanalyzer/{API_VERSION}/rest")
def discovery() -> Response:
    version = request.args.get("version", API_VERSION)
    if version != API_VERSION:
        raise PerspectiveError(f"Unknown API version {version!r}; this server has v1alpha1.")
    return _json(document(request.host_url))


def init_app(app: Flask, res: Resources) -> None:
    """Register the blueprint and its resources (toxicity model, rate window)."""
    toxicity.init_app(res)
    res.perspective_rate = RateWindow(
        res.settings.perspective_rate_limit, res.settings.redis_url
    )
    app.register_blueprint(bp)
