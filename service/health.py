"""Liveness, readiness and metrics endpoints for ops."""

from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, Response, jsonify, request

from service import metrics
from service.config import Settings, metrics_networks
from service.errors import AuthenticationError, CommentmodError, PermissionDenied
from service.registry.versions import refresh_counts
from service.resources import resources

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is alive and answering."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready to score: a model is loaded and the database answers."""
    res = resources()
    checks: dict[str, dict[str, object]] = {}
    try:
        scorer = res.models.scorer()
        checks["model"] = {"ok": True, "version": scorer.version}
    except CommentmodError as exc:
        checks["model"] = {"ok": False, "error": exc.message}
    try:
        res.store.ping()
        checks["storage"] = {"ok": True}
    except CommentmodError as exc:
        checks["storage"] = {"ok": False, "error": exc.message}
    for name, probe in res.readiness.items():
        checks[name] = probe()
    ready = all(bool(c.get("ok")) for c in checks.values() if c.get("required", True))
    return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503


def _allow_metrics(settings: Settings) -> None:
    """COMMENTMOD_METRICS_ALLOW and COMMENTMOD_METRICS_TOKEN: each one set must pass."""
    networks = metrics_networks(settings)
    if networks:
        try:
            address = ipaddress.ip_address(request.remote_addr or "")
        except ValueError:
            address = None
        if address is None or not any(address in n for n in networks):
            raise PermissionDenied("/metrics does not answer this address")
    if settings.metrics_token:
        auth = request.headers.get("Authorization", "")
        offered = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(offered.encode(), settings.metrics_token.encode()):
            raise AuthenticationError("/metrics needs its token (Authorization: Bearer ...)")


@bp.get("/metrics")
def metrics_page() -> Response:
    _allow_metrics(resources().settings)
    body, content_type = metrics.render()
    return Response(body + refresh_metrics(), content_type=content_type)


def refresh_metrics() -> bytes:
    """The automatic refreshes, read from the registry's history at scrape time: the
    refresh runs in its own process, and the history is what every host shares."""
    try:
        counts, last = refresh_counts(resources().models.registry.history())
    except Exception:  # a history that cannot be read costs these lines, not the page
        return b""
    lines = [
        "# HELP commentmod_model_refreshes_total Automatic refreshes by outcome",
        "# TYPE commentmod_model_refreshes_total counter",
        *(f'commentmod_model_refreshes_total{{outcome="{k}"}} {v}' for k, v in counts.items()),
        "# HELP commentmod_model_last_refresh_timestamp_seconds When the last refresh ran",
        "# TYPE commentmod_model_last_refresh_timestamp_seconds gauge",
        f"commentmod_model_last_refresh_timestamp_seconds {last}",
    ]
    return ("\n".join(lines) + "\n").encode()
