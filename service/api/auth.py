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

Each worker keeps the keys it has seen live in a :class:`KeyCache` for
``key_cache_seconds`` (5 s by default), indexed by the key's sha256 like the
store: the hot path (every check) costs no database query, and a revoked key
stops working in every worker within that time. Akismet's ``verify-key``, the
call a site makes to ask whether its key is good, always asks the database.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping

from service.errors import AuthenticationError
from service.resources import Resources
from service.store.db import KeyInfo, Store, hash_key

AKISMET_HOST_SUFFIX = ".rest.akismet.com"


class KeyCache:
    """Live keys by hash, one table per worker, each entry trusted for ``ttl`` seconds.

    Only live keys are kept: an unknown or revoked key asks the database every
    time (the rate limits bound that), so a key created a moment ago works at once.
    """

    def __init__(self, store: Store, ttl: float, size: int = 10_000) -> None:
        self.store = store
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[str, tuple[float, KeyInfo]] = OrderedDict()
        self._lock = threading.Lock()

    def find(self, key: str) -> KeyInfo | None:
        if self.ttl <= 0 or not key or len(key) > 64:
            return self.store.find_key(key)
        digest = hash_key(key)
        now = time.monotonic()
        entry = self._entries.get(digest)
        if entry is not None and entry[0] > now:
            return entry[1]
        info = self.store.find_key(key)
        with self._lock:
            if info is None:
                self._entries.pop(digest, None)
            else:
                self._entries[digest] = (now + self.ttl, info)
                self._entries.move_to_end(digest)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return info

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def key_info(res: Resources, key: str, *, fresh: bool = False) -> KeyInfo | None:
    """The live key ``key`` names, or None; every API shares it. ``fresh`` skips
    the worker's cache (a site asking whether its key is good gets the truth)."""
    key = key.strip()
    if not key:
        return None
    cache = res.key_cache
    if fresh or cache is None:
        return res.store.find_key(key)
    return cache.find(key)


def init_key_cache(res: Resources) -> KeyCache:
    cache = KeyCache(res.store, res.settings.key_cache_seconds)
    res.key_cache = cache
    return cache


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


def bearer_key(header: str | None) -> str | None:
    """The key of an ``Authorization: Bearer KEY`` header (its value, or None when
    the request has none); None when there is no header.

    A header in any other form is refused rather than ignored: a client that
    tried to authenticate must learn that it failed.
    """
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthenticationError("the Authorization header must be 'Bearer <site key>'")
    return value.strip()


def authenticate_api(res: Resources, authorization: str | None) -> KeyInfo | None:
    """The caller's key for the JSON API (from the ``Authorization`` header's value),
    None for an allowed anonymous call, else 401."""
    key = bearer_key(authorization)
    if key is None:
        if res.settings.auth_required:
            raise AuthenticationError(
                "a site key is required: send 'Authorization: Bearer <site key>' "
                "(create one with 'commentmod keys create --site URL')"
            )
        return None
    info = key_info(res, key)
    if info is None:
        raise AuthenticationError("unknown or revoked site key")
    return info
