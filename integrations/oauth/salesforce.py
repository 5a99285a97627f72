"""Connect with Salesforce: the OAuth 2.0 web server flow of a connected app.

The connected app (Setup → App Manager → New Connected App) needs the hub's callback address as
its callback URL and the scopes `api` and `refresh_token` ("Perform requests at any time"). The
person signs in at login.salesforce.com (test.salesforce.com for a sandbox, or the connection's
base URL override: the org's My Domain login address) and approves the app; the code is exchanged
at the same host for a refresh token and the org's instance URL, which are what the hub keeps. The
access token that comes with them is not kept: the connector mints its own from the refresh token
(`connectors.salesforce_tokens.SalesforceTokens`).

https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_web_server_flow.htm
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from ..connectors.salesforce_client import AUTHORIZE_PATH, HINT_RECONNECT, TOKEN_PATH, login_url
from ..connectors.salesforce_tokens import instance_of
from ..errors import AuthError, BadResponse
from ..platforms import Platform
from .base import required, token_request

SCOPES = ("api", "refresh_token")
WHERE = "Setup → App Manager → the connected app → View → Manage Consumer Details."


class SalesforceOAuth:
    platform = Platform.SALESFORCE
    scopes = SCOPES

    def __init__(self, *, base_url: str = "") -> None:
        # `base_url` (the connection's override) stands in for the login host, as in the connector.
        self.base_url = (base_url or "").strip().rstrip("/")

    def authorize_url(self, *, credentials: dict, state: str, redirect_uri: str) -> str:
        query = {
            "response_type": "code",
            "client_id": required(credentials, "client_id", "consumer key", WHERE),
            "redirect_uri": redirect_uri,
            "state": state,
            "scope": " ".join(self.scopes),
        }
        required(credentials, "client_secret", "consumer secret", WHERE)
        return f"{login_url(credentials, self.base_url)}{AUTHORIZE_PATH}?{urlencode(query, quote_via=quote)}"

    def exchange(self, *, credentials: dict, params: dict[str, str], redirect_uri: str) -> dict:
        """Trade the callback's `code` for a refresh token and the org's instance URL."""
        if params.get("error"):
            said = params.get("error_description") or params["error"]
            raise AuthError(f"Salesforce did not grant access: {said}.", hint=HINT_RECONNECT)
        code = str(params.get("code") or "").strip()
        if not code:
            raise AuthError("Salesforce's redirect carries no authorisation code.", hint=HINT_RECONNECT)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": required(credentials, "client_id", "consumer key", WHERE),
            "client_secret": required(credentials, "client_secret", "consumer secret", WHERE),
            "redirect_uri": redirect_uri,
        }
        body = token_request(login_url(credentials, self.base_url) + TOKEN_PATH, form, label="Salesforce")
        refresh_token = body.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            raise BadResponse(
                "Salesforce issued no refresh token.",
                hint="Add the “Perform requests at any time (refresh_token, offline_access)” scope to the connected "
                "app, and check its refresh token policy, then connect again.",
            )
        return {"refresh_token": refresh_token, "instance_url": instance_of(body)}
