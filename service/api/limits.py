"""Rate limits per API key and per client address, with Flask-Limiter.

Off unless ``COMMENTMOD_RATE_LIMIT`` is set (e.g. ``600/minute``; several
limits separated by ``;``). Each limit applies twice, to every protected
blueprint together: once per API key (when the request carries one) and once
per client address. Counters live in Redis when ``COMMENTMOD_REDIS_URL`` is set
(under ``redis_keys.LIMITS``, with the same short timeouts and no retries as
the cache), in memory otherwise. A Redis failure never refuses a request:
Flask-Limiter swallows the error and counts in memory until Redis answers again.

Answers past the limit: on the JSON API ``429`` with ``Retry-After`` and the
usual ``{"error": {"code": "rate_limited", ...}}``; on Akismet endpoints
``429`` with ``Retry-After`` and the protocol's ``X-akismet-alert-code`` /
``X-akismet-alert-msg`` headers. Another blueprint opts in with
:func:`protect` (``protect(app, bp, style="akismet")``).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, Flask, Response, request
from flask_limiter import Limiter, RateLimitExceeded, RequestLimit
from limits import parse_many

from service.api.auth import form_key
from service.cache import keys as redis_keys
from service.cache.redis_client import client_options
from service.errors import ConfigurationError, RateLimited, error_response
from service.resources import EXTENSION, Resources

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# Akismet's usage alert, as its clients read it (they surface code and message).
AKISMET_ALERT_CODE = "10009"
SHARED_SCOPE = "commentmod"


def request_api_key() -> str:
    """The API key a request carries: ``Authorization: Bearer``, ``X-API-Key``,
    form ``api_key`` / ``key`` (Akismet), or the host ``KEY.rest.akismet.com``.

    Lower-cased: host names arrive lower-cased (field notes).
    """
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip().lower()
    header = request.headers.get("X-API-Key", "").strip()
    if header:
        return header.lower()
    fields: Mapping[str, str] = {}
    if request.mimetype in FORM_TYPES:
        request.get_data(cache=True)  # keep the raw body readable for the view, too
        fields = request.form
    return form_key(fields, request.host).lower()


def key_identity() -> str:
    """Limiter key of the API key; hashed, so Redis never holds a key."""
    key = request_api_key()
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:24] if key else "key:none"


def address_identity() -> str:
    return "ip:" + (request.remote_addr or "unknown")


def retry_after(limit: RequestLimit) -> int:
    reset = float(limit.window[0])  # when the window resets (unix time)
    return max(1, math.ceil(reset - time.time()))


def json_breach(limit: RequestLimit) -> Response:
    seconds = retry_after(limit)
    return error_response(
        RateLimited(f"rate limit of {limit.limit} exceeded; retry in {seconds} s",
                    retry_after=seconds)
    )


def akismet_breach(limit: RequestLimit) -> Response:
    """Akismet's way of saying "over your limit": alert headers on a 429."""
    seconds = retry_after(limit)
    response = Response("rate limited", status=429, mimetype="text/plain")
    response.headers["Retry-After"] = str(seconds)
    response.headers["X-akismet-alert-code"] = AKISMET_ALERT_CODE
    response.headers["X-akismet-alert-msg"] = (
        f"Rate limit of {limit.limit} exceeded for this key or address; retry in {seconds} s."
    )
    return response


STYLES: dict[str, Callable[[RequestLimit], Response]] = {
    "json": json_breach,
    "akismet": akismet_breach,
}


def protect(app: Flask, blueprint: Blueprint, style: str = "json") -> Blueprint:
    """Put ``blueprint`` under the configured limits (a no-op when limits are off).

    ``style`` picks the answer past the limit: ``json`` or ``akismet``.
    """
    res: Resources = app.extensions[EXTENSION]
    limiter = res.limiter
    if limiter is None:
        return blueprint
    on_breach = STYLES[style]
    rate = res.settings.rate_limit
    limiter.shared_limit(
        rate,
        scope=SHARED_SCOPE + ":key",
        key_func=key_identity,
        exempt_when=lambda: not request_api_key(),
        on_breach=on_breach,
    )(blueprint)
    limiter.shared_limit(
        rate, scope=SHARED_SCOPE + ":ip", key_func=address_identity, on_breach=on_breach
    )(blueprint)
    return blueprint


def init_limits(app: Flask, res: Resources) -> Limiter | None:
    """The limiter for ``settings.rate_limit``, or None when limits are off."""
    s = res.settings
    if not s.rate_limit.strip():
        return None
    try:
        parse_many(s.rate_limit)
    except ValueError as exc:
        raise ConfigurationError(
            f"COMMENTMOD_RATE_LIMIT={s.rate_limit!r} is not a rate limit "
            "(expected e.g. '600/minute' or '10/second;600/minute')"
        ) from exc
    options: dict[str, Any] = {}
    uri = "memory://"
    if s.redis_url:
        uri = s.redis_url
        options = {**client_options(s.redis_timeout_seconds), "key_prefix": redis_keys.LIMITS}
    limiter = Limiter(
        address_identity,
        app=app,
        storage_uri=uri,
        storage_options=options,
        strategy="fixed-window",
        headers_enabled=False,  # headers would cost one more storage round trip per request
        swallow_errors=True,
        in_memory_fallback_enabled=True,
    )
    res.limiter = limiter

    @app.errorhandler(RateLimitExceeded)
    def _limited(exc: RateLimitExceeded) -> Any:
        if exc.response is not None:
            return exc.response
        return json_breach_fallback(exc)

    return limiter


def json_breach_fallback(exc: RateLimitExceeded) -> Response:
    return error_response(RateLimited(f"rate limit of {exc.limit.limit} exceeded"))
