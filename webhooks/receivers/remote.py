"""What the receivers that verify a delivery by calling the provider share (PayPal, eBay).

- One client through the project's HTTP layer (SSRF guard included) with short timeouts and no
  retries: the view must answer well inside the provider's own timeout, and after our 503 the
  provider delivers again anyway.
- An app access token from the OAuth client-credentials grant, kept in the cache per connection
  until shortly before it expires.
- One rule for a failed call: the provider refusing what we forwarded (400, 404, 422) refuses the
  delivery; anything else (timeouts, 5xx, the connection's own credentials refused) is
  `Unavailable`, answered 503 so the delivery comes again once it is fixed.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import requests
from django.conf import settings
from django.core.cache import cache

from integrations.errors import AuthError, IntegrationError, PermissionDenied
from integrations.http import HttpClient

from .base import Rejected, Unavailable

if TYPE_CHECKING:
    from integrations.models import Connection

TIMEOUT = (2.0, 4.0)  # connect, read (seconds)
TOKEN_MARGIN = 120  # a cached token is dropped this many seconds before it expires
REFUSED = {400, 404, 422}


def client() -> HttpClient:
    return HttpClient(timeout=TIMEOUT, max_retries=0, allow_private=settings.INTEGRATIONS_ALLOW_PRIVATE_URLS)


def failure(error: IntegrationError | requests.RequestException, provider: str, action: str) -> Rejected | Unavailable:
    """What a failed call to the provider means for the delivery being verified."""
    if isinstance(error, requests.RequestException):  # a broken answer the HTTP layer does not map
        return Unavailable(f"{provider} could not {action}: {type(error).__name__}.")
    if isinstance(error, AuthError | PermissionDenied):
        return Unavailable(
            f"{provider} refused the connection's client ID and secret when asked to {action} ({error.status}): "
            f"fix them on the connection; {provider} delivers the webhook again later."
        )
    if error.status in REFUSED:
        return Rejected(f"{provider} refused to {action}: {error.message}")
    return Unavailable(f"{provider} could not {action}: {error.message}")


class AppToken:
    """A client-credentials access token for one connection, cached until shortly before it expires."""

    def __init__(
        self, connection: Connection, provider: str, url: str, client_id: str, client_secret: str, **form: str
    ) -> None:
        self.provider = provider
        self.url = url
        self.auth = (client_id, client_secret)
        self.form = {"grant_type": "client_credentials", **form}
        # Another client ID or token address (a sandbox switch) never reuses the old token.
        digest = hashlib.sha256(f"{url}|{client_id}".encode()).hexdigest()[:16]
        self.key = f"webhooks:{provider.lower()}:token:{connection.pk}:{digest}"

    def get(self, http: HttpClient) -> str:
        token = cache.get(self.key)
        if token:
            return token
        try:
            answer = http.json("POST", self.url, auth=self.auth, data=self.form, retry=False)
        except (IntegrationError, requests.RequestException) as error:
            raise failure(error, self.provider, "issue an access token") from None
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not token:
            raise Unavailable(f"{self.provider} answered the token request without an access token.")
        try:
            lifetime = int(answer.get("expires_in") or 0) - TOKEN_MARGIN
        except (TypeError, ValueError):
            lifetime = 0
        if lifetime > 0:
            cache.set(self.key, token, timeout=lifetime)
        return token

    def call(self, http: HttpClient, method: str, url: str, action: str, **kwargs: Any) -> Any:
        """A JSON call with the token; a 401 also drops the cached token (revoked before it expired)."""
        headers = {"Authorization": f"Bearer {self.get(http)}", **kwargs.pop("headers", {})}
        try:
            return http.json(method, url, headers=headers, retry=False, **kwargs)
        except (IntegrationError, requests.RequestException) as error:
            if isinstance(error, AuthError):
                cache.delete(self.key)
            raise failure(error, self.provider, action) from None
