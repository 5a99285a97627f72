"""Shopify's app install (authorization code grant, offline access token).

https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant
"""

from __future__ import annotations

import hashlib
import hmac
import re
from urllib.parse import urlencode

from ..errors import AuthError, BadResponse, ConfigurationError
from ..platforms import CATALOGUE, Platform
from .base import required, token_request

SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")


def signed_message(params: dict[str, str]) -> str:
    """The text Shopify signs: every parameter but `hmac`, sorted, as `key=value` joined by `&`,
    with the delimiters inside keys and values escaped so one parameter cannot pose as two."""
    pairs = []
    for key, value in params.items():
        if key == "hmac":
            continue
        key = key.replace("%", "%25").replace("=", "%3D")
        value = value.replace("%", "%25")
        pairs.append(f"{key}={value}".replace("&", "%26"))
    return "&".join(sorted(pairs))


def query_hmac(params: dict[str, str], secret: str) -> str:
    return hmac.new(secret.encode(), signed_message(params).encode(), hashlib.sha256).hexdigest()


def configured_shop(credentials: dict) -> str:
    shop = required(credentials, "shop_domain", "shop domain", "Fill in the store's mystore.myshopify.com address.")
    shop = re.sub(r"^https?://", "", shop.lower()).split("/", 1)[0]
    if not SHOP_DOMAIN.match(shop):
        raise ConfigurationError(
            f"“{shop}” is not a Shopify shop domain.", hint="Use the store's mystore.myshopify.com address."
        )
    return shop


class ShopifyOAuth:
    platform = Platform.SHOPIFY

    def __init__(self, *, base_url: str = "") -> None:
        # `base_url` stands in for https://<shop> (a test server), as in the connector.
        self.base_url = (base_url or "").strip().rstrip("/")

    def _host(self, credentials: dict) -> str:
        return self.base_url or f"https://{configured_shop(credentials)}"

    def authorize_url(self, *, credentials: dict, state: str, redirect_uri: str) -> str:
        configured_shop(credentials)
        where = "From the app's settings in the Shopify Dev Dashboard."
        client_id = required(credentials, "client_id", "client ID", where)
        required(credentials, "client_secret", "client secret", where)
        query = {
            "client_id": client_id,
            "scope": ",".join(CATALOGUE[Platform.SHOPIFY].scopes),
            "redirect_uri": redirect_uri,
            "state": state,
        }
        return f"{self._host(credentials)}/admin/oauth/authorize?{urlencode(query)}"

    def verify_callback(self, *, credentials: dict, params: dict[str, str]) -> None:
        secret = required(credentials, "client_secret", "client secret")
        given = params.get("hmac", "")
        if not given:
            raise AuthError("Shopify's answer is not signed (it has no hmac), so it was not used.")
        if not hmac.compare_digest(query_hmac(params, secret).encode(), given.lower().encode()):
            raise AuthError(
                "Shopify's signature (hmac) does not match, so the answer was not used.",
                hint="Check that the connection's client secret is the app's.",
            )
        shop, expected = params.get("shop", "").lower(), configured_shop(credentials)
        if not SHOP_DOMAIN.match(shop):
            raise AuthError(f"“{shop}” is not a *.myshopify.com shop domain, so the answer was not used.")
        if shop != expected:
            raise AuthError(
                f"The app was installed on {shop}, not on the connection's shop {expected}.",
                hint="Sign in to the connection's store in Shopify and connect again.",
            )

    def exchange(self, *, credentials: dict, params: dict[str, str], redirect_uri: str) -> dict:
        code = params.get("code", "")
        if not code:
            raise BadResponse("Shopify sent no authorisation code.")
        form = {
            "client_id": required(credentials, "client_id", "client ID"),
            "client_secret": required(credentials, "client_secret", "client secret"),
            "code": code,
        }
        body = token_request(f"{self._host(credentials)}/admin/oauth/access_token", form, label="Shopify")
        token = body.get("access_token")
        if not token or not isinstance(token, str):
            raise BadResponse("Shopify's token answer has no access token.")
        # An offline token does not expire; an expiry left from a client-credentials token would
        # make the connector replace this one.
        return {"access_token": token, "access_token_expires_at": None}
