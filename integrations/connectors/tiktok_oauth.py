"""Authorising a TikTok Shop: the seller's authorisation link and the exchange of its code.

The generic OAuth start and callback views call `TikTokOAuth`: `authorize_url` sends the seller to
TikTok Shop's authorisation page for the app's service (services.us.tiktokshop.com for a shop
whose region is US, services.tiktokshop.com for the rest of the world). TikTok redirects back to
the redirect URL registered for the app in Partner Center (the link does not carry one), with
`code` and `state`. `exchange` trades the code for tokens on the auth host, then asks which shops
authorised the app, and returns the credentials to merge into the connection: the tokens with
their expiry times (ISO) and the shop's cipher, id, name and region. A connection that already has
a shop ID keeps to that shop when it is reconnected; a new one takes the first authorised shop.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings

from ..errors import AuthError, ConfigurationError
from ..http import Hints, HttpClient
from .tiktok_client import API_URL, AUTH_URL, TOKEN_PATH, authorised_shops, choose_shop, shop_credentials
from .tiktok_tokens import request_token

AUTHORIZE_URL = "https://services.tiktokshop.com/open/authorize"
AUTHORIZE_URL_US = "https://services.us.tiktokshop.com/open/authorize"


class TikTokOAuth:
    platform = "tiktok"

    def __init__(self, *, client: HttpClient | None = None, base_url: str = "") -> None:
        """`base_url`: a connection's base URL override, which then serves both the auth host and
        the Open API (a test server, a proxy)."""
        self.client = client or HttpClient(allow_private=settings.INTEGRATIONS_ALLOW_PRIVATE_URLS)
        self.client.hints = Hints(
            timeout="TikTok Shop did not answer in time.", connection="TikTok Shop could not be reached."
        )
        override = (base_url or "").strip().rstrip("/")
        self.api_url = override or API_URL
        self.auth_url = override or AUTH_URL

    def authorize_url(self, *, credentials: dict, state: str, redirect_uri: str) -> str:
        service_id = _required(credentials, "service_id", "Service ID")
        region = str(credentials.get("region") or "").strip().upper()
        base = AUTHORIZE_URL_US if region == "US" else AUTHORIZE_URL
        return f"{base}?{urlencode({'service_id': service_id, 'state': state})}"

    def exchange(self, *, credentials: dict, params: dict[str, str], redirect_uri: str) -> dict:
        code = str(params.get("code") or "").strip()
        if not code:
            said = params.get("error_description") or params.get("error") or "no authorisation code came back"
            raise AuthError(f"TikTok Shop did not authorise the app: {said}.", hint="Try Connect again.")
        app = {"app_key": _required(credentials, "app_key", "App key")}
        app["app_secret"] = _required(credentials, "app_secret", "App secret")
        form = {**app, "auth_code": code, "grant_type": "authorized_code"}
        tokens = request_token(self.client, self.auth_url + TOKEN_PATH, form)
        shops = authorised_shops(self.client, self.api_url, token=tokens["access_token"], **app)
        shop = choose_shop(shops, str(credentials.get("shop_id") or "").strip())
        return {**tokens, **shop_credentials(shop)}


def _required(credentials: dict[str, Any], name: str, label: str) -> str:
    value = str(credentials.get(name) or "").strip()
    if not value:
        raise ConfigurationError(f"The “{label}” credential is missing.", hint="Fill it in on the connection first.")
    return value
