"""Per-site thresholds, read from ``sites.settings["thresholds"]`` and cached per worker.

A site may override any of the model's ``unsure``/``spam``/``discard``
thresholds (``commentmod sites thresholds URL --spam 0.8``). The check flow
asks :class:`SiteSettingsCache` for them; each worker keeps a site's settings
for ``site_settings_ttl_seconds`` (5 s by default), so a change reaches every
worker within that time and a request costs no database query while the
entry is fresh. A database that cannot be read leaves the model's own
thresholds in force.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from service.errors import CommentmodError, ValidationError
from service.store.db import Store

log = logging.getLogger(__name__)

THRESHOLD_NAMES = ("unsure", "spam", "discard")


def validate_thresholds(values: dict[str, Any]) -> dict[str, float]:
    """Known names, numbers in [0, 1]; raises ValidationError naming the bad one."""
    out: dict[str, float] = {}
    for name, value in values.items():
        if name not in THRESHOLD_NAMES:
            raise ValidationError(f"unknown threshold {name!r}; use {THRESHOLD_NAMES}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(f"threshold {name!r} must be a number, got {value!r}")
        if not 0.0 <= float(value) <= 1.0:
            raise ValidationError(f"threshold {name!r} must lie in [0, 1], got {value}")
        out[name] = float(value)
    return out


def merged_thresholds(model: dict[str, float], site: dict[str, float]) -> dict[str, float]:
    """The model's thresholds with the site's on top; they must stay ordered."""
    merged = {**model, **site}
    if not merged["unsure"] <= merged["spam"] <= merged["discard"]:
        raise ValidationError(f"thresholds must satisfy unsure <= spam <= discard: {merged}")
    return merged


class SiteSettingsCache:
    """``site_id -> thresholds`` with a short time to live, one per worker."""

    def __init__(self, store: Store, ttl_seconds: float = 5.0) -> None:
        self.store = store
        self.ttl = ttl_seconds
        self._entries: dict[int, tuple[float, dict[str, float]]] = {}
        self._urls: dict[int, str] = {}  # a site's URL never changes
        self._lock = threading.Lock()

    def thresholds(self, site_id: int | None) -> dict[str, float] | None:
        if site_id is None:
            return None
        now = time.monotonic()
        entry = self._entries.get(site_id)
        if entry is not None and entry[0] > now:
            return entry[1] or None
        try:
            site = self.store.site(site_id)
            self._urls[site_id] = str(site["url"])
            raw = site.get("settings") or {}
            found = validate_thresholds(dict(raw.get("thresholds") or {}))
        except CommentmodError as exc:
            log.warning("site_settings.unreadable", extra={"site": site_id, "error": str(exc)})
            found = entry[1] if entry is not None else {}
        with self._lock:
            self._entries[site_id] = (now + self.ttl, found)
        return found or None

    def url(self, site_id: int) -> str | None:
        """The site's URL key, once :meth:`thresholds` has read the site."""
        if site_id not in self._urls:
            self.thresholds(site_id)
        return self._urls.get(site_id)

    def forget(self, site_id: int | None = None) -> None:
        with self._lock:
            if site_id is None:
                self._entries.clear()
            else:
                self._entries.pop(site_id, None)
