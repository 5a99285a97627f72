"""Connectors, one module per platform, registered here by dotted path."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.module_loading import import_string

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..models import Connection
    from .base import Connector

CONNECTORS: dict[str, str] = {
    "shopify": "integrations.connectors.shopify.ShopifyConnector",
    "woocommerce": "integrations.connectors.woocommerce.WooCommerceConnector",
    "amazon": "integrations.connectors.amazon.AmazonConnector",
    "tiktok": "integrations.connectors.tiktok.TikTokConnector",
    "ebay": "integrations.connectors.ebay.EbayConnector",
    "hubspot": "integrations.connectors.hubspot.HubSpotConnector",
    "salesforce": "integrations.connectors.salesforce.SalesforceConnector",
}


def get_connector(connection: Connection, **kwargs) -> Connector:
    path = CONNECTORS.get(connection.platform)
    if path is None:
        raise ConfigurationError(
            f"{connection.get_platform_display()} has no connector yet.", hint="It cannot be tested or synced."
        )
    return import_string(path)(connection, **kwargs)
