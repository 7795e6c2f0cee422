"""Akismet's wire protocol (/1.1 and /1.2), byte for byte as real clients expect.

Sites keep the Akismet client they run (each reaches us through one small,
tested step: docs/akismet.md, "Clients"), so every answer is what Akismet
itself would send: HTTP 200 and a ``text/plain`` body even for a bad key
(``invalid`` with an ``X-akismet-debug-help`` header saying why), unknown
fields ignored, never an HTML page; the WordPress plugin's settings-page calls
too. docs/akismet.md describes the endpoints.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import HTTPException

from service.api import guard
from service.api.auth import form_key, key_info
from service.api.checking import check_comments, record_feedback
from service.config import Settings
from service.errors import CommentmodError, ValidationError
from service.resources import Resources, resources
from service.store import site_stats
from service.store.db import KeyInfo, site_key
from training.text import Comment

log = logging.getLogger(__name__)

bp = Blueprint("akismet", __name__)

THANKS = "Thanks for making the web a better place."
TRUE_VALUES = frozenset({"1", "true", "yes", "on"})
# Akismet field -> Comment field.
FIELD_MAP = {
    "comment_content": "content",
    "comment_author": "author",
    "comment_author_email": "author_email",
    "comment_author_url": "author_url",
    "user_ip": "user_ip",
    "user_agent": "user_agent",
    "referrer": "referrer",
    "permalink": "permalink",
    "comment_type": "type",
    "blog_lang": "lang",
    "comment_date_gmt": "created_at",
    "comment_post_modified_gmt": "article_published_at",
    "user_role": "user_role",
}
ALIASES = {"content_type": "comment_type", "charset": "blog_charset"}  # Discourse's names
GMT_FIELDS = frozenset({"comment_date_gmt", "comment_post_modified_gmt"})
EXTRA_FIELDS = ("blog", "blog_charset", "recheck_reason", "comment_parent", "comment_context")
MAX_REPORT_LIMIT = 10_000
WORDPRESS_HONEYPOT = "POST_ak_hp_textarea"
# What get-subscription reports: one self-hosted plan that is always active and never bills.
SUBSCRIPTION = {"account_name": "commentmod (self-hosted)", "account_type": "self-hosted",
                "status": "active", "next_billing_date": None, "limit_reached": False}
STATS_PERIODS = {"60-days": timedelta(days=60), "6-months": timedelta(days=183)}


class Invalid(CommentmodError):
    """Answered as Akismet does: 200, body ``invalid``, the reason in a header."""

    status = 200
    code = "invalid"


# --- responses -----------------------------------------------------------------


def text(body: str, headers: dict[str, str] | None = None, status: int = 200) -> Response:
    response = current_app.response_class(body, status=status, mimetype="text/plain")
    response.headers.update(headers or {})
    return response


def json_body(body: dict[str, Any]) -> Response:
    return current_app.response_class(
        current_app.json.dumps(body), status=200, mimetype="application/json"
    )


def _header_safe(message: str) -> str:
    """Header values are one line of printable ASCII."""
    cleaned = "".join(ch if " " <= ch <= "~" else "?" for ch in message)
    return cleaned[:300]


def invalid(help_text: str) -> Response:
    return text("invalid", {"X-akismet-debug-help": _header_safe(help_text)})


@bp.errorhandler(CommentmodError)
def _domain_error(exc: CommentmodError) -> Response:
    if exc.status < 500:
        return invalid(exc.message)
    log.error("akismet.failed", extra={"code": exc.code, "error": exc.message})
    return text(exc.message, {"X-akismet-error": _header_safe(exc.message)}, status=exc.status)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    # Raised while reading the body (413 and the like): still Akismet's answer.
    return invalid(exc.description or exc.name)


@bp.errorhandler(Exception)
def _crash(exc: Exception) -> Response:
    log.exception("akismet.crashed", extra={"path": request.path})
    message = "internal error; the server log has the details"
    return text(message, {"X-akismet-error": message}, status=500)


# --- request fields ------------------------------------------------------------


def request_fields() -> dict[str, str]:
    """The request's fields (query, then form), first value of each, aliases applied.

    The form is decoded as ``blog_charset`` says when that is not UTF-8
    (Werkzeug assumes UTF-8 and would replace the bytes).
    """
    urlencoded = request.mimetype == "application/x-www-form-urlencoded"
    # Keep the raw body for a non-UTF-8 charset: the form parser then reads the
    # cache. If something (a rate limiter's key function) parsed the form first,
    # the raw bytes are gone and Werkzeug's UTF-8 decoding stands.
    raw_kept = request.method == "POST" and urlencoded and "form" not in request.__dict__
    raw = request.get_data(cache=True) if raw_kept else b""
    if raw_kept and raw.isascii():
        return ascii_form_fields(raw, dict(request.args.items()))
    values = dict(request.values.items())
    charset = (values.get("blog_charset") or values.get("charset") or "").strip()
    if raw_kept and charset and _foreign_charset(charset):
        decoded = _parse_form(raw.decode("latin-1"), charset)
        values = {**decoded, **{k: v for k, v in request.args.items()}}
    return _with_aliases(values)


def ascii_form_fields(raw: bytes, args: dict[str, str]) -> dict[str, str]:
    """The usual body: percent-encoded ASCII, parsed in one pass (Werkzeug's form
    machinery cost as much as the Redis round trip), charset applied, then the
    query's fields over it (this module's views and service.api.hotpath)."""
    values = _parse_form(raw.decode("ascii"), "utf-8")
    charset = (values.get("blog_charset") or values.get("charset") or "").strip()
    if charset and _foreign_charset(charset):
        values = _parse_form(raw.decode("ascii"), charset)
    return _with_aliases({**values, **args})


def _parse_form(body: str, charset: str) -> dict[str, str]:
    """First value of each field of a urlencoded body (as ``request.values`` gives).

    A charset that cannot decode the body (``undefined``, ``idna`` on a long
    label, a codec that is no text encoding) is read as UTF-8, as Akismet does.
    """
    try:
        pairs = form_pairs(body, charset)
    except (LookupError, UnicodeError, ValueError, TypeError):
        pairs = form_pairs(body, "utf-8")
    return dict(reversed(pairs))


def form_pairs(body: str, charset: str) -> list[tuple[str, str]]:
    """``parse_qsl(body, keep_blank_values=True, encoding=charset, errors="replace")``,
    pair for pair, without a call to ``unquote`` for the many values that hold no
    ``%`` (a comment-check's two dozen fields cost as much as the rest of its parsing)."""
    pairs = []
    for field in body.split("&"):
        if not field:
            continue
        name, _, value = field.partition("=")
        if "+" in name:
            name = name.replace("+", " ")
        if "%" in name:
            name = unquote(name, encoding=charset, errors="replace")
        if "+" in value:
            value = value.replace("+", " ")
        if "%" in value:
            value = unquote(value, encoding=charset, errors="replace")
        pairs.append((name, value))
    return pairs


def _with_aliases(values: dict[str, str]) -> dict[str, str]:
    # After decoding by the blog's charset: the edge check every endpoint makes
    # (service/guard.py), answered in Akismet's way (invalid, the field named).
    guard.refuse_in_mapping(values)
    out = dict(values)
    for alias, name in ALIASES.items():
        if alias in out and not out.get(name):
            out[name] = out[alias]
    return out


def _foreign_charset(charset: str) -> bool:
    """A text encoding other than UTF-8 (an unknown name, NUL in the name or a
    bytes-to-bytes codec such as ``hex``: no, the form stays UTF-8)."""
    try:
        info = codecs.lookup(charset)
    except (LookupError, ValueError, TypeError):
        return False
    return info.name != "utf-8" and getattr(info, "_is_text_encoding", True)


def flag(value: str | None) -> bool:
    """Akismet booleans: 1/true/True (and yes/on) are true, anything else false."""
    return (value or "").strip().lower() in TRUE_VALUES


def _gmt(value: str) -> str:
    """An ISO 8601 (or WordPress ``Y-m-d H:i:s``, or Unix) GMT time, with its zone."""
    raw = value.strip()
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        if not raw.isdigit():
            return raw
        try:
            return datetime.fromtimestamp(int(raw), UTC).isoformat()
        except (OverflowError, OSError, ValueError):
            return raw
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()


def to_comment(fields: dict[str, str], settings: Settings) -> Comment:
    """The Comment record for Akismet fields; over-long fields are cut, not refused."""
    values: dict[str, Any] = {}
    for source, target in FIELD_MAP.items():
        value = fields.get(source, "")
        if not value:
            continue
        if source in GMT_FIELDS:
            value = _gmt(value)
        limit = settings.max_content_chars if target == "content" else settings.max_field_chars
        values[target] = value[:limit]
    honeypot = _honeypot(fields)
    if honeypot:
        values["honeypot"] = honeypot[: settings.max_field_chars]
    extra = {
        name: fields[name][: settings.max_field_chars] for name in EXTRA_FIELDS if fields.get(name)
    }
    return Comment(content=values.pop("content", ""), extra=extra, **values)


def _honeypot(fields: dict[str, str]) -> str:
    """The honeypot's value: the field ``honeypot_field_name`` names, else the hidden
    textarea the WordPress plugin renders into every form it protects (sent as
    ``POST_ak_hp_textarea``, without ``honeypot_field_name``)."""
    name = fields.get("honeypot_field_name", "").strip()
    if name:
        return "" if name in (*FIELD_MAP, "api_key", "key", "blog") else fields.get(name, "")
    return fields.get(WORDPRESS_HONEYPOT, "")


# --- keys and sites ------------------------------------------------------------


def _covers(bound: str, blog: str) -> bool:
    """A key bound to ``example.com`` also covers ``example.com/news``."""
    return blog == bound or blog.startswith(bound.rstrip("/") + "/")


def authorise(
    res: Resources, fields: dict[str, str], host: str, *, fresh: bool = False,
    asked: bool = False,
) -> KeyInfo:
    """The key's site, checked against ``blog``; otherwise Invalid with the reason.

    ``fresh``: ask the database, not the worker's key cache (verify-key).
    ``asked``: judge the key the call asks about, ``key``, before ``api_key``. The
    WordPress plugin adds its stored key as ``api_key`` to every call, so when an
    operator types a new key into its settings form, verify-key and get-subscription
    carry the new one as ``key`` beside the old one as ``api_key``.
    """
    key = (fields.get("key", "").strip() if asked else "") or form_key(fields, host)
    if not key:
        raise Invalid(
            'Empty "api_key" value: send api_key (or key), or reach us as KEY.rest.akismet.com'
        )
    info = key_info(res, key, fresh=fresh)
    if info is None:
        raise Invalid("unknown or revoked API key")
    blog = fields.get("blog", "").strip()
    if not blog:
        raise Invalid('Empty "blog" value: send the site URL the key was issued for')
    try:
        normalised = site_key(blog)
    except ValidationError as exc:
        raise Invalid(f'"blog" {blog[:100]!r} is not a site URL') from exc
    if not _covers(info.site_url, normalised):
        raise Invalid(f"this key is bound to {info.site_url}, not {normalised}")
    return info


def _answered_spam(verdict: str, settings: Settings) -> bool:
    return verdict == "spam" or (verdict == "unsure" and settings.akismet_unsure_is_spam)


# --- /1.1 ----------------------------------------------------------------------


def _require_post() -> None:
    if request.method != "POST":
        raise Invalid("send a POST with application/x-www-form-urlencoded fields")


@bp.route("/1.1/verify-key", methods=["GET", "POST"])
def verify_key() -> Response:
    _require_post()
    authorise(resources(), request_fields(), request.host, fresh=True, asked=True)
    return text("valid")


def _posted_fields() -> tuple[Resources, dict[str, str], KeyInfo]:
    """What comment-check and submit-spam/ham share: a POST, a live key and the
    commenter's IP."""
    _require_post()
    res = resources()
    fields = request_fields()
    return res, fields, posted_key(res, fields, request.host)


def posted_key(res: Resources, fields: dict[str, str], host: str) -> KeyInfo:
    """A live key for the blog, and the commenter's IP (comment-check, submit-*)."""
    info = authorise(res, fields, host)
    if not fields.get("user_ip", "").strip():
        raise Invalid('Empty "user_ip" value: send the commenter\'s IP address')
    return info


def check_answer(
    res: Resources, fields: dict[str, str], info: KeyInfo
) -> tuple[str, dict[str, str]]:
    """comment-check's body and headers (this view and service.api.hotpath)."""
    comment = to_comment(fields, res.settings)
    [result] = check_comments(
        res, [comment], site_id=info.site_id, source="akismet", is_test=flag(fields.get("is_test"))
    )
    outcome = result.outcome
    spam = _answered_spam(outcome.verdict.value, res.settings)
    headers = {
        "X-akismet-guid": result.guid,
        "X-commentmod-verdict": outcome.verdict.value,
        "X-commentmod-spam-probability": f"{outcome.spam_probability:.4f}",
    }
    # Akismet's test author is plain spam, never "discard": client test suites expect SPAM.
    if spam and outcome.discard and outcome.rule != "guaranteed_spam":
        headers["X-akismet-pro-tip"] = "discard"
    return ("true" if spam else "false"), headers


@bp.route("/1.1/comment-check", methods=["GET", "POST"])
def comment_check() -> Response:
    res, fields, info = _posted_fields()
    body, headers = check_answer(res, fields, info)
    return text(body, headers)


def _submit(label: str) -> Response:
    res, fields, info = _posted_fields()
    guid = (fields.get("guid") or fields.get("akismet_guid") or "").strip()[:100]
    comment = to_comment(fields, res.settings)
    if not guid and not comment.content.strip():
        raise Invalid(
            "nothing to label: send comment_content, or the guid of a checked comment"
        )
    record_feedback(
        res,
        label=label,
        source="site",
        actor=f"site:{info.site_id}",
        site_id=info.site_id,
        guid=guid,
        comment=comment if comment.content.strip() else None,
        is_test=flag(fields.get("is_test")),
    )
    return text(THANKS)


@bp.route("/1.1/submit-spam", methods=["GET", "POST"])
def submit_spam() -> Response:
    return _submit("spam")


@bp.route("/1.1/submit-ham", methods=["GET", "POST"])
def submit_ham() -> Response:
    return _submit("ham")


# --- what the WordPress plugin's settings page calls -----------------------------


@bp.route("/1.1/test", methods=["GET", "POST"])
def connection_test() -> Response:
    """The plugin's connectivity probe: any body but ``connected`` shows the site
    owner "Your site can't connect to the Akismet servers". Its fields are read
    like every other endpoint's, so a field no database could store is refused
    here too, in Akismet's words."""
    request_fields()
    return text("connected")


@bp.route("/1.1/get-subscription", methods=["GET", "POST"])
def get_subscription() -> Response:
    """The plugin saves a key from its settings form only when this says ``active``;
    the fields are the ones its settings page reads (views/config.php)."""
    _require_post()
    authorise(resources(), request_fields(), request.host, fresh=True, asked=True)
    return json_body(SUBSCRIPTION)


@bp.route("/1.1/get-stats", methods=["GET", "POST"])
def get_stats() -> Response:
    """The site's checks since ``from`` (``60-days``, ``6-months`` or ``all``), counted
    as key-sites counts them, with a per-month ``breakdown`` (``wp akismet stats``)."""
    _require_post()
    res = resources()
    fields = request_fields()
    info = authorise(res, fields, request.host, asked=True)
    period = fields.get("from", "").strip() or "all"
    if period != "all" and period not in STATS_PERIODS:
        raise Invalid('"from" must be 60-days, 6-months or all')
    since = None if period == "all" else datetime.now(UTC) - STATS_PERIODS[period]
    months = site_stats.site_months(res.store, info.site_id, since,
                                    unsure_is_spam=res.settings.akismet_unsure_is_spam)
    counts = ("spam", "ham", "missed_spam", "false_positives")
    totals = {name: sum(getattr(row, name) for _, row in months) for name in counts}
    checked = totals["spam"] + totals["ham"]
    wrong = totals["missed_spam"] + totals["false_positives"]
    body = {
        "from": period,
        **totals,
        # the share of answers no label contradicted, in percent (100 before any check)
        "accuracy": round(100 * (checked - wrong) / checked, 2) if checked else 100.0,
        "breakdown": {
            month: {"date": month, **{name: getattr(row, name) for name in counts}}
            for month, row in months
        },
    }
    return json_body(body)


@bp.route("/1.1/deactivate", methods=["GET", "POST"])
def deactivate() -> Response:
    """Sent when the plugin is switched off. The key stays live (the plugin may be
    switched on again with it); revoke keys with ``commentmod keys revoke``."""
    _require_post()
    res = resources()
    info = authorise(res, request_fields(), request.host, fresh=True, asked=True)
    res.store.audit(f"site:{info.site_id}", "key.deactivate", info.site_url)
    return text("deactivated")


# --- /1.2 ----------------------------------------------------------------------


def _int_param(fields: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = fields.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise Invalid(f'"{name}" must be a whole number from {low} to {high}')
    return int(raw)


@bp.route("/1.2/key-sites", methods=["GET", "POST"])
def key_sites() -> Response:
    """Per-site activity for a month. Without a key (the PyPI client sends none)
    the single-machine default reports every site; with auth required it is
    ``invalid`` like any other key-less call.
    """
    res = resources()
    fields = request_fields()
    key = form_key(fields, request.host)
    site_ids: list[int] | None = None
    if key:
        info = key_info(res, key)
        if info is None:
            raise Invalid("unknown or revoked API key")
        site_ids = [info.site_id]
    elif res.settings.auth_required:
        raise Invalid('Empty "api_key" value: send api_key, or reach us as KEY.rest.akismet.com')
    month = fields.get("month", "").strip() or site_stats.current_month()
    try:
        site_stats.month_bounds(month)
    except ValueError as exc:
        raise Invalid('"month" must be YYYY-MM') from exc
    fmt = fields.get("format", "").strip().lower() or "json"
    if fmt not in ("json", "csv"):
        raise Invalid('"format" must be json or csv')
    order = fields.get("order", "").strip().lower() or "total"
    if order not in site_stats.ORDERS:
        raise Invalid(f'"order" must be one of {", ".join(site_stats.ORDERS)}')
    limit = _int_param(fields, "limit", 500, 0, MAX_REPORT_LIMIT)
    offset = _int_param(fields, "offset", 0, 0, 10**9)
    rows = site_stats.sort_activity(
        site_stats.site_activity(
            res.store,
            month,
            site_ids=site_ids,
            url_filter=fields.get("filter", "")[:500],
            unsure_is_spam=res.settings.akismet_unsure_is_spam,
        ),
        order,
    )
    page = rows[offset : offset + limit]
    if fmt == "csv":
        return text(_csv(page, key or "all sites", month, limit, offset, len(rows)))
    return json_body({month: [r.to_dict() for r in page], "limit": limit, "offset": offset,
                      "total": len(rows)})


def _csv(rows: list[site_stats.SiteActivity], who: str, month: str, limit: int, offset: int,
         total: int) -> str:
    out = io.StringIO()
    out.write(f"Active sites for {who} during {month} "
              f"(limit:{limit}, offset: {offset}, total: {total})\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["Site", "Total API Calls", "Spam", "Ham", "Missed Spam",
                     "False Positives", "Is Revoked"])
    for r in rows:
        writer.writerow([r.site, r.api_calls, r.spam, r.ham, r.missed_spam, r.false_positives,
                         "true" if r.is_revoked else "false"])
    return out.getvalue().rstrip("\n")


@bp.route("/1.2/usage-limit", methods=["GET", "POST"])
def usage_limit() -> Response:
    """This month's checks for the key's site against ``akismet_monthly_limit``.

    commentmod never throttles, so ``throttled`` is always false.
    """
    res = resources()
    fields = request_fields()
    key = form_key(fields, request.host)
    if not key:
        raise Invalid('Empty "api_key" value: send api_key, or reach us as KEY.rest.akismet.com')
    info = key_info(res, key)
    if info is None:
        raise Invalid("unknown or revoked API key")
    used = site_stats.usage(res.store, info.site_id, site_stats.current_month())
    limit = res.settings.akismet_monthly_limit
    body = {
        "limit": limit if limit else "none",
        "usage": used,
        "percentage": f"{100 * used / limit:.2f}" if limit else "0.00",
        "throttled": False,
    }
    return json_body(body)
