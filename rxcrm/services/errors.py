"""Errors a service raises; their message is for the person (Russian by default)."""
from __future__ import annotations


class ServiceError(Exception):
    """A refused operation. `message` is plain language, ready to show."""

    def __init__(self, message: str, *, code: str = "error", details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details or {}


class AuthError(ServiceError):
    pass


class AccessDenied(ServiceError):
    def __init__(self, message: str = "Нет доступа", **kw):
        super().__init__(message, code="forbidden", **kw)


class NotFound(ServiceError):
    def __init__(self, message: str = "Не найдено", **kw):
        super().__init__(message, code="not_found", **kw)


class ValidationFailed(ServiceError):
    def __init__(self, message: str, *, fields: dict[str, str] | None = None, code: str = "validation",
                 **kw):
        super().__init__(message, code=code, **kw)
        self.fields = fields or {}
