"""A lean WSGI path in front of Flask for the two endpoints a comment form calls.

``POST /api/v1/check`` and ``POST /1.1/comment-check`` are answered on every
submit; Flask's request cycle (request and response objects, URL matching,
contexts, hooks, session interface) cost about as much as the rest of a cache
hit (docs/performance.md). :class:`HotPath` wraps ``app.wsgi_app`` (the
pattern Flask documents for middleware, so the test client goes through it
too) and answers those two routes itself, with the views' own functions
(:func:`service.api.check.check_one`, :func:`service.api.akismet.check_answer`)
and the same headers, metrics and log line as the app's hooks.

It answers only what it can answer byte for byte like Flask. Everything else
goes to Flask untouched, with the body it read put back: another method or
path, a query string, rate limits configured (Flask-Limiter counts there), a
request hook added after the app was built, a
body without a length or over the limit, another media type, a body the edge
guard would look into (an escaped NUL or surrogate), any error while reading
the key or the fields (Flask raises it again and answers it in its own words).
Nothing has been counted, cached or recorded at that point. An error after
the check began is rendered by the app's own error handlers.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
from flask import Flask, g
from werkzeug.sansio.utils import get_host

from service import metrics
from service.api.akismet import ascii_form_fields, check_answer, posted_key
from service.api.auth import authenticate_api
from service.api.check import check_one
from service.api.comments import parse_comment
from service.api.guard import JSON_SUSPECT
from service.resources import Resources

# The app's request log (service.app's hooks log under this name).
log = logging.getLogger("service.app")

StartResponse = Callable[..., Any]
Answer = tuple[str, str, dict[str, str]]  # body, content type, extra headers


class Fallback(Exception):  # a signal, not an error
    """Not answerable here exactly as Flask would: Flask answers (nothing changed yet)."""


class HotPath:
    """WSGI middleware: the hot endpoints here, everything else to ``app.wsgi_app``."""

    def __init__(self, app: Flask, res: Resources, security_headers: Mapping[str, str]) -> None:
        self.app = app
        self.res = res
        self.flask = app.wsgi_app
        self.security = list(security_headers.items())
        self.routes: dict[str, tuple[str, Callable[[dict[str, Any], bytes], Answer]]] = {
            "/api/v1/check": ("api.check", self._check),
            "/1.1/comment-check": ("akismet.comment_check", self._comment_check),
        }
        # The request hooks this path stands in for (the app's own, as built). A hook
        # added later (an extension, a test) runs only in Flask's cycle: then Flask
        # answers everything. Flask appends a hook to its scope's list, so the lists
        # (made here where a scope has none yet; an empty one changes nothing) are
        # counted, not looked up, on each request.
        self._hook_lists = [
            table[scope]
            for table in (app.before_request_funcs, app.after_request_funcs,
                          app.teardown_request_funcs, app.url_value_preprocessors)
            for scope in (None, "api", "akismet")
        ]
        self.hooks = self._hooks()
        # Each endpoint's request counter and latency histogram, looked up once.
        self._metrics = {
            endpoint: (metrics.REQUESTS.labels(endpoint, "200"), metrics.LATENCY.labels(endpoint))
            for endpoint, _ in self.routes.values()
        }

    def _hooks(self) -> int:
        return sum(map(len, self._hook_lists))

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        route = self.routes.get(environ.get("PATH_INFO", ""))
        if (
            route is None
            or environ.get("REQUEST_METHOD") != "POST"
            or environ.get("QUERY_STRING")
            or self.res.limiter is not None
            or self._hooks() != self.hooks
        ):
            return self.flask(environ, start_response)
        started = time.perf_counter()
        body = self._body(environ)
        if body is None:
            return self.flask(environ, start_response)
        environ["wsgi.input"] = io.BytesIO(body)  # Flask can read it again
        endpoint, handler = route
        try:
            text, content_type, extra = handler(environ, body)
        except Fallback:
            return self.flask(environ, start_response)
        except Exception as exc:  # after the check began: the app's handlers answer
            return self._flask_error(environ, start_response, exc, started)
        payload = text.encode()
        headers = [("Content-Type", content_type), ("Content-Length", str(len(payload))),
                   *extra.items(), *self.security]
        start_response("200 OK", headers)
        elapsed = time.perf_counter() - started
        requests, latency = self._metrics[endpoint]
        requests.inc()
        latency.observe(elapsed)
        if log.isEnabledFor(logging.DEBUG):
            log.info("request", extra={"method": "POST", "path": environ.get("PATH_INFO"),
                                       "endpoint": endpoint, "status": 200,
                                       "ms": round(elapsed * 1000, 3)})
        return [payload]

    def _body(self, environ: dict[str, Any]) -> bytes | None:
        """The whole body when its length is declared and within the limit, else None."""
        if environ.get("HTTP_TRANSFER_ENCODING"):
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return None
        if not 0 < length <= self.res.settings.max_request_bytes:
            return None
        body: bytes = environ["wsgi.input"].read(length)
        return body

    # --- the two endpoints ---------------------------------------------------------
    def _check(self, environ: dict[str, Any], body: bytes) -> Answer:
        """POST /api/v1/check, as service.api.check.check with the app's hooks."""
        mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        if mimetype != "application/json" and not mimetype.endswith("+json"):
            raise Fallback
        if JSON_SUSPECT.search(body) is not None:
            raise Fallback  # the edge guard's business (a NUL or a lone surrogate)
        res = self.res
        try:
            info = authenticate_api(res, environ.get("HTTP_AUTHORIZATION"))
            comment = parse_comment(orjson.loads(body), res.settings)
        except Exception as exc:
            raise Fallback from exc
        answer = check_one(res, info.site_id if info is not None else None, comment)
        return self.app.json.dumps(answer), "application/json", {}

    def _comment_check(self, environ: dict[str, Any], body: bytes) -> Answer:
        """POST /1.1/comment-check with the usual ASCII form, as the Akismet view."""
        mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        if mimetype != "application/x-www-form-urlencoded" or not body.isascii():
            raise Fallback
        res = self.res
        try:
            host = get_host(
                environ["wsgi.url_scheme"], environ.get("HTTP_HOST"),
                (environ.get("SERVER_NAME", ""), int(environ.get("SERVER_PORT") or 0)),
            )
            fields = ascii_form_fields(body, {})
            info = posted_key(res, fields, host)
        except Exception as exc:
            raise Fallback from exc
        text, headers = check_answer(res, fields, info)
        return text, "text/plain; charset=utf-8", headers

    # --- errors --------------------------------------------------------------------
    def _flask_error(
        self, environ: dict[str, Any], start_response: StartResponse, exc: Exception,
        started: float,
    ) -> Iterable[bytes]:
        """An error raised after the check began, answered by the app's (and the
        blueprint's) error handlers and after-request hooks, as in Flask's cycle."""
        app = self.app
        with app.request_context(environ):
            g.started = started
            try:
                rv = app.handle_user_exception(exc)
            except Exception as unhandled:
                rv = app.handle_exception(unhandled)
            response = app.process_response(app.make_response(rv))
        return response(environ, start_response)
