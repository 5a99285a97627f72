"""Shopify webhook handlers (REST-shaped payloads; see the package docstring for follow-up reads)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Q

from commerce.ingest import Source
from commerce.models import InventoryLevel, ProductVariant
from tenants import audit
from webhooks.models import WebhookEvent, WebhookSubscription

from ..connectors import get_connector
from ..connectors import shopify_mapping as graphql
from ..connectors import shopify_queries as queries
from ..connectors import shopify_rest_mapping as rest
from ..models import ConnectionStatus
from .common import Handler, map_payload, payload_of, scoped, source_of, write

if TYPE_CHECKING:
    from commerce.records import InventoryRecord, OrderRecord


ORDER_QUERY = (
    f"query HubWebhookOrder($id: ID!) {{ node(id: $id) {{ ... on Order {{ {queries.selection('orders')} }} }} }}"
)
ITEM_QUERY = (
    "query HubWebhookInventoryItem($id: ID!) { node(id: $id) { ... on InventoryItem { "
    f"{queries.selection('inventory')} }} }} }}"
)


def shopify_order(event: WebhookEvent) -> str:
    payload = payload_of(event)
    try:
        record = map_payload("order", rest.order, payload)
    except rest.ShopMoneyMissing:
        order_id = map_payload("order", rest.gid_of, payload, "Order")
        record = _read_order(event, order_id)
        if record is None:
            return f"order {order_id} left alone: Shopify no longer has it"
    return write(event, "orders", [record], f"order {record.external_id}")


def shopify_refund(event: WebhookEvent) -> str:
    payload = payload_of(event)
    order_id = map_payload("refund", rest.gid, "Order", payload.get("order_id"))
    refund_id = payload.get("admin_graphql_api_id") or payload.get("id")
    record = _read_order(event, order_id)
    if record is None:
        return f"refund {refund_id} left alone: Shopify no longer has order {order_id}"
    return f"refund {refund_id}: " + write(event, "orders", [record], f"order {order_id}")


def _read_order(event: WebhookEvent, order_id: str) -> OrderRecord | None:
    connector = get_connector(event.connection)
    node = connector.query(ORDER_QUERY, {"id": order_id}, "HubWebhookOrder").get("node")
    if not node:
        return None
    connector.complete_nested(node)  # lines past the first page: ingest deletes lines a written order lacks
    return map_payload("order", graphql.order, node)


def shopify_product(event: WebhookEvent) -> str:
    record = map_payload("product", rest.product, payload_of(event), "")
    if record.variants:
        currency = _shop_currency(event)
        for variant in record.variants:
            variant.currency = currency
    return write(event, "products", [record], f"product {record.external_id}")


def _shop_currency(event: WebhookEvent) -> str:
    connector = get_connector(event.connection)
    if not connector.shop_currency:
        shop = connector.query(queries.SHOP_CURRENCY, None, "HubShop").get("shop") or {}
        connector.remember_currency(shop.get("currencyCode"))
    return connector.shop_currency


def shopify_inventory(event: WebhookEvent) -> str:
    payload = payload_of(event)
    item_id, location_id = map_payload("inventory level", rest.inventory_ids, payload)
    subject = f"stock {item_id}@{location_id}"
    variant_id, location_name = _stored_variant(source_of(event), item_id, location_id)
    if variant_id:
        record = map_payload("inventory level", rest.inventory_level, payload, variant_id, location_name)
        return write(event, "inventory", [record], subject)
    records = _read_inventory_item(event, item_id)
    if records is None:
        return f"{subject} left alone: Shopify no longer has the inventory item"
    if not records:
        return f"{subject} left alone: the inventory item is stocked nowhere"
    return write(event, "inventory", records, f"stock of {item_id}")


def _stored_variant(source: Source, item_id: str, location_id: str) -> tuple[str, str]:
    """The stored variant of an inventory item, and the stored name of the location."""
    levels = scoped(InventoryLevel, source)
    variant_id = location_name = ""
    for external_id, variant, name in levels.filter(external_id__startswith=f"{item_id}@").values_list(
        "external_id", "variant__external_id", "location_name"
    ):
        variant_id = variant
        if external_id == f"{item_id}@{location_id}":
            location_name = name
    if not location_name:
        named = levels.filter(location_id=location_id).exclude(location_name="")
        location_name = named.values_list("location_name", flat=True).first() or ""
    if not variant_id:
        # A variant written from GraphQL keeps `inventoryItem.id` in its raw node; one written
        # from a REST product webhook keeps `inventory_item_id`.
        number = int(item_id.rsplit("/", 1)[1])
        named = scoped(ProductVariant, source).filter(
            Q(raw__inventoryItem__id=item_id) | Q(raw__inventory_item_id=number)
        )
        variant_id = named.values_list("external_id", flat=True).first() or ""
    return variant_id, location_name


def _read_inventory_item(event: WebhookEvent, item_id: str) -> list[InventoryRecord] | None:
    connector = get_connector(event.connection)
    node = connector.query(ITEM_QUERY, {"id": item_id}, "HubWebhookInventoryItem").get("node")
    if not node:
        return None
    connector.complete_nested(node)
    return [map_payload("inventory item", graphql.inventory_item, part) for part in graphql.split_inventory_item(node)]


def shopify_customer(event: WebhookEvent) -> str:
    record = map_payload("customer", rest.customer, payload_of(event))
    return write(event, "customers", [record], f"customer {record.external_id}")


def shopify_uninstalled(event: WebhookEvent) -> str:
    """Shopify revokes the token and drops the app's subscriptions itself: the hub marks the
    connection disconnected (its schedule goes with that) and forgets the subscriptions."""
    source_of(event)
    connection = event.connection
    connection.status = ConnectionStatus.DISCONNECTED
    connection.last_error = "The app was uninstalled from the shop: reinstall it, then test the connection."
    connection.save(update_fields=["status", "last_error", "updated_at"])
    removed, _ = WebhookSubscription.objects.filter(connection=connection).delete()
    audit.record(
        "connection.disconnected",
        tenant=connection.tenant,
        target=connection,
        reason="app/uninstalled",
        webhook_event=event.pk,
        subscriptions_removed=removed,
    )
    return f"connection disconnected: the app was uninstalled ({removed} subscriptions forgotten)"


HANDLERS: dict[tuple[str, str], Handler] = {
    **dict.fromkeys(
        [
            ("shopify", "orders/create"),
            ("shopify", "orders/updated"),
            ("shopify", "orders/cancelled"),
            ("shopify", "orders/fulfilled"),
            ("shopify", "orders/partially_fulfilled"),
            ("shopify", "orders/paid"),
        ],
        shopify_order,
    ),
    ("shopify", "refunds/create"): shopify_refund,
    ("shopify", "products/create"): shopify_product,
    ("shopify", "products/update"): shopify_product,
    ("shopify", "inventory_levels/update"): shopify_inventory,
    ("shopify", "customers/create"): shopify_customer,
    ("shopify", "customers/update"): shopify_customer,
    ("shopify", "app/uninstalled"): shopify_uninstalled,
}
