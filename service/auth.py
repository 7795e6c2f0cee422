"""Site-key authentication shared by every API (JSON, Akismet, Perspective).

A site key is 12 lower-case letters and digits, bound to one site and stored
only as its sha256 (``Store.find_key`` compares in constant time). It arrives
in one of four places:

- ``Authorization: Bearer KEY`` (the native JSON API),
- the form fields ``api_key`` or ``key`` (Akismet clients),
- the host name ``KEY.rest.akismet.com`` (Akismet clients that reach us as an
  HTTP proxy; urllib3 lower-cases it on the way).

The JSON API's decision (docs/akismet.md, "Authentication"): in the
single-machine default (``settings.auth_required`` false) a call without any
key is allowed and recorded with no site; with ``COMMENTMOD_REQUIRE_AUTH=true``
or ``COMMENTMOD_ENV=production`` it is refused with 401. A key that is present
but unknown, revoked or malformed is always refused.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Request

from service.errors import AuthenticationError
from service.resources import Resources
from service.store import KeyInfo, Store

AKISMET_HOST_SUFFIX = ".rest.akismet.com"


def key_info(store: Store, key: str) -> KeyInfo | None:
    """The live key ``key`` names, or None. Plain function: every API shares it."""
    key = key.strip()
    if not key:
        return None
    return store.find_key(key)


def host_key(host: str) -> str:
    """The key in a ``KEY.rest.akismet.com`` host name (port ignored), else ''."""
    name = host.strip().lower().rsplit(":", 1)[0] if host.count(":") == 1 else host.lower()
    if not name.endswith(AKISMET_HOST_SUFFIX):
        return ""
    label = name.removesuffix(AKISMET_HOST_SUFFIX)
    return label if label and "." not in label else ""


def form_key(fields: Mapping[str, str], host: str) -> str:
    """The key an Akismet request carries: ``api_key``, then ``key``, then the host name."""
    for name in ("api_key", "key"):
        value = fields.get(name, "")
        if value.strip():
            return value.strip()
    return host_key(host)


def bearer_key(request: Request) -> str | None:
    """The key of an ``Authorization: Bearer KEY`` header; None when there is no header.

    A header in any other form is refused rather than ignored: a client that
    tried to authenticate must learn that it failed.
    """
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthenticationError("the Authorization header must be 'Bearer <site key>'")
    return value.strip()


def authenticate_api(res: Resources, request: Request) -> KeyInfo | None:
    """The caller's key for the JSON API, None for an allowed anonymous call, else 401."""
    key = bearer_key(request)
    if key is None:
        if res.settings.auth_required:
            raise AuthenticationError(
                "a site key is required: send 'Authorization: Bearer <site key>' "
                "(create one with 'commentmod keys create --site URL')"
            )
        return None
    info = key_info(res.store, key)
    if info is None:
        raise AuthenticationError("unknown or revoked site key")
    return info
