"""NGSI-LD errors as RFC 9457 ProblemDetails.

Every failure a client can cause is raised as one of these, so the HTTP layer
turns it into a ProblemDetails body whose ``type`` is the NGSI-LD error URI and
whose ``detail`` names the offending field.
"""

from __future__ import annotations

from typing import Any

ERROR_BASE = "https://uri.etsi.org/ngsi-ld/errors/"


class NgsiError(Exception):
    """Base class: an NGSI-LD error type with its HTTP status."""

    error_type = "InternalError"
    status = 500
    title = "Internal error"

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra

    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": ERROR_BASE + self.error_type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.field:
            body["field"] = self.field
        body.update(self.extra)
        return body


class InvalidRequest(NgsiError):
    error_type, status, title = "InvalidRequest", 400, "Invalid request"


class BadRequestData(NgsiError):
    error_type, status, title = "BadRequestData", 400, "Bad request data"


class AlreadyExists(NgsiError):
    error_type, status, title = "AlreadyExists", 409, "Already exists"


class OperationNotSupported(NgsiError):
    error_type, status, title = "OperationNotSupported", 422, "Operation not supported"


class ResourceNotFound(NgsiError):
    error_type, status, title = "ResourceNotFound", 404, "Resource not found"


class LdContextNotAvailable(NgsiError):
    error_type, status, title = "LdContextNotAvailable", 503, "JSON-LD context not available"


class NonexistentTenant(NgsiError):
    error_type, status, title = "NonexistentTenant", 404, "Nonexistent tenant"


class TooManyResults(NgsiError):
    error_type, status, title = "TooManyResults", 403, "Too many results"


class TooComplexQuery(NgsiError):
    error_type, status, title = "TooComplexQuery", 403, "Too complex query"


class Unauthorized(NgsiError):
    error_type, status, title = "Unauthorized", 401, "Unauthorized"


class Forbidden(NgsiError):
    error_type, status, title = "Forbidden", 403, "Forbidden"


class Conflict(NgsiError):
    error_type, status, title = "Conflict", 409, "Conflict"


class PayloadTooLarge(NgsiError):
    error_type, status, title = "BadRequestData", 413, "Payload too large"


class NotAcceptable(NgsiError):
    error_type, status, title = "NotAcceptable", 406, "Not acceptable"


class UnsupportedMediaType(NgsiError):
    error_type, status, title = "UnsupportedMediaType", 415, "Unsupported media type"
