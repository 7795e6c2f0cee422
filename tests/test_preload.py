"""Models loaded by the app factory, before any request (issue 16).

gunicorn preloads the app in its master (service/gunicorn_conf.py), so whatever
``create_app`` loads is shared copy-on-write by every worker; a model loaded at a
worker's first request is a private copy per worker (129 to 266 MB each, measured
for the toxicity model). The spam, toxicity and shadow models must all be loaded
by the time ``create_app`` returns.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import Flask

from service.registry.versions import Registry
from service.resources import EXTENSION, Resources
from service.scoring import toxicity
from service.scoring.shadow import set_shadow
from service.store.db import Store, engine_for

WITH_TOXICITY_MODEL = True  # conftest's model_dir adds the toxicity family


def test_spam_toxicity_and_shadow_models_are_loaded_by_the_factory(
    make_app: Callable[..., Flask], model_dir: Path, sqlite_url: str
) -> None:
    registry = Registry(model_dir)
    candidate = registry.current("spam")
    assert candidate is not None
    from service.store import migrate

    store = Store(engine_for(sqlite_url))
    migrate.upgrade(store.engine)
    set_shadow(store, candidate)  # before the app starts, as an operator would
    app = make_app()
    res: Resources = app.extensions[EXTENSION]
    assert res.models.loaded
    assert toxicity.holder(res).loaded
    assert res.shadow is not None and res.shadow.scorer is not None  # no request made yet
