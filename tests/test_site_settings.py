"""Per-site thresholds: validation, the per-worker cache, and the check flow using them."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from service.api.checking import check_comments
from service.errors import ValidationError
from service.resources import EXTENSION, Resources
from service.store.db import Store
from service.store.site_settings import SiteSettingsCache, merged_thresholds, validate_thresholds
from training.features import Comment

HAM = "The council should publish the budget before the vote, not after. Good reporting."


@pytest.mark.parametrize(
    "bad",
    [{"spam": "0.8"}, {"spam": True}, {"spam": 1.5}, {"spam": -0.1}, {"nope": 0.5},
     {"discard": None}],
)
def test_bad_thresholds_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        validate_thresholds(bad)


def test_thresholds_must_stay_ordered() -> None:
    model = {"unsure": 0.3, "spam": 0.5, "discard": 0.9}
    assert merged_thresholds(model, {"spam": 0.8})["spam"] == 0.8
    with pytest.raises(ValidationError, match="unsure <= spam <= discard"):
        merged_thresholds(model, {"spam": 0.95})


def test_cache_keeps_settings_for_its_ttl(store: Store) -> None:
    site = store.ensure_site("news.example.org")
    cache = SiteSettingsCache(store, ttl_seconds=60)
    assert cache.thresholds(None) is None
    assert cache.thresholds(site) is None
    store.update_site_settings(site, {"thresholds": {"spam": 0.7}})
    assert cache.thresholds(site) is None  # still cached: no query per request
    cache.forget(site)
    assert cache.thresholds(site) == {"spam": 0.7}
    fresh = SiteSettingsCache(store, ttl_seconds=0)
    store.update_site_settings(site, {"thresholds": {"spam": 0.6}})
    assert fresh.thresholds(site) == {"spam": 0.6}


def test_broken_stored_thresholds_fall_back_to_the_model(store: Store) -> None:
    site = store.ensure_site("news.example.org")
    store.update_site_settings(site, {"thresholds": {"spam": "high"}})
    assert SiteSettingsCache(store, ttl_seconds=0).thresholds(site) is None


def test_check_applies_the_site_thresholds(app: Flask) -> None:
    res: Resources = app.extensions[EXTENSION]
    strict = res.store.ensure_site("strict.example.org")
    lax = res.store.ensure_site("lax.example.org")
    res.store.update_site_settings(strict, {"thresholds": {"unsure": 0.0, "spam": 0.0}})
    with app.app_context():
        [a] = check_comments(res, [Comment(content=HAM)], site_id=strict, source="api")
        [b] = check_comments(res, [Comment(content=HAM)], site_id=lax, source="api")
        [c] = check_comments(res, [Comment(content=HAM)], site_id=None, source="api")
    assert a.outcome.verdict.value == "spam"
    assert b.outcome.verdict.value == c.outcome.verdict.value == "ham"
