"""The moderators' web queue at ``/moderate/``: login, queue, labels, bulk, stats.

Every POST carries a CSRF token (Flask-WTF's signed token, checked for the
whole blueprint); the session cookie is HttpOnly, SameSite=Lax and Secure in
production (set by the app factory). Pages set their own CSP: scripts and
styles from 'self' only, nothing inline. Comment text is only ever rendered
through Jinja's autoescape.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Response,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from werkzeug.wrappers import Response as BaseResponse
from wtforms.validators import ValidationError as WTFValidationError

from service.errors import AuthenticationError, BadRequest, CommentmodError
from service.moderation import login_throttle, moderators
from service.moderation.moderators import Moderator
from service.moderation.queue import (
    LabelRequest,
    QueueFilter,
    label_comments,
    queue,
    spam_threshold,
    stats,
    toxicity_view,
    visible_sites,
)
from service.resources import resources

bp = Blueprint("moderate", __name__, url_prefix="/moderate", template_folder="templates")

CSRF_TIME_LIMIT = 8 * 3600  # one shift; the token is also bound to the session
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
F = TypeVar("F", bound=Callable[..., Any])


class CSRFRefused(BadRequest):
    code = "csrf_failed"


@bp.before_request
def _check_csrf() -> None:
    if request.method not in {"GET", "HEAD", "OPTIONS"}:
        token = request.form.get("csrf_token") or request.headers.get("X-CSRFToken", "")
        try:
            validate_csrf(token, time_limit=CSRF_TIME_LIMIT)
        except (WTFValidationError, CSRFError) as exc:
            raise CSRFRefused(
                f"the form's security token is missing or stale ({exc}); reload the page"
            ) from exc


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    return {"csrf_token": generate_csrf}


def wants_json() -> bool:
    return request.headers.get("X-Requested-With") == "fetch"


@bp.errorhandler(CommentmodError)
def _error(exc: CommentmodError) -> Response | tuple[str, int]:
    if wants_json():
        response = jsonify(exc.to_dict())
        response.status_code = exc.status
        return response
    return render_template("moderate/error.html", error=exc), exc.status


def login_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        mod_id = session.get("moderator_id")
        mod = moderators.get(resources().store, mod_id) if isinstance(mod_id, int) else None
        if mod is not None and session.get("epoch") != mod.session_epoch:
            mod = None  # a session from before a logout, a new password or disabling
        if mod is None:
            session.pop("moderator_id", None)
            session.pop("epoch", None)
            if wants_json():
                raise AuthenticationError("log in first")
            return redirect(url_for("moderate.login", next=request.full_path))
        g.moderator = mod
        return view(*args, **kwargs)

    return cast(F, wrapped)


def _safe_next(raw: str | None) -> str:
    """Only redirect back into the queue: never to another host, never a value that
    cannot be a Location header (CR/LF or another control character made a 500)."""
    if (
        raw
        and raw.startswith("/moderate/")
        and not raw.startswith("//")
        and "\\" not in raw
        and raw.isprintable()
        and raw.isascii()
    ):
        return raw
    return url_for("moderate.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    res = resources()
    error = ""
    if request.method == "POST":
        name = request.form.get("name", "")[:100]
        password = request.form.get("password", "")
        address = request.remote_addr or ""
        login_throttle.check(res, name, address)
        hasher = moderators.hasher_for(res.settings.password_hash_cost)
        mod = moderators.verify(res.store, name, password, hasher=hasher)
        if mod is not None:
            session.clear()  # a fresh session: no fixation across the login
            session["moderator_id"] = mod.id
            session["epoch"] = mod.session_epoch
            res.store.audit(mod.audit_actor, "login", mod.name, {"ip": request.remote_addr or ""})
            return redirect(_safe_next(request.args.get("next")))
        login_throttle.failed(res, name, address, via="web")
        error = "Unknown name or wrong password."
    status = 401 if error else 200
    return render_template("moderate/login.html", error=error), status


@bp.post("/logout")
def logout() -> Response | BaseResponse:
    mod_id, epoch = session.get("moderator_id"), session.get("epoch")
    session.clear()
    mod = moderators.get(resources().store, mod_id) if isinstance(mod_id, int) else None
    if mod is not None and epoch == mod.session_epoch:
        moderators.end_sessions(resources().store, mod, actor=mod.audit_actor, action="logout")
    return redirect(url_for("moderate.login"))


@bp.get("/")
@login_required
def index() -> str:
    res = resources()
    mod: Moderator = g.moderator
    flt = QueueFilter.from_args(request.args)
    rows, total = queue(res, mod, flt)
    for row in rows:
        row["toxicity_view"] = toxicity_view(row.get("toxicity"), row.get("content"))
    args = flt.as_args()
    here = url_for("moderate.index") + ("?" + urlencode(args) if args else "")

    def page(offset: int) -> str:
        return url_for("moderate.index") + "?" + urlencode({**args, "offset": str(offset)})

    return render_template(
        "moderate/queue.html",
        mod=mod,
        rows=rows,
        total=total,
        flt=flt,
        sites=visible_sites(res, mod),
        here=here,
        threshold=spam_threshold(res),
        prev_url=page(max(flt.offset - flt.limit, 0)) if flt.offset else "",
        next_url=page(flt.offset + flt.limit) if flt.offset + flt.limit < total else "",
    )


@bp.post("/comments/<guid>/label")
@login_required
def label_one(guid: str) -> Response | BaseResponse:
    res = resources()
    wanted = LabelRequest.parse(
        guid,
        request.form.get("label"),
        request.form.get("task") or None,
        request.form.get("attribute") or None,
    )
    [done] = label_comments(res, g.moderator, [wanted])
    if wants_json():
        return jsonify(done.to_dict())
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/bulk")
@login_required
def bulk() -> Response | BaseResponse:
    res = resources()
    label = request.form.get("label")
    guids = request.form.getlist("guid")
    wanted = [LabelRequest.parse(guid, label, "spam") for guid in guids]
    done = label_comments(res, g.moderator, wanted)
    if wants_json():
        return jsonify({"labelled": [d.to_dict() for d in done]})
    return redirect(_safe_next(request.form.get("next")))


@bp.get("/stats")
@login_required
def stats_page() -> str:
    rows = stats(resources(), g.moderator)
    totals = {
        "comments": sum(r["comments"] for r in rows),
        "spam": sum(r["labels"].get("spam", 0) for r in rows),
        "ham": sum(r["labels"].get("ham", 0) for r in rows),
        "pending": sum(r["pending"] for r in rows),
    }
    return render_template("moderate/stats.html", mod=g.moderator, rows=rows, totals=totals)
