"""Connect with HubSpot: the OAuth 2 authorisation-code grant of a HubSpot app.

The person is sent to https://app.hubspot.com/oauth/authorize, picks the account (portal) and
approves the app's scopes; HubSpot sends the browser back with a `code`, which is exchanged once at
https://api.hubapi.com/oauth/v1/token for a refresh token (kept) and a 30-minute access token (not
kept: the connector mints its own from the refresh token, `hubspot_client.HubSpotTokens`). The
account's id (`hub_id`) is kept too, from the token answer or, for an answer without it, from the
token's metadata (`GET /oauth/v1/access-tokens/{token}`).

The scopes asked for must be the app's scopes in HubSpot exactly (its Auth settings), or HubSpot
refuses the install.

https://developers.hubspot.com/docs/api/oauth-quickstart-guide
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from django.conf import settings

from ..connectors.hubspot_client import API_URL, TOKEN_PATH
from ..errors import AuthError, BadResponse, IntegrationError
from ..http import HttpClient
from ..platforms import CATALOGUE, Platform
from .base import required, token_request

CONSENT_URL = "https://app.hubspot.com"
TOKEN_INFO_PATH = "/oauth/v1/access-tokens/"  # noqa: S105 (a path, not a password)
# `oauth` is what every HubSpot OAuth app must ask for; the rest are what the connector uses.
SCOPES = ("oauth", *CATALOGUE[Platform.HUBSPOT].scopes)
WHERE = "From the app's Auth settings in HubSpot (client ID and client secret)."
HINT_AGAIN = "Start Connect again, signed in to the HubSpot account to connect."


class HubSpotOAuth:
    platform = Platform.HUBSPOT
    scopes = SCOPES

    def __init__(self, *, base_url: str = "") -> None:
        # `base_url` (the connection's override) serves the consent page and the token endpoint in
        # place of HubSpot's hosts (a test server), as it serves the APIs for the connector.
        self.base_url = (base_url or "").strip().rstrip("/")

    def authorize_url(self, *, credentials: dict, state: str, redirect_uri: str) -> str:
        query = {
            "client_id": required(credentials, "client_id", "client ID", WHERE),
            "scope": " ".join(self.scopes),
            "redirect_uri": redirect_uri,
            "state": state,
        }
        required(credentials, "client_secret", "client secret", WHERE)
        return f"{self.base_url or CONSENT_URL}/oauth/authorize?{urlencode(query, quote_via=quote)}"

    def exchange(self, *, credentials: dict, params: dict[str, str], redirect_uri: str) -> dict:
        if params.get("error"):
            said = params.get("error_description") or params["error"]
            raise AuthError(f"HubSpot did not grant access: {said}.", hint=HINT_AGAIN)
        code = str(params.get("code") or "").strip()
        if not code:
            raise BadResponse("HubSpot sent no authorisation code.", hint=HINT_AGAIN)
        form = {
            "grant_type": "authorization_code",
            "client_id": required(credentials, "client_id", "client ID", WHERE),
            "client_secret": required(credentials, "client_secret", "client secret", WHERE),
            "redirect_uri": redirect_uri,
            "code": code,
        }
        # Sent once: a code works only once.
        body = token_request(f"{self._api}{TOKEN_PATH}", form, label="HubSpot")
        refresh_token = body.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            raise BadResponse("HubSpot's token answer has no refresh token.")
        updates = {"refresh_token": refresh_token}
        hub_id = body.get("hub_id") or self._hub_id(body.get("access_token"))
        if hub_id:
            updates["hub_id"] = str(hub_id)
        return updates

    @property
    def _api(self) -> str:
        return self.base_url or API_URL

    def _hub_id(self, access_token: object) -> str:
        """The account the token is for, from its metadata; "" when HubSpot does not say (Connect
        still succeeds: the id is only shown)."""
        if not isinstance(access_token, str) or not access_token:
            return ""
        client = HttpClient(allow_private=settings.INTEGRATIONS_ALLOW_PRIVATE_URLS)
        try:
            body = client.json("GET", f"{self._api}{TOKEN_INFO_PATH}{quote(access_token, safe='')}", retry=False)
        except IntegrationError:
            return ""
        return str(body.get("hub_id") or "") if isinstance(body, dict) else ""
