"""One exception hierarchy for the project, each error knowing its HTTP form.

Domain code raises these; ``service.app.register_error_handlers`` maps them (and
Werkzeug's own HTTP errors) to ``{"error": {"code", "message"}}`` once,
through :func:`error_response`. Blueprints
that speak another wire protocol (Akismet, Perspective) register their own
handler for :class:`CommentmodError` and render the same exceptions their way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from flask import Response


class CommentmodError(Exception):
    """Base of every error commentmod raises on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return {"error": body}


class ConfigurationError(CommentmodError):
    """A setting is missing or invalid; raised at start-up."""

    code = "configuration_error"


class BadRequest(CommentmodError):
    status = 400
    code = "bad_request"


class InvalidJSON(BadRequest):
    code = "invalid_json"


class InvalidEncoding(BadRequest):
    code = "invalid_encoding"


class ValidationError(BadRequest):
    """A field is missing, of the wrong type or out of range."""

    code = "invalid_field"


class UnsupportedMediaType(CommentmodError):
    status = 415
    code = "unsupported_media_type"


class PayloadTooLarge(CommentmodError):
    status = 413
    code = "payload_too_large"


class BatchTooLarge(PayloadTooLarge):
    code = "batch_too_large"


class ScoringBudgetExceeded(PayloadTooLarge):
    """A request's comments needed more scoring time than one request may take."""

    code = "scoring_budget_exceeded"


class AuthenticationError(CommentmodError):
    status = 401
    code = "unauthorized"


class PermissionDenied(CommentmodError):
    status = 403
    code = "forbidden"


class NotFound(CommentmodError):
    status = 404
    code = "not_found"


class Conflict(CommentmodError):
    status = 409
    code = "conflict"


class RateLimited(CommentmodError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServiceUnavailable(CommentmodError):
    status = 503
    code = "unavailable"

    def __init__(
        self, message: str, *, field: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after  # seconds, when a retry is known to help


class ModelError(ServiceUnavailable):
    """A model could not be loaded, verified or used."""

    code = "model_unavailable"


class ModelIntegrityError(ModelError):
    """Checksum, library version or path check failed: the file is not trusted."""

    code = "model_integrity"


class StorageError(ServiceUnavailable):
    """The database could not commit: the write was not acknowledged."""

    code = "storage_unavailable"


class StorageUnreachable(StorageError):
    """The database cannot be reached at all (it refused no particular row): work
    written behind stays in its journal and is retried."""


def error_response(exc: CommentmodError) -> Response:
    """The JSON answer for ``exc``, with the headers its status calls for.

    The app's error handler and the rate limiter's breach handler both answer
    through this, so an error looks the same whichever layer raised it.
    """
    from flask import current_app

    response: Response = current_app.response_class(
        current_app.json.dumps(exc.to_dict()), status=exc.status, mimetype="application/json"
    )
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, AuthenticationError):
        response.headers["WWW-Authenticate"] = 'Bearer realm="commentmod"'  # RFC 6750
    return response
