"""OAuth providers, one per platform, registered by dotted path and imported only when used.

A provider is any class with this interface (no base class needed):

- `platform: str`
- `authorize_url(self, *, credentials: dict, state: str, redirect_uri: str) -> str`: the
  platform's consent page, for the browser to go to.
- `exchange(self, *, credentials: dict, params: dict[str, str], redirect_uri: str) -> dict`: turn
  the callback's parameters (its `code`) into credential updates, merged into the connection's
  credentials (a value of None removes that credential). Raises `integrations.errors.AuthError` or
  another `IntegrationError` whose message says what went wrong.
- optionally `verify_callback(self, *, credentials: dict, params: dict[str, str]) -> None`: raises
  an `IntegrationError` when the callback is not genuinely the platform's (Shopify's hmac).

A provider is made with keyword arguments only, all optional: the views pass `base_url`, the
connection's base URL override (a sandbox or a local test server), which the provider then uses
in place of the platform's own hosts, as the connectors do. `credentials` is the connection's
decrypted credentials.
"""

from __future__ import annotations

from typing import Any

from django.utils.module_loading import import_string

PROVIDERS: dict[str, str] = {
    "shopify": "integrations.oauth.shopify.ShopifyOAuth",
    "amazon": "integrations.oauth.amazon.AmazonOAuth",
    "ebay": "integrations.connectors.ebay_oauth.EbayOAuth",
    "tiktok": "integrations.connectors.tiktok_oauth.TikTokOAuth",
    "hubspot": "integrations.oauth.hubspot.HubSpotOAuth",
    "salesforce": "integrations.oauth.salesforce.SalesforceOAuth",
}


def get_provider(platform: str, **kwargs: Any) -> Any:
    """The provider for this platform (made with `kwargs`); KeyError when the platform has none."""
    return import_string(PROVIDERS[platform])(**kwargs)
