"""Connect with eBay: the OAuth 2 authorisation-code grant, for the generic OAuth views.

The views call `authorize_url` to send the operator to eBay's consent page, and `exchange` with the
query of eBay's redirect back; they merge what `exchange` returns into the connection's credentials.

eBay does not take a URL as `redirect_uri` but the app's RuName (“eBay redirect URL name”), both on
the consent page and in the code exchange. The RuName is set up in the developer portal with the
hub's OAuth callback address as its “auth accepted URL”, so the `redirect_uri` the views pass (that
callback address) is what eBay redirects to, but is not sent.

Only the refresh token (about 18 months) and when it expires are kept: the two-hour access token is
minted from it when needed (`ebay_client.EbayTokens`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings

from ..errors import AuthError, BadResponse, ConfigurationError
from ..http import HttpClient
from . import ebay_client
from .ebay_client import ENVIRONMENTS, HINT_RECONNECT, SCOPES, TOKEN_PATH, api_url, environment, identity_request

LABELS = {"client_id": "App ID (client ID)", "client_secret": "Cert ID (client secret)", "ru_name": "RuName"}
CODE_REFUSED = (
    "eBay refused the authorisation code: it expired (codes last five minutes), was used already, or was issued for "
    "another app or RuName."
)


def required(credentials: dict[str, Any], name: str) -> str:
    value = str(credentials.get(name) or "").strip()
    if not value:
        raise ConfigurationError(f"The “{LABELS[name]}” credential is missing.", hint="Fill it in on the connection.")
    return value


class EbayOAuth:
    platform = "ebay"
    scopes = SCOPES

    def __init__(self, *, client: HttpClient | None = None, base_url: str = "") -> None:
        # `base_url` (the connection's override) serves the consent page and the token endpoint in
        # place of eBay's hosts (a test server), as it serves the APIs for the connector.
        self._client = client
        self.base_url = (base_url or "").strip().rstrip("/")

    @property
    def client(self) -> HttpClient:
        if self._client is None:
            self._client = HttpClient(allow_private=settings.INTEGRATIONS_ALLOW_PRIVATE_URLS)
        return self._client

    def authorize_url(self, *, credentials: dict, state: str, redirect_uri: str) -> str:
        """eBay's consent page for this app and environment. `redirect_uri` (the hub's callback) is
        not sent: eBay redirects to the “auth accepted URL” of the RuName, which must be it."""
        query = {
            "client_id": required(credentials, "client_id"),
            "response_type": "code",
            "redirect_uri": required(credentials, "ru_name"),
            "scope": " ".join(self.scopes),
            "state": state,
        }
        consent = self.base_url or ENVIRONMENTS[environment(credentials)][1]
        return f"{consent}/oauth2/authorize?{urlencode(query, quote_via=quote)}"

    def exchange(self, *, credentials: dict, params: dict[str, str], redirect_uri: str) -> dict:
        """Trade the callback's `code` for a refresh token; the credential updates to merge."""
        if params.get("error"):
            said = params.get("error_description") or params["error"]
            raise AuthError(f"eBay did not grant access: {said}.", hint=HINT_RECONNECT)
        code = str(params.get("code") or "").strip()
        if not code:
            raise AuthError("eBay's redirect carries no authorisation code.", hint=HINT_RECONNECT)
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": required(credentials, "ru_name")}
        body = identity_request(
            self.client,
            api_url(credentials, self.base_url) + TOKEN_PATH,
            required(credentials, "client_id"),
            required(credentials, "client_secret"),
            form,
            # A code is good once: a retry after a lost answer would only be refused.
            retry=False,
            refused=CODE_REFUSED,
        )
        refresh_token = body.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            raise BadResponse("eBay's token endpoint answered the code without a refresh token.")
        # An old expiry is removed (None) when eBay gives none for the new token.
        updates: dict[str, str | None] = {"refresh_token": refresh_token, "refresh_token_expires_at": None}
        try:
            lifetime = int(body.get("refresh_token_expires_in") or 0)
        except (TypeError, ValueError):
            lifetime = 0
        if lifetime > 0:
            expires = (ebay_client.now() + timedelta(seconds=lifetime)).replace(microsecond=0)
            updates["refresh_token_expires_at"] = expires.isoformat().replace("+00:00", "Z")
        return updates
