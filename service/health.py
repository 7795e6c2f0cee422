"""The front door (``GET /``), liveness, readiness and metrics endpoints for ops."""

from __future__ import annotations

import hmac
import html
import ipaddress

from flask import Blueprint, Response, jsonify, request

from service import metrics
from service.config import Settings, metrics_networks
from service.errors import AuthenticationError, CommentmodError, PermissionDenied
from service.registry.versions import refresh_counts
from service.resources import resources

bp = Blueprint("health", __name__)

# (method, path, what a person finds there); the same list answers as JSON and as a page.
LINKS = (
    ("GET", "/api/v1/openapi.json", "API description (OpenAPI 3.1); the guide is docs/api.md"),
    ("POST", "/api/v1/check", "score a comment: JSON {\"content\": \"...\"}"),
    ("GET", "/moderate/", "moderation queue (moderators log in)"),
    ("GET", "/moderate/stats", "moderation counts per site"),
    ("GET", "/healthz", "liveness"),
    ("GET", "/readyz", "readiness: model loaded, database answering"),
    ("GET", "/metrics", "Prometheus metrics"),
    ("GET", "/$discovery/rest?version=v1alpha1", "Perspective API discovery document"),
)
INDEX_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
INDEX_STYLE = (
    "body{margin:0;background:#f5f6f8;color:#1d2330;"
    "font:15px/1.5 system-ui,'DejaVu Sans',sans-serif}"
    "header{background:#1d2330;color:#fff;padding:14px 28px}h1{margin:0;font-size:19px}"
    "main{max-width:760px;margin:0 auto;padding:20px 28px}ul{padding-left:20px}"
    "a{color:#1f56c2}code{font-size:14px}"
)


@bp.get("/")
def index() -> Response:
    """Where things are: JSON for API clients (and curl), a small page for browsers."""
    if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
        items = "".join(
            f"<li><a href='{html.escape(path)}'><code>{html.escape(path)}</code></a> "
            f"{html.escape(what)}</li>"
            if method == "GET"
            else f"<li><code>{method} {html.escape(path)}</code> {html.escape(what)}</li>"
            for method, path, what in LINKS
        )
        page = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>commentmod</title><style>{INDEX_STYLE}</style></head><body>"
            "<header><h1>commentmod</h1></header><main><p>Comment moderation for news "
            f"sites: spam and toxicity scores, a moderation queue.</p><ul>{items}</ul>"
            "</main></body></html>"
        )
        response = Response(page, mimetype="text/html")
        response.headers["Content-Security-Policy"] = INDEX_CSP
        response.vary.add("Accept")
        return response
    response = jsonify(
        service="commentmod",
        links=[{"method": m, "href": path, "title": what} for m, path, what in LINKS],
    )
    response.vary.add("Accept")
    return response


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
