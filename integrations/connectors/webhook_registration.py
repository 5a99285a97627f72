"""The webhook subscriptions the hub keeps on commerce platforms, one registrar per platform.

A registrar is built from the connection's connector and speaks through it (its auth, HTTP client,
rate budget and error mapping), in the platform's own topic names — the ones its deliveries carry
and `integrations.webhook_handlers.HANDLERS` is keyed by:

- `topics`: what the hub subscribes to;
- `list()`: every subscription the app (Shopify) or the store (WooCommerce) has, as `RemoteWebhook`s;
- `create(topic, address)` → `RemoteWebhook`;
- `delete(remote_id)`: idempotent — one already gone is not an error.

`webhooks.registration` decides what to create and delete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import BadResponse, ConfigurationError, NotFound, PermissionDenied
from .woocommerce import decode

if TYPE_CHECKING:
    from .shopify import ShopifyConnector
    from .woocommerce import WooCommerceConnector


@dataclass(frozen=True)
class RemoteWebhook:
    remote_id: str
    topic: str
    address: str
    # False for a WooCommerce webhook the store paused or disabled (after five failed deliveries):
    # it no longer delivers, so it should be deleted and created again (or set active).
    active: bool = True


# --- Shopify: the GraphQL Admin API ---------------------------------------------------------------

SHOPIFY_TOPICS = {
    "orders/create": "ORDERS_CREATE",
    "orders/updated": "ORDERS_UPDATED",
    "orders/cancelled": "ORDERS_CANCELLED",
    "orders/fulfilled": "ORDERS_FULFILLED",
    "orders/partially_fulfilled": "ORDERS_PARTIALLY_FULFILLED",
    "orders/paid": "ORDERS_PAID",
    "refunds/create": "REFUNDS_CREATE",
    "products/create": "PRODUCTS_CREATE",
    "products/update": "PRODUCTS_UPDATE",
    "inventory_levels/update": "INVENTORY_LEVELS_UPDATE",
    "customers/create": "CUSTOMERS_CREATE",
    "customers/update": "CUSTOMERS_UPDATE",
    "app/uninstalled": "APP_UNINSTALLED",
}
SHOPIFY_ENUMS = {enum: topic for topic, enum in SHOPIFY_TOPICS.items()}
# From 2025-10 a subscription's address is its `uri`; before, an HTTP endpoint's `callbackUrl`.
URI_SINCE = "2025-10"
ERRORS = "userErrors { field message }"


class ShopifyWebhooks:
    topics = tuple(SHOPIFY_TOPICS)

    def __init__(self, connector: ShopifyConnector) -> None:
        self.connector = connector
        version = connector.version
        self.uses_uri = version == "unstable" or version >= URI_SINCE
        address = "uri" if self.uses_uri else "endpoint { __typename ... on WebhookHttpEndpoint { callbackUrl } }"
        fields = f"id topic {address}"
        self.list_query = (
            "query HubWebhookSubscriptions($first: Int!, $after: String) { "
            f"webhookSubscriptions(first: $first, after: $after) {{ nodes {{ {fields} }} "
            "pageInfo { hasNextPage endCursor } } }"
        )
        self.create_query = (
            "mutation HubWebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, "
            "$webhookSubscription: WebhookSubscriptionInput!) { "
            "webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) { "
            f"webhookSubscription {{ {fields} }} {ERRORS} }} }}"
        )
        self.delete_query = (
            "mutation HubWebhookSubscriptionDelete($id: ID!) { "
            f"webhookSubscriptionDelete(id: $id) {{ deletedWebhookSubscriptionId {ERRORS} }} }}"
        )

    def list(self) -> list[RemoteWebhook]:
        hooks: list[RemoteWebhook] = []
        after = None
        while True:
            data = self.connector.query(self.list_query, {"first": 100, "after": after}, "HubWebhookSubscriptions")
            page = data.get("webhookSubscriptions")
            if not isinstance(page, dict):
                raise BadResponse("Shopify's answer has no webhookSubscriptions.")
            hooks.extend(self._remote(node) for node in page.get("nodes") or [])
            info = page.get("pageInfo") or {}
            if not (info.get("hasNextPage") and info.get("endCursor")):
                return hooks
            after = info["endCursor"]

    def create(self, topic: str, address: str) -> RemoteWebhook:
        if topic not in SHOPIFY_TOPICS:
            raise ConfigurationError(f"The hub does not subscribe to the Shopify topic “{topic}”.")
        subscription = {"uri" if self.uses_uri else "callbackUrl": address, "format": "JSON"}
        variables = {"topic": SHOPIFY_TOPICS[topic], "webhookSubscription": subscription}
        data = self.connector.query(self.create_query, variables, "HubWebhookSubscriptionCreate")
        result = data.get("webhookSubscriptionCreate") or {}
        errors = result.get("userErrors") or []
        if any("taken" in str(e.get("message", "")).lower() for e in errors):
            # Already subscribed at this address (a run that stopped half way): that one stands.
            for hook in self.list():
                if hook.topic == topic and hook.address == address:
                    return hook
        if errors:
            raise _refused(f"Shopify refused the {topic} subscription", errors)
        if not isinstance(result.get("webhookSubscription"), dict):
            raise BadResponse(f"Shopify's answer to the {topic} subscription has no subscription.")
        return self._remote(result["webhookSubscription"])

    def delete(self, remote_id: str) -> None:
        data = self.connector.query(self.delete_query, {"id": remote_id}, "HubWebhookSubscriptionDelete")
        errors = (data.get("webhookSubscriptionDelete") or {}).get("userErrors") or []
        messages = " ".join(str(e.get("message", "")) for e in errors).lower()
        if errors and "not exist" not in messages and "not found" not in messages:
            raise _refused("Shopify refused to delete the subscription", errors)

    def _remote(self, node: dict[str, Any]) -> RemoteWebhook:
        enum = str(node.get("topic") or "")
        address = node.get("uri") or (node.get("endpoint") or {}).get("callbackUrl") or node.get("callbackUrl") or ""
        return RemoteWebhook(str(node.get("id") or ""), SHOPIFY_ENUMS.get(enum, enum.lower()), address)


def _refused(what: str, errors: list[dict[str, Any]]) -> BadResponse:
    message = f"{what}: " + "; ".join(str(e.get("message", e)) for e in errors)
    if "permission" in message.lower() or "access denied" in message.lower():
        hint = (
            "The app needs the topic's read scope and, for orders and customers, Shopify's approval "
            "for protected customer data (Partner Dashboard → API access)."
        )
        return PermissionDenied(message, hint=hint, status=403)
    return BadResponse(message)


# --- WooCommerce: REST wc/v3/webhooks -------------------------------------------------------------

WOOCOMMERCE_TOPICS = (
    "order.created",
    "order.updated",
    "order.deleted",
    "order.restored",
    "product.created",
    "product.updated",
    "product.deleted",
    "product.restored",
    "customer.created",
    "customer.updated",
    "customer.deleted",
)


class WooCommerceWebhooks:
    """A store's webhooks need a key with read/write permission, of a user who may manage
    WooCommerce. WooCommerce pings the address when a webhook is created and signs every delivery
    with the secret the hub gives it (the connection's `webhook_secret`)."""

    topics = WOOCOMMERCE_TOPICS
    per_page = 100

    def __init__(self, connector: WooCommerceConnector) -> None:
        self.connector = connector

    def list(self) -> list[RemoteWebhook]:
        hooks: list[RemoteWebhook] = []
        page = 1
        while True:
            params = {"per_page": self.per_page, "page": page, "orderby": "id", "order": "asc"}
            items, response = self.connector.get_list("webhooks", params)
            hooks.extend(self._remote(item) for item in items if isinstance(item, dict))
            try:
                pages = int(response.headers["X-WP-TotalPages"])
            except (KeyError, ValueError):
                pages = page if len(items) < self.per_page else page + 1
            if not items or page >= pages:
                return hooks
            page += 1

    def create(self, topic: str, address: str) -> RemoteWebhook:
        secret = str(self.connector.credentials.get("webhook_secret") or "")
        if not secret:
            raise ConfigurationError(
                "The connection has no webhook secret to give WooCommerce.",
                hint="It is generated when the hub registers the webhooks: test the connection again.",
            )
        body = {"name": f"Commerce hub: {topic}", "topic": topic, "delivery_url": address, "secret": secret}
        created = decode(self.connector.api.post("webhooks", {**body, "status": "active"}))
        if not isinstance(created, dict) or not created.get("id"):
            raise BadResponse(f"The store's answer to the {topic} webhook has no webhook.")
        return self._remote(created)

    def delete(self, remote_id: str) -> None:
        try:
            # Webhooks cannot be trashed: without force WooCommerce answers 501.
            self.connector.api.delete(f"webhooks/{int(remote_id)}", params={"force": "true"})
        except NotFound:
            pass
        except ValueError as exc:
            raise ConfigurationError(f"“{remote_id}” is not a WooCommerce webhook id.") from exc

    @staticmethod
    def _remote(item: dict[str, Any]) -> RemoteWebhook:
        return RemoteWebhook(
            str(item.get("id") or ""),
            str(item.get("topic") or ""),
            str(item.get("delivery_url") or ""),
            active=item.get("status", "active") == "active",
        )


REGISTRARS: dict[str, type] = {"shopify": ShopifyWebhooks, "woocommerce": WooCommerceWebhooks}
