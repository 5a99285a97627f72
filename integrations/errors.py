"""The small error hierarchy every connector raises, whatever the platform.

Each error carries a message for people and, where the platform gives us one, a hint that says
what to do about it. `permanent` errors are not retried; the others may succeed later.
"""

from __future__ import annotations


class IntegrationError(Exception):
    permanent = True
    code = "error"

    def __init__(self, message: str, *, hint: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.status = status

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class AuthError(IntegrationError):
    """The credentials are wrong, expired or revoked (401)."""

    code = "auth"


class PermissionDenied(IntegrationError):
    """The credentials are valid but lack a permission or scope (403)."""

    code = "permission"


class NotFound(IntegrationError):
    """The address or object does not exist (404): often a wrong shop or site URL."""

    code = "not_found"


class RateLimited(IntegrationError):
    """The platform kept answering 429 after every retry."""

    permanent = False
    code = "rate_limited"


class Unavailable(IntegrationError):
    """5xx, timeouts and connection failures that outlasted the retries."""

    permanent = False
    code = "unavailable"


class BadResponse(IntegrationError):
    """The platform answered something we cannot use: malformed JSON, an unexpected shape, or a
    4xx that none of the above describes."""

    code = "bad_response"


class UnsafeURL(IntegrationError):
    """A user-supplied address that is not allowed (not https, or a private/loopback address)."""

    code = "unsafe_url"


class ConfigurationError(IntegrationError):
    """A credential or setting is missing or malformed; nothing was sent."""

    code = "configuration"
