"""The app factory: settings, then resources, then blueprints. Nothing is bound at import."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from service import health, logs, metrics
from service.api import akismet, auth, coral, guard, limits, openapi, perspective
from service.api import check as api
from service.api import models as models_web
from service.api import rules as rules_api
from service.api.hotpath import HotPath
from service.api.jsonfast import OrjsonProvider
from service.cache import verdict_cache as cache
from service.config import Settings, load_settings
from service.errors import CommentmodError, error_response
from service.moderation import api as moderation_api
from service.moderation import views as moderation_views
from service.registry.shared import make_registry
from service.resources import EXTENSION, Resources
from service.scoring.label_memory import init_label_memory
from service.scoring.model import ModelHolder
from service.sessions import LazyCookieSessionInterface
from service.store import migrate, writebehind
from service.store.db import Store, engine_for

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


def create_app(config: Mapping[str, Any] | Settings | None = None) -> Flask:
    """Build the app. ``config`` overrides settings (a mapping) or replaces them."""
    settings = config if isinstance(config, Settings) else load_settings(config)
    logs.configure(settings.log_level)
    app = Flask(__name__, static_folder="moderation/static")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        TESTING=settings.env == "testing",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.production,
    )
    app.json = OrjsonProvider(app)  # orjson, keys in insertion order
    app.session_interface = LazyCookieSessionInterface()  # no cookie: no serializer
    res = init_resources(app, settings)
    cache.init_cache(res)
    limits.init_limits(app, res)
    register_error_handlers(app)
    register_hooks(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(limits.protect(app, api.bp, style="json"))
    app.register_blueprint(openapi.bp)
    app.register_blueprint(limits.protect(app, akismet.bp, style="akismet"))
    app.register_blueprint(moderation_views.bp)
    app.register_blueprint(moderation_api.bp)
    perspective.init_app(app, res)
    app.register_blueprint(coral.bp)
    app.register_blueprint(limits.protect(app, rules_api.bp, style="json"))
    app.register_blueprint(models_web.bp)
    if settings.hot_path:  # the two endpoints comment forms call, without Flask's cycle
        app.wsgi_app = HotPath(app, res, SECURITY_HEADERS)  # type: ignore[method-assign]
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        after_fork(app)  # no gunicorn master: this process is the worker
    return app


def close_app(app: Flask) -> None:
    """Stop what the app started (writer, sync and notice threads) and close its pool."""
    res: Resources = app.extensions[EXTENSION]
    for hook in res.on_close:
        hook()
    if res.write_behind is not None:
        res.write_behind.stop()
    if res.model_subscriber is not None:
        res.model_subscriber.stop()
    res.store.engine.dispose()


def init_resources(app: Flask, settings: Settings) -> Resources:
    store = Store(engine_for(settings.resolved_database_url))
    if not settings.production:
        migrate.upgrade(store.engine)  # single-machine default: keep the schema current
    registry = make_registry(settings.model_registry, settings.model_dir, store)
    models = ModelHolder(registry, "spam", settings.reload_interval_seconds)
    models.maybe_reload(force=True)
    models.on_swap.append(_model_metric("spam"))
    res = Resources(settings=settings, store=store, models=models)
    models_web.init_resources(res)
    app.extensions[EXTENSION] = res
    auth.init_key_cache(res)
    writebehind.init(res)
    init_label_memory(res)
    return res


def after_fork(app: Flask) -> None:
    """Per-worker set-up after gunicorn forks the preloaded app.

    Database connections opened in the master must not be shared with the
    workers, and per-process metrics start empty.
    """
    res: Resources = app.extensions[EXTENSION]
    res.store.engine.dispose(close=False)
    for hook in res.after_fork:
        hook()
    if res.models.loaded:
        metrics.MODEL_INFO.labels("spam", res.models.scorer().version).set(1)


def _model_metric(family: str) -> Any:
    def swap(version: str, previous: str | None) -> None:
        if previous:
            metrics.MODEL_INFO.labels(family, previous).set(0)
        metrics.MODEL_INFO.labels(family, version).set(1)

    return swap


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CommentmodError)
    def _domain(exc: CommentmodError) -> Response:
        if exc.status >= 500:
            log.error("request.failed", extra={"code": exc.code, "error": exc.message})
        return error_response(exc)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        err = CommentmodError(exc.description or exc.name)
        body = {"error": {"code": HTTP_CODES.get(status, "http_error"), "message": err.message}}
        response = app.response_class(
            app.json.dumps(body), status=status, mimetype="application/json"
        )
        for key, value in exc.get_headers():
            if key.lower() in {"allow", "retry-after"}:
                response.headers[key] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("request.crashed", extra={"path": request.path})
        body = {
            "error": {
                "code": "internal_error",
                "message": "internal error; the server log has the details",
            }
        }
        return app.response_class(app.json.dumps(body), status=500, mimetype="application/json")


def register_hooks(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        guard.check_request(request)  # NUL and lone surrogates: a 400 before any view

    @app.after_request
    def _finish(response: Response) -> Response:
        # One pass over the headers, not one setdefault scan per header (a third of
        # this hook's time on a cache hit).
        present = {key.lower() for key, _ in response.headers.items()}
        response.headers.extend(
            [(key, value) for key, value in SECURITY_HEADERS.items()
             if key.lower() not in present]
        )
        endpoint = request.endpoint or "unknown"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        metrics.REQUESTS.labels(endpoint, str(response.status_code)).inc()
        metrics.LATENCY.labels(endpoint).observe(elapsed)
        if response.status_code >= 400 or log.isEnabledFor(logging.DEBUG):
            log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "endpoint": endpoint,
                    "status": response.status_code,
                    "ms": round(elapsed * 1000, 3),
                },
            )
        return response
