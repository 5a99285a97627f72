"""Amazon SP-API's website authorization workflow: the seller consents in Seller Central, and
Login with Amazon exchanges the code for the refresh token the connector uses.

https://developer-docs.amazon.com/sp-api/docs/website-authorization-workflow
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings

from ..connectors.amazon_config import LWA_TOKEN_URL
from ..errors import BadResponse, ConfigurationError
from ..platforms import Platform
from .base import required, token_request

SELLER_CENTRAL = {
    "NA": "https://sellercentral.amazon.com",
    "EU": "https://sellercentral-europe.amazon.com",
    "FE": "https://sellercentral.amazon.co.jp",
}


class AmazonOAuth:
    platform = Platform.AMAZON

    def __init__(self, *, base_url: str = "") -> None:
        # `base_url` serves both Seller Central's consent page and the token endpoint (a test server).
        self.base_url = (base_url or "").strip().rstrip("/")

    def authorize_url(self, *, credentials: dict, state: str, redirect_uri: str) -> str:
        app_id = required(
            credentials,
            "application_id",
            "application ID",
            "Solution Provider Portal → your app → its App ID (amzn1.sp.solution.…).",
        )
        region = str(credentials.get("region") or "").strip().upper()
        if region not in SELLER_CENTRAL:
            raise ConfigurationError("Choose the connection's region (NA, EU or FE) first.")
        required(credentials, "lwa_client_id", "LWA client ID")
        required(credentials, "lwa_client_secret", "LWA client secret")
        query = {"application_id": app_id, "state": state, "redirect_uri": redirect_uri}
        if app_id in settings.AMAZON_DRAFT_APPLICATION_IDS:
            query["version"] = "beta"  # a draft app is authorised in Amazon's test mode
        host = self.base_url or SELLER_CENTRAL[region]
        return f"{host}/apps/authorize/consent?{urlencode(query)}"

    def exchange(self, *, credentials: dict, params: dict[str, str], redirect_uri: str) -> dict:
        code = params.get("spapi_oauth_code", "")
        if not code:
            raise BadResponse("Amazon sent no authorisation code (spapi_oauth_code).")
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": required(credentials, "lwa_client_id", "LWA client ID"),
            "client_secret": required(credentials, "lwa_client_secret", "LWA client secret"),
        }
        url = f"{self.base_url}/auth/o2/token" if self.base_url else LWA_TOKEN_URL
        body = token_request(url, form, label="Amazon")
        refresh_token = body.get("refresh_token")
        if not refresh_token or not isinstance(refresh_token, str):
            raise BadResponse("Amazon's token answer has no refresh token.")
        updates = {"refresh_token": refresh_token}
        if params.get("selling_partner_id"):
            updates["seller_id"] = params["selling_partner_id"]
        return updates
