"""The retraining loop's share of the web service.

- per-worker resources: the site-settings cache (per-site thresholds), the
  shadow candidate, and the Redis subscriber that reloads the model when a
  promote or rollback is announced;
- ``GET /models/<version>/report`` and its PNG plots, the training report the
  moderator pages link to. The version name is validated by the registry and
  only the fixed file names below are served.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, send_file

from service.errors import ModelIntegrityError, NotFound
from service.registry.notify import Subscriber
from service.resources import Resources, resources
from service.scoring.shadow import ShadowModel
from service.store.site_settings import SiteSettingsCache

log = logging.getLogger(__name__)

bp = Blueprint("models", __name__, url_prefix="/models")

REPORT_FILES = {
    "report": ("report.html", "text/html; charset=utf-8"),
    "pr.png": ("report-pr.png", "image/png"),
    "confusion.png": ("report-confusion.png", "image/png"),
    "histogram.png": ("report-histogram.png", "image/png"),
}
REPORT_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'"


def init_resources(res: Resources) -> None:
    """Add the loop's per-worker resources; call before the after-fork hooks run."""
    settings = res.settings
    res.site_settings = SiteSettingsCache(res.store, settings.site_settings_ttl_seconds)
    shadow = ShadowModel(res.store, res.models.registry, "spam", settings.reload_interval_seconds)
    # Loaded now, in gunicorn's master when the app is preloaded: the workers share
    # its pages instead of each unpickling its own copy at its first check.
    shadow.current(force=True)
    res.shadow = shadow
    if settings.redis_url and settings.notify_models:

        def on_change(family: str) -> None:
            if family == res.models.family:
                res.models.maybe_reload(force=True)
                shadow.current(force=True)

        def start() -> None:
            subscriber = Subscriber(settings.redis_url, on_change)
            subscriber.start()
            res.model_subscriber = subscriber

        res.after_fork.append(start)


def _report_file(version: str, name: str) -> Response:
    if name not in REPORT_FILES:
        raise NotFound(f"no report file {name!r}")
    filename, mimetype = REPORT_FILES[name]
    try:
        path = resources().models.registry.version_dir(version) / filename
    except ModelIntegrityError as exc:
        raise NotFound(f"no model {version[:100]!r}") from exc
    if not path.is_file():
        raise NotFound(f"model {version!r} has no training report here")
    response = send_file(path, mimetype=mimetype, max_age=300)
    response.headers["Content-Security-Policy"] = REPORT_CSP
    return response


@bp.get("/<version>/report")
def report(version: str) -> Response:
    return _report_file(version, "report")


@bp.get("/<version>/report/<name>")
def report_plot(version: str, name: str) -> Response:
    return _report_file(version, name)
