"""Flask's signed-cookie sessions, opened lazily.

Flask opens the session of every request, and its cookie interface builds a
signing serializer each time, before it even looks for a cookie. Only the
moderators' pages use a session; the APIs called on every comment never send
the cookie. Without the cookie this interface hands out an empty session at
once; with it, or once a view writes to the session, Flask's own code runs
unchanged.
"""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface


class LazyCookieSessionInterface(SecureCookieSessionInterface):
    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)
